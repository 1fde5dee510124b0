"""After a run that read words seen once as <unk>: the output bias calibrated class by class on the
held-out lines, and the words only those lines hold given ids of their own (rnngen/train/calibration.py)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnngen.data.vocab import Vocabulary
from rnngen.network.forward import softmax
from rnngen.network.weights import EMBEDDING, OUTPUT_BIAS, OUTPUT_KERNEL
from rnngen.train.calibration import (
    CLASS_NAMES,
    END_OF_LINE_CLASS,
    MIN_CLASS_TARGETS,
    MOST_DISCOUNT,
    MOST_HELD_OUT_SHARE,
    PADDING_CLASS,
    UNKNOWN_CLASS,
    absolute_discount,
    calibrated_shifts,
    calibrated_weights,
    fitted_logit_scale,
    held_out_only_counts,
    id_classes,
    with_held_out_words,
)
from tests.conftest import rnngen
from tests.test_unknown_singletons import real_text

# Words 1-3, end of line 4, unknown word 5.
VOCABULARY = Vocabulary(("a", "b", "c"), has_unknown=True)


def test_ids_fall_into_classes_by_training_count() -> None:
    vocabulary = Vocabulary(tuple("abcdefghi"), has_unknown=True)
    counts = np.array([0, 1, 2, 3, 4, 5, 16, 17, 300, 64, 900, 7])
    assert id_classes(vocabulary, counts).tolist() == [
        PADDING_CLASS,
        0,
        1,
        2,
        2,
        3,
        4,
        5,
        7,
        5,
        END_OF_LINE_CLASS,
        UNKNOWN_CLASS,
    ]
    assert CLASS_NAMES[0] == "seen 1" and CLASS_NAMES[2] == "seen 3-4" and CLASS_NAMES[7] == "seen 257+"
    assert CLASS_NAMES[UNKNOWN_CLASS] == "<unk>" and len(CLASS_NAMES) == PADDING_CLASS


def class_masses(random: np.random.Generator, positions: int) -> np.ndarray:
    """Random class probabilities per position, padding's always 0."""
    masses = random.dirichlet(np.ones(PADDING_CLASS), size=positions)
    return np.concatenate([masses, np.zeros((positions, 1))], axis=1)


def shifted(masses: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    weighted = masses * np.exp(shifts)
    return weighted / weighted.sum(axis=1, keepdims=True)


def test_after_the_fit_each_class_receives_as_much_probability_as_it_has_targets() -> None:
    random = np.random.default_rng(0)
    masses = class_masses(random, 5_000)
    # Targets drawn from distorted probabilities: the fit must undo the distortion.
    truth = np.zeros(PADDING_CLASS + 1)
    truth[[0, UNKNOWN_CLASS, END_OF_LINE_CLASS]] = [0.8, 0.7, -0.5]
    real = shifted(masses, truth)
    targets = np.array([random.choice(PADDING_CLASS + 1, p=row) for row in real])
    shifts = calibrated_shifts(masses, targets)
    counts = np.bincount(targets, minlength=PADDING_CLASS + 1)
    reference = int(np.argmax(counts))
    assert shifts[reference] == 0.0 and shifts[PADDING_CLASS] == 0.0
    received = shifted(masses, shifts).sum(axis=0)
    np.testing.assert_allclose(received[:PADDING_CLASS], counts[:PADDING_CLASS], rtol=1e-6)
    # Up to the reference's own shift, the distortion is found again.
    found, distortion = shifts - shifts[reference], truth - truth[reference]
    np.testing.assert_allclose(found[:PADDING_CLASS], distortion[:PADDING_CLASS], atol=0.15)


def test_the_fit_is_the_likeliest() -> None:
    random = np.random.default_rng(1)
    masses = class_masses(random, 3_000)
    targets = np.array([random.choice(PADDING_CLASS + 1, p=row) for row in masses])
    best = calibrated_shifts(masses, targets)

    def log_likelihood(shifts: np.ndarray) -> float:
        return float(np.log(shifted(masses, shifts)[np.arange(len(targets)), targets]).sum())

    for nudge in (np.eye(PADDING_CLASS + 1)[UNKNOWN_CLASS] * 0.05, np.eye(PADDING_CLASS + 1)[0] * -0.05):
        assert log_likelihood(best) > log_likelihood(best + nudge)


def test_rare_classes_keep_their_bias_but_the_unknown_word_is_always_fitted() -> None:
    """A closed vocabulary's held-out lines hold no new word; a later text may, so <unk> keeps a chance."""
    random = np.random.default_rng(2)
    masses = class_masses(random, 2_000)
    # No unknown target, and only a few of "seen 1".
    targets = np.full(2_000, 7)
    targets[: MIN_CLASS_TARGETS - 1] = 0
    targets[100:1000] = END_OF_LINE_CLASS
    shifts = calibrated_shifts(masses, targets)
    assert shifts[0] == 0.0 and shifts[7] == 0.0 and shifts[END_OF_LINE_CLASS] != 0.0
    # Fitted as though one target were unknown.
    assert shifted(masses, shifts)[:, UNKNOWN_CLASS].sum() == pytest.approx(1.0, rel=1e-6)


def test_the_fitted_scale_undoes_a_temperature() -> None:
    """Targets drawn from softmax(0.8 z): the logits z are too sure of themselves by 1 / 0.8."""
    random = np.random.default_rng(3)
    outputs = random.normal(size=(3_000, 6)).astype(np.float32)
    kernel, bias = random.normal(size=(6, 40)).astype(np.float32), random.normal(size=40).astype(np.float32)
    logits = outputs @ kernel + bias
    targets = np.array([random.choice(40, p=row) for row in softmax(0.8 * logits)])
    scale = fitted_logit_scale(outputs, targets, kernel, bias)
    assert scale == pytest.approx(0.8, abs=0.05)

    def log_likelihood(factor: float) -> float:
        return float(np.log(softmax(factor * logits)[np.arange(len(targets)), targets]).sum())

    assert log_likelihood(scale) > max(log_likelihood(scale - 0.02), log_likelihood(scale + 0.02))


def test_the_calibrated_weights_scale_the_output_layer_then_shift_each_ids_bias_by_its_class() -> None:
    weights = {
        OUTPUT_BIAS: np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32),
        OUTPUT_KERNEL: np.ones((2, 4), dtype=np.float32),
        EMBEDDING: np.zeros((4, 2)),
    }
    moved = calibrated_weights(weights, 0.5, np.array([2, 0, 1, 0]), np.array([0.5, -1.0, 0.0]))
    assert moved[OUTPUT_BIAS].tolist() == [0.0, 1.0, 0.0, 2.0] and moved[OUTPUT_BIAS].dtype == np.float32
    assert np.array_equal(moved[OUTPUT_KERNEL], np.full((2, 4), 0.5))
    assert moved[EMBEDDING] is weights[EMBEDDING] and weights[OUTPUT_BIAS].tolist() == [0.0, 1.0, 2.0, 3.0]
    unscaled = calibrated_weights(weights, 1.0, np.zeros(4, dtype=np.int64), np.zeros(3))
    assert unscaled[OUTPUT_KERNEL] is weights[OUTPUT_KERNEL]


def test_only_words_the_vocabulary_lacks_are_counted_and_never_the_texts_marker() -> None:
    marked = Vocabulary(("a", "b"), has_unknown=True, unknown_marker="<unk>")
    lines = [["a", "x", "y", "x"], ["<unk>", "b", "y", "z"]]
    assert held_out_only_counts(marked, lines) == Counter({"x": 2, "y": 2, "z": 1})


def test_the_discount_is_kneser_neys_and_kept_below_one() -> None:
    # Padding 0; words 1-3 seen 5, 1 and 2 times: n1 = 1, n2 = 1, D = 1 / 3; then <eol> and <unk>.
    assert absolute_discount(np.array([0, 5, 1, 2, 9, 3]), VOCABULARY) == pytest.approx(1 / 3)
    # No word seen twice would make D 1, which leaves a word seen once nothing.
    assert absolute_discount(np.array([0, 5, 1, 1, 9, 3]), VOCABULARY) == MOST_DISCOUNT
    assert absolute_discount(np.array([0, 5, 3, 2, 9, 3]), VOCABULARY) == 0.5


def small_weights(vocabulary: Vocabulary, width: int = 4) -> dict[str, np.ndarray]:
    random = np.random.default_rng(1)
    return {
        EMBEDDING: random.normal(size=(vocabulary.size, width)).astype(np.float32),
        OUTPUT_KERNEL: random.normal(size=(width, vocabulary.size)).astype(np.float32),
        OUTPUT_BIAS: random.normal(size=vocabulary.size).astype(np.float32),
        "rnn0.forward.kernel": random.normal(size=(width, width)).astype(np.float32),
    }


def test_new_words_take_a_share_of_the_unknown_words_probability_and_nothing_else() -> None:
    weights = small_weights(VOCABULARY)
    counts = Counter({"y": 1, "x": 3})
    extended, new_weights, share = with_held_out_words(
        VOCABULARY, weights, counts, discount=0.5, corpus_tokens=1_000, unknown_rate=0.05
    )
    # Appended most frequent first; <eol> and <unk> move up behind them.
    assert extended.words == ("a", "b", "c", "x", "y")
    assert (extended.end_of_line_id, extended.unknown_id) == (6, 7)
    assert new_weights["rnn0.forward.kernel"] is weights["rnn0.forward.kernel"]
    old_unknown, old_end = VOCABULARY.unknown_id, VOCABULARY.end_of_line_id
    assert old_unknown is not None
    for new_id in (4, 5, 7):  # x, y and <unk> read and predict as <unk> did
        assert np.array_equal(new_weights[EMBEDDING][new_id], weights[EMBEDDING][old_unknown])
        assert np.array_equal(new_weights[OUTPUT_KERNEL][:, new_id], weights[OUTPUT_KERNEL][:, old_unknown])
    assert np.array_equal(new_weights[EMBEDDING][6], weights[EMBEDDING][old_end])
    # Shares: (count - D) / corpus tokens / unknown rate.
    assert share == pytest.approx((2.5 + 0.5) / 1_000 / 0.05)
    states = np.random.default_rng(2).normal(size=(20, 4))
    before = softmax(states @ weights[OUTPUT_KERNEL] + weights[OUTPUT_BIAS])
    after = softmax(states @ new_weights[OUTPUT_KERNEL] + new_weights[OUTPUT_BIAS])
    # Every other id keeps its probability; x, y and <unk> split <unk>'s, x five times y's.
    np.testing.assert_allclose(after[:, :4], before[:, :4], rtol=1e-5)
    np.testing.assert_allclose(after[:, 6], before[:, old_end], rtol=1e-5)
    np.testing.assert_allclose(after[:, [4, 5, 7]].sum(axis=1), before[:, old_unknown], rtol=1e-5)
    np.testing.assert_allclose(after[:, 4] / after[:, 5], 5.0, rtol=1e-4)
    np.testing.assert_allclose(after[:, 4] / before[:, old_unknown], 2.5 / 1_000 / 0.05, rtol=1e-4)


def test_new_words_never_take_most_of_the_unknown_words_probability() -> None:
    counts = Counter({f"w{index}": 5 for index in range(100)})
    _, weights, share = with_held_out_words(
        VOCABULARY, small_weights(VOCABULARY), counts, discount=0.5, corpus_tokens=1_000, unknown_rate=0.01
    )
    assert share == pytest.approx(MOST_HELD_OUT_SHARE)
    assert np.isfinite(weights[OUTPUT_BIAS]).all()


SMALL = ["--units", "8", "--embedding-dim", "8", "--epochs", "2"]


def train(tmp_path: Path, *options: str) -> tuple[dict, dict]:
    """Train on real_text() (a name of its own on every tenth line) and read config.json and the vocabulary."""
    (tmp_path / "real.txt").write_text(real_text(), encoding="utf-8")
    trained = rnngen("train", "real.txt", "-o", "model", *SMALL, *options, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    vocabulary = json.loads((tmp_path / "model" / "vocabulary.json").read_text(encoding="utf-8"))
    # The summary says how many of the vocabulary's words came from the held-out lines, when any did.
    held_out_words = config.get("calibration", {}).get("held_out_words", 0)
    assert (f"with {held_out_words:,} words of the held-out lines" in trained.stderr) is (held_out_words > 0)
    return config, vocabulary


def held_out_names(seed: int = 0) -> list[str]:
    """The names of real_text()'s lines that the default split holds out for validation."""
    from rnngen.data.corpus import held_out_line_numbers
    from rnngen.train.setup import resolve_val_split

    lines = real_text().splitlines()
    split = resolve_val_split(len(lines), 5 * len(lines), None, has_validation_file=False)
    chosen = held_out_line_numbers(len(lines), split, seed).tolist()
    return [lines[number].split()[2] for number in chosen if number % 10 == 0]


def test_a_default_run_gives_the_held_out_lines_words_ids_and_fits_the_unknown_word(tmp_path: Path) -> None:
    names = held_out_names()
    assert names  # the split holds out some of the names' lines
    config, vocabulary = train(tmp_path)
    fit = config["calibration"]
    assert fit["fitted_on"] == "held-out lines" and fit["held_out_words"] == len(names)
    assert 0 < fit["held_out_share"] <= MOST_HELD_OUT_SHARE and math.isfinite(fit["shifts"]["<unk>"])
    assert set(fit["shifts"]) == set(CLASS_NAMES)
    assert set(names) <= set(vocabulary["words"])
    assert config["model"]["vocab_size"] == len(vocabulary["words"]) + 3
    # A held-out name is now a word of the model, priced below a name it never met.
    (tmp_path / "held.txt").write_text(f"the cat {names[0]} on a\n", encoding="utf-8")
    (tmp_path / "new.txt").write_text("the cat newname on a\n", encoding="utf-8")
    known = json.loads(rnngen("evaluate", "held.txt", "-m", "model", "--json", cwd=tmp_path).stdout)
    new = json.loads(rnngen("evaluate", "new.txt", "-m", "model", "--json", cwd=tmp_path).stdout)
    assert known["unknown_tokens"] == 0 and new["unknown_tokens"] == 1
    assert known["bits_per_char"] < new["bits_per_char"]
    info = json.loads(rnngen("info", "-m", "model", "--json", cwd=tmp_path).stdout)["vocabulary"]
    assert info["held_out_words"] == len(names) and info["unknown_bias_shift"] == fit["shifts"]["<unk>"]
    generated = rnngen("generate", "the", "-m", "model", "-n", "20", cwd=tmp_path)
    assert generated.returncode == 0 and "<unk>" not in generated.stdout


def test_enough_held_out_targets_fit_a_temperature_and_save_a_tied_model_untied(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text(real_text(2_000), encoding="utf-8")
    trained = rnngen("train", "real.txt", "-o", "model", *SMALL, "--tie-embeddings", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    scale = config["calibration"]["logit_scale"]
    assert scale != 1.0 and config["model"]["tie_embeddings"] is False
    weights = np.load(tmp_path / "model" / "weights.npz")
    np.testing.assert_allclose(weights[OUTPUT_KERNEL], scale * weights[EMBEDDING].T, rtol=1e-4, atol=1e-6)
    scored = rnngen("evaluate", "real.txt", "-m", "model", "--json", cwd=tmp_path)
    assert scored.returncode == 0 and math.isfinite(json.loads(scored.stdout)["bits_per_char"])


def test_without_held_out_lines_the_shift_undoes_the_replacement_rate(tmp_path: Path) -> None:
    config, _ = train(tmp_path, "--val-split", "0", "--unk-singletons", "0.25")
    fit = config["calibration"]
    assert fit["fitted_on"] == "replacement rate" and fit["held_out_words"] == 0 and fit["logit_scale"] == 1.0
    assert fit["shifts"]["<unk>"] == pytest.approx(math.log(4), abs=1e-6)
    assert all(shift == 0.0 for name, shift in fit["shifts"].items() if name != "<unk>")


@pytest.mark.parametrize("options", [["--max-vocab", "1000"], ["--valid", "valid.txt"]])
def test_words_are_added_only_from_the_corpus_and_when_the_vocabulary_holds_every_word(
    tmp_path: Path, options: list[str]
) -> None:
    (tmp_path / "valid.txt").write_text("the cat othername on a\n" * 50, encoding="utf-8")
    config, vocabulary = train(tmp_path, *options)
    assert config["calibration"]["held_out_words"] == 0
    assert "othername" not in vocabulary["words"]
    assert config["model"]["vocab_size"] == len(vocabulary["words"]) + 3


def test_a_run_that_reads_nothing_as_unknown_is_left_as_trained(tmp_path: Path) -> None:
    config, vocabulary = train(tmp_path, "--unk-singletons", "0")
    assert "calibration" not in config and vocabulary["unknown_id"] is None
