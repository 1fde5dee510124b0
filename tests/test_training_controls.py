"""Training controls through the command line: validation, vocabulary limits, inputs, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .conftest import SEED_TEXT, rnngen

SMALL_MODEL = ["--embedding-dim", "8", "--units", "16", "--quiet"]


def numbered_corpus(lines: int) -> str:
    """Short lines with a shared frame and a varying middle, so a model has something to learn."""
    animals = ["cat", "dog", "bird", "fish", "cow"]
    places = ["mat", "rug", "bed", "sofa"]
    return "\n".join(f"the {animals[i % 5]} sat on the {places[i % 4]}" for i in range(lines)) + "\n"


def varied_corpus(lines: int) -> str:
    """Lines of 2 to 11 words, so that batches of short and long lines differ in size."""
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[: 2 + index % 10]) for index in range(lines)) + "\n"


def test_validation_file_perplexity_matches_evaluate(tmp_path: Path) -> None:
    """The validation perplexity of the kept epoch and `evaluate` on the same file agree, per token."""
    (tmp_path / "train.txt").write_text(varied_corpus(40), encoding="utf-8")
    (tmp_path / "valid.txt").write_text(varied_corpus(7), encoding="utf-8")
    result = rnngen(
        "train", "train.txt", "--valid", "valid.txt", "--epochs", "3", "--batch-size", "2", *SMALL_MODEL, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "models" / "train" / "config.json").read_text(encoding="utf-8"))
    tokens = sum(2 + index % 10 + 1 for index in range(7))  # the words and the end of each line
    assert config["corpus"]["validation_targets"] == tokens
    evaluation = rnngen("evaluate", "valid.txt", "--json", cwd=tmp_path)
    assert evaluation.returncode == 0 and evaluation.stderr == ""
    scores = json.loads(evaluation.stdout)
    assert set(scores) >= {"perplexity", "top1_accuracy", "top5_accuracy", "oov_rate", "bits_per_char", "tokens"}
    assert scores["tokens"] == tokens
    assert scores["perplexity"] == pytest.approx(config["metrics"]["val_perplexity"], rel=1e-4)
    assert config["metrics"]["val_perplexity"] == pytest.approx(math.exp(config["metrics"]["val_cross_entropy"]))


def test_val_split_and_valid_are_alternatives(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(numbered_corpus(10), encoding="utf-8")
    result = rnngen("train", "train.txt", "--valid", "train.txt", "--val-split", "0.2", cwd=tmp_path)
    assert result.returncode == 2 and "alternatives" in result.stderr


def test_vocabulary_limits_introduce_the_unknown_word(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(numbered_corpus(20), encoding="utf-8")
    result = rnngen("train", "train.txt", "--max-vocab", "4", "--epochs", "2", *SMALL_MODEL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    vocabulary = json.loads((tmp_path / "models" / "train" / "vocabulary.json").read_text(encoding="utf-8"))
    # "the" 40 times, "sat" and "on" 20, each place 5, each animal 4.
    assert vocabulary["words"] == ["the", "sat", "on", "mat"] and vocabulary["unknown_id"] == 6
    info = json.loads(rnngen("info", "--json", cwd=tmp_path).stdout)
    assert info["vocabulary"] == {
        "words": 4,
        "ids": 7,
        "unknown_word": True,
        "unknown_marker": None,
        "held_out_words": 0,
        "unknown_bias_shift": None,
    }
    # Unknown words are read as <unk> in evaluation; generation never prints it.
    scores = json.loads(rnngen("evaluate", "train.txt", "--json", cwd=tmp_path).stdout)
    # Every animal, and every place but "mat" (5 of 20 lines), is unknown: 35 of 120 words.
    assert scores["oov_rate"] == pytest.approx(35 / 120)
    generated = rnngen("generate", "the", "-n", "8", cwd=tmp_path)
    assert generated.returncode == 0 and "<unk>" not in generated.stdout and "<eol>" not in generated.stdout
    assert len(generated.stdout.split()) == 9

    result = rnngen("train", "train.txt", "--min-count", "5", "--epochs", "1", "-o", "m2", *SMALL_MODEL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    words = json.loads((tmp_path / "m2" / "vocabulary.json").read_text(encoding="utf-8"))["words"]
    assert words == ["the", "sat", "on", "mat", "rug", "bed", "sofa"]


def test_corpus_from_stdin_and_from_a_folder(tmp_path: Path) -> None:
    result = rnngen("train", "-", "--epochs", "1", *SMALL_MODEL, cwd=tmp_path, stdin=SEED_TEXT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(Path("models") / "stdin")

    folder = tmp_path / "texts"
    (folder / "more").mkdir(parents=True)
    (folder / "a.txt").write_text("오늘 날씨가 정말 좋다", encoding="utf-8")  # no final newline
    (folder / "more" / "b.txt").write_text("집 앞 공원에 사람들이 모여 있다\n", encoding="utf-8")
    (folder / "notes.md").write_text("ignored words here", encoding="utf-8")
    result = rnngen("train", "texts", "--epochs", "1", *SMALL_MODEL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "models" / "texts" / "config.json").read_text(encoding="utf-8"))
    assert config["corpus"]["usable_lines"] == 2 and config["corpus"]["tokens"] == 10

    (tmp_path / "empty").mkdir()
    result = rnngen("train", "empty", cwd=tmp_path)
    assert result.returncode == 1 and "no .txt files" in result.stderr


def test_a_folder_reads_txt_files_in_any_case_and_says_how_many(tmp_path: Path) -> None:
    texts, valid = tmp_path / "texts", tmp_path / "valid"
    (texts / "more").mkdir(parents=True)
    valid.mkdir()
    (texts / "a.txt").write_text("the cat sat on the mat\n", encoding="utf-8")
    (texts / "B.TXT").write_text("the dog sat on the rug\n", encoding="utf-8")
    (texts / "more" / "c.Txt").write_text("the bird sat on the bed\n", encoding="utf-8")
    (texts / "notes.md").write_text("ignored words here", encoding="utf-8")
    (valid / "one.TXT").write_text("the cat sat\n", encoding="utf-8")
    (valid / "two.txt").write_text("the dog sat on the mat\n", encoding="utf-8")
    arguments = ["train", "texts", "--valid", "valid", "--epochs", "1", "--embedding-dim", "8", "--units", "16"]
    result = rnngen(*arguments, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == str(Path("models") / "texts") + "\n"
    assert "read 3 files from texts/: 3 lines, 18 tokens (prepared now, kept in the cache)\n" in result.stderr
    assert (
        "read 2 files from valid/ for validation: 2 lines, 9 tokens (prepared now, kept in the cache)\n"
        in result.stderr
    )
    config = json.loads((tmp_path / "models" / "texts" / "config.json").read_text(encoding="utf-8"))
    assert config["corpus"]["usable_lines"] == 3 and config["corpus"]["tokens"] == 18

    quiet = rnngen(*arguments, "-o", "quiet", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == "quiet\n"

    # A second run finds both texts prepared, and says so.
    again = rnngen(*arguments, "-o", "again", cwd=tmp_path)
    assert "read 3 files from texts/: 3 lines, 18 tokens (prepared earlier: from the cache)\n" in again.stderr
    assert "2 lines, 9 tokens (prepared earlier: from the cache)\n" in again.stderr

    scores = json.loads(rnngen("evaluate", "valid", "--json", cwd=tmp_path).stdout)
    assert scores["lines"] == 2 and scores["tokens"] == 9 + 2  # one end-of-line per line


def test_stop_at_eol_ends_at_the_line_end(seed_model: Path, tmp_path: Path) -> None:
    stopped = rnngen("generate", "오늘", "-n", "10", "--stop-at-eol", "-m", str(seed_model), cwd=tmp_path)
    assert stopped.stdout == "오늘 날씨가 정말 좋다\n"
    running_on = rnngen("generate", "오늘", "-n", "10", "-m", str(seed_model), cwd=tmp_path)
    assert len(running_on.stdout.split()) == 11


def test_model_folder_keeps_history_and_curve(seed_model: Path, tmp_path: Path) -> None:
    config = json.loads((seed_model / "config.json").read_text(encoding="utf-8"))
    assert len(config["history"]["loss"]) == config["epochs_run"]
    assert config["metrics"]["perplexity"] == pytest.approx(math.exp(config["metrics"]["cross_entropy"]))
    assert (seed_model / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = rnngen("info", "-m", str(seed_model), cwd=tmp_path)
    assert table.returncode == 0 and "lstm" in table.stdout and "parameters" in table.stdout


def test_stream_context_trains_across_lines_and_evaluates_with_the_state_carried(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(varied_corpus(40), encoding="utf-8")
    (tmp_path / "valid.txt").write_text(varied_corpus(5), encoding="utf-8")  # 25 tokens: one window
    result = rnngen(
        "train", "train.txt", "--valid", "valid.txt", "--context", "stream", "--epochs", "2", *SMALL_MODEL, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "models" / "train" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["context"] == "stream" and config["model"]["max_len"] == 36
    words = sum(2 + index % 10 for index in range(40))
    assert config["corpus"]["training_targets"] == words + 40  # every word and every line end, once
    # The validation text fits in one window, read from a fresh state as `evaluate` reads the
    # stream, so the two perplexities are the same number.
    stream = json.loads(rnngen("evaluate", "valid.txt", "--json", cwd=tmp_path).stdout)
    assert stream["tokens"] == 25
    assert stream["perplexity"] == pytest.approx(config["metrics"]["val_perplexity"], rel=1e-4)
    line = json.loads(rnngen("evaluate", "valid.txt", "--json", "--context", "line", cwd=tmp_path).stdout)
    assert line["tokens"] == 25 and line["perplexity"] != pytest.approx(stream["perplexity"], rel=1e-6)


def test_stream_context_needs_a_one_directional_model(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(varied_corpus(10), encoding="utf-8")
    result = rnngen("train", "train.txt", "--context", "stream", "--bidirectional", *SMALL_MODEL, cwd=tmp_path)
    assert result.returncode == 2 and "--context stream" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()
