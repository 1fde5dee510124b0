"""--unk-singletons: words seen once read as <unk> in training, so that the model prices unknown words
by their context; chosen for real text on the numpy engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import AUTO_UNK_SINGLETONS, REAL_TEXT_MIN_TOKENS, EngineKind
from rnngen.data.vocab import Vocabulary
from rnngen.train.setup import resolve_unk_singletons
from rnngen.train.unknown_singletons import UnknownSingletons
from tests.conftest import SEED_TEXT, rnngen

# Words 1-4, end of line 5, unknown word 6; "c" and "d" are seen once.
VOCABULARY = Vocabulary(("a", "b", "c", "d"), has_unknown=True)
TARGET_COUNTS = np.array([0, 9, 2, 1, 1, 7, 1])


def replacement(probability: float = 0.5, seed: int = 0) -> UnknownSingletons:
    chosen = UnknownSingletons.for_run(probability, VOCABULARY, TARGET_COUNTS, seed)
    assert chosen is not None
    return chosen


def test_only_words_seen_once_are_singletons() -> None:
    # Not padding (0), not the end of line, not the unknown word though it was a target once.
    assert np.flatnonzero(replacement().singletons).tolist() == [3, 4]


def test_nothing_is_replaced_at_probability_zero_or_without_an_unknown_word() -> None:
    assert UnknownSingletons.for_run(0.0, VOCABULARY, TARGET_COUNTS, 0) is None
    assert UnknownSingletons.for_run(0.5, Vocabulary(("a", "b", "c", "d")), TARGET_COUNTS[:6], 0) is None


def test_a_batch_reads_about_the_share_of_singletons_as_unknown_and_nothing_else() -> None:
    inputs = np.tile(np.array([0, 1, 2, 3, 4, 5], dtype=np.int32), (500, 1))
    targets = inputs.copy()
    original = inputs.copy()
    new_inputs, new_targets = replacement(0.3).batch(inputs, targets, epoch=2, index=7)
    assert np.array_equal(inputs, original) and np.array_equal(targets, original)  # the batch's own arrays kept
    assert new_inputs.dtype == np.int32
    for new in (new_inputs, new_targets):
        changed = new != original
        assert set(original[changed].tolist()) == {3, 4} and set(new[changed].tolist()) == {6}
        assert 0.25 < changed.sum() / np.isin(original, [3, 4]).sum() < 0.35
    # Inputs and targets draw on their own.
    assert not np.array_equal(new_inputs, new_targets)


def test_the_draws_depend_on_seed_epoch_and_batch_alone() -> None:
    """So a run resumed mid-epoch reads the same words as unknown as an uninterrupted one."""
    ids = np.tile(np.array([3, 4], dtype=np.int64), (50, 1))
    first = replacement().batch(ids, ids, epoch=1, index=4)
    again = replacement().batch(ids, ids, epoch=1, index=4)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    for other in (replacement().batch(ids, ids, 2, 4), replacement().batch(ids, ids, 1, 5)):
        assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], replacement(seed=1).batch(ids, ids, 1, 4)[0])


def test_the_unknown_word_takes_its_expected_share_of_the_counts() -> None:
    counts = replacement(0.25).expected_counts(TARGET_COUNTS)
    assert counts.tolist() == [0, 9, 2, 0.75, 0.75, 7, 1.5]
    assert counts.sum() == TARGET_COUNTS.sum()


def test_real_text_on_the_numpy_engine_reads_half_its_singletons_as_unknown() -> None:
    numpy, keras, real = EngineKind.numpy, EngineKind.keras, REAL_TEXT_MIN_TOKENS
    assert resolve_unk_singletons(None, real, numpy) == AUTO_UNK_SINGLETONS == 0.5
    # Not for a few sentences learned by heart, not on the Keras engine, never over what the user names.
    assert resolve_unk_singletons(None, real - 1, numpy) == 0.0
    assert resolve_unk_singletons(None, real, keras) == 0.0
    assert resolve_unk_singletons(0.0, real, numpy) == 0.0
    assert resolve_unk_singletons(0.2, 10, numpy) == 0.2


def real_text(lines: int = 1_200) -> str:
    """Real text by size (five words a line), with a word of its own on every tenth line."""
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "log"]
    text = []
    for line in range(lines):
        chosen = [words[(line + step) % len(words)] for step in range(5)]
        if line % 10 == 0:
            chosen[2] = f"name{line}"
        text.append(" ".join(chosen))
    return "\n".join(text) + "\n"


@pytest.mark.parametrize(
    ("options", "expected"),
    [([], AUTO_UNK_SINGLETONS), (["--unk-singletons", "0"], 0.0), (["--unk-singletons", "0.8"], 0.8)],
)
def test_a_run_prices_unknown_words_by_context_when_it_reads_singletons_as_unknown(
    tmp_path: Path, options: list[str], expected: float
) -> None:
    (tmp_path / "real.txt").write_text(real_text(), encoding="utf-8")
    small = ["--units", "8", "--embedding-dim", "8", "--epochs", "2"]
    trained = rnngen("train", "real.txt", "-o", "model", *small, *options, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["unk_singletons"] == expected
    vocabulary = json.loads((tmp_path / "model" / "vocabulary.json").read_text(encoding="utf-8"))
    assert (vocabulary["unknown_id"] is not None) is (expected > 0)
    # A new name where the training names stood: scored, with its spelling, either way.
    (tmp_path / "held.txt").write_text("the cat newname on a\n", encoding="utf-8")
    scored = rnngen("evaluate", "held.txt", "-m", "model", "--json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    figures = json.loads(scored.stdout)
    assert figures["unknown_tokens"] == 1 and np.isfinite(figures["bits_per_char"])
    # The unknown word is never generated, nor offered as a next word.
    generated = rnngen("generate", "the", "-m", "model", "-n", "30", cwd=tmp_path)
    assert generated.returncode == 0 and "<unk>" not in generated.stdout
    offered = rnngen("next", "the cat", "-m", "model", "-k", "20", cwd=tmp_path)
    assert offered.returncode == 0 and "<unk>" not in offered.stdout


def test_the_seed_corpus_gets_no_unknown_word(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    trained = rnngen("train", "seed.txt", "-o", "model", "--epochs", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["unk_singletons"] == 0.0
    vocabulary = json.loads((tmp_path / "model" / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary["unknown_id"] is None


def test_reading_singletons_as_unknown_teaches_where_new_words_come(tmp_path: Path) -> None:
    """Every tenth line has a name of its own after "the cat": the model that read names as unknown
    expects a new one there, where the other can only charge the escape probability of any word."""
    (tmp_path / "real.txt").write_text(real_text(), encoding="utf-8")
    (tmp_path / "held.txt").write_text("the cat newname on a\n", encoding="utf-8")
    small = ["--units", "16", "--embedding-dim", "16", "--epochs", "20"]
    bits = {}
    for probability in ("0.5", "0"):
        trained = rnngen("train", "real.txt", "-o", probability, *small, "--unk-singletons", probability, cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr
        scored = rnngen("evaluate", "held.txt", "-m", probability, "--json", cwd=tmp_path)
        bits[probability] = json.loads(scored.stdout)["bits_per_char"]
    assert bits["0.5"] < bits["0"] - 0.1, bits
