"""Figures that mean what they say: held-out scoring, unknown words charged, and a training summary
that names the kept epoch, why training stopped, and the kept model's bits per character."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rnngen import ArchitectureConfig, TrainingConfig, train_corpus
from rnngen.inference.evaluation import evaluate_text
from rnngen.store.folder import read_model_folder
from rnngen.train.setup import TrainingResult

from .conftest import rnngen

SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "our teacher", "a small bird"]
VERBS = ["saw", "liked", "followed", "found", "heard", "painted"]
OBJECTS = ["the river", "a red ball", "the quiet town", "an open door", "the tall tree", "a new song"]


def sentences(count: int, seed: int) -> str:
    """Lines from a small grammar, with a rare name now and then: words a held-out line may lack."""
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        line = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        if index % 7 == 0:
            line += f" with name{rng.randrange(1000)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def train_grammar(folder: Path, seed: int, training: TrainingConfig, **options: Any) -> TrainingResult:
    """Train a small network on 300 grammar lines written beside ``folder``."""
    corpus = folder.parent / f"grammar-{seed}.txt"
    corpus.write_text(sentences(300, seed=seed), encoding="utf-8")
    architecture = ArchitectureConfig(units=16, embedding_dim=8)
    return train_corpus(corpus, folder, architecture=architecture, training=training, **options)


def test_the_summary_names_the_kept_epoch_why_training_stopped_and_bits_per_character(tmp_path: Path) -> None:
    (tmp_path / "grammar.txt").write_text(sentences(300, seed=0), encoding="utf-8")
    result = rnngen("train", "grammar.txt", "--units", "16", "--embedding-dim", "8", "--epochs", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = result.stderr.strip().splitlines()[-2:]
    assert summary[0].startswith("rnngen: saved models/grammar (vocabulary ")
    assert summary[0].endswith("kept epoch 4 of 4: all 4 epochs --epochs allows were run"), summary
    assert summary[1].startswith("rnngen: epoch 4: cross_entropy ") and " val_bits_per_char " in summary[1], summary
    card = json.loads(rnngen("info", "--json", cwd=tmp_path).stdout)
    assert card["training"]["kept_epoch"] == 4 and card["training"]["stop_reason"].startswith("all 4 epochs")
    assert 0 < card["metrics"]["val_bits_per_char"] < 8
    config = json.loads((tmp_path / "models" / "grammar" / "config.json").read_text(encoding="utf-8"))
    assert 0 < config["corpus"]["escape_probability"] < 0.2


def test_early_stopping_is_named_as_the_reason(tmp_path: Path) -> None:
    # A learning rate this high makes the validation loss worse after the first epochs.
    result = train_grammar(tmp_path / "model", 1, TrainingConfig(epochs=60, patience=1, learning_rate=0.5))
    assert result.epochs_run < 60
    assert result.stop_reason == "the validation loss had not improved for 1 epochs"
    assert result.metrics["epoch"] == result.epochs_run - 1


def test_held_out_bits_per_character_match_evaluate_on_the_held_out_lines(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text(sentences(40, seed=3), encoding="utf-8")
    result = train_grammar(tmp_path / "model", 2, TrainingConfig(epochs=2), validation_source=valid)
    stored = read_model_folder(tmp_path / "model")
    scored = evaluate_text(stored, valid.read_text(encoding="utf-8"))
    assert scored.unknown_tokens > 0  # the rare names the training lines lack
    assert result.metrics["val_bits_per_char"] == scored.bits_per_char


def test_a_vocabulary_of_unknown_words_flatters_perplexity_but_not_bits_per_character(tmp_path: Path) -> None:
    """Reading nearly every word as <unk> makes prediction easy and perplexity low; bits per character
    charge each unknown word its spelling, so the model that knows the words wins there."""
    held_out = sentences(60, seed=5)
    scores = {}
    for name, max_vocab in (("every word", None), ("two words", 2)):
        train_grammar(tmp_path / name, 4, TrainingConfig(epochs=8, max_vocab=max_vocab, val_split=0.0))
        scores[name] = evaluate_text(read_model_folder(tmp_path / name), held_out)
    assert scores["two words"].perplexity < scores["every word"].perplexity
    assert scores["two words"].bits_per_char > scores["every word"].bits_per_char


def test_evaluate_warns_when_many_words_are_unknown(seed_model: Path, tmp_path: Path) -> None:
    (tmp_path / "known.txt").write_text("오늘 날씨가 정말 좋다\n", encoding="utf-8")
    (tmp_path / "foreign.txt").write_text("the cat sat on the mat\n", encoding="utf-8")
    known = rnngen("evaluate", "known.txt", "-m", str(seed_model), cwd=tmp_path)
    assert known.returncode == 0 and known.stderr == ""
    foreign = rnngen("evaluate", "foreign.txt", "-m", str(seed_model), "--json", cwd=tmp_path)
    assert foreign.returncode == 0 and json.loads(foreign.stdout)["oov_rate"] == 1.0
    assert foreign.stderr.startswith("rnngen: warning: 100.0% of the words are unknown to the model and left out of")
    assert "bits_per_char" in foreign.stderr
