"""After a run that read words seen once as <unk>: <unk>'s probability fitted on the held-out lines, and
the words only those lines hold given ids of their own (rnngen/train/unknown_words.py)."""

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
from rnngen.train.unknown_words import (
    MOST_DISCOUNT,
    MOST_HELD_OUT_SHARE,
    absolute_discount,
    fitted_bias_shift,
    held_out_only_counts,
    with_held_out_words,
)
from tests.conftest import rnngen
from tests.test_unknown_singletons import real_text

# Words 1-3, end of line 4, unknown word 5.
VOCABULARY = Vocabulary(("a", "b", "c"), has_unknown=True)


def shifted(chances: np.ndarray, shift: float) -> np.ndarray:
    scale = math.exp(shift)
    return chances * scale / (1 - chances + chances * scale)


def test_the_fitted_shift_makes_the_chances_add_up_to_the_unknown_targets() -> None:
    chances = np.full(1_000, 0.1)
    unknown = np.arange(1_000) < 200
    shift = fitted_bias_shift(chances, unknown)
    # p e^s / (1 - p + p e^s) = 0.2 with p = 0.1: e^s = 0.2 x 0.9 / (0.1 x 0.8).
    assert shift == pytest.approx(math.log(2.25), abs=1e-9)
    assert shifted(chances, shift).sum() == pytest.approx(200)


def test_the_fitted_shift_is_the_likeliest() -> None:
    random = np.random.default_rng(0)
    chances = random.uniform(0.001, 0.2, size=5_000)
    unknown = random.random(5_000) < chances * 1.7

    def log_likelihood(shift: float) -> float:
        after = shifted(chances, shift)
        return float(np.log(np.where(unknown, after, 1 - after)).sum())

    best = fitted_bias_shift(chances, unknown)
    assert best > 0  # the chances were too low
    assert log_likelihood(best) > log_likelihood(best - 0.05)
    assert log_likelihood(best) > log_likelihood(best + 0.05)


def test_lines_without_an_unknown_word_are_fitted_as_though_one_target_were() -> None:
    """A closed vocabulary's held-out lines hold no new word; a later text may, so <unk> keeps a chance."""
    chances = np.full(10, 0.3)
    shift = fitted_bias_shift(chances, np.zeros(10, dtype=bool))
    assert shifted(chances, shift).sum() == pytest.approx(1.0)
    assert fitted_bias_shift(chances, np.ones(10, dtype=bool)) > 11


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
    fit = config["unknown_word"]
    assert fit["fitted_on"] == "held-out lines" and fit["held_out_words"] == len(names)
    assert 0 < fit["held_out_share"] <= MOST_HELD_OUT_SHARE and math.isfinite(fit["bias_shift"])
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
    assert info["held_out_words"] == len(names) and info["unknown_bias_shift"] == fit["bias_shift"]
    generated = rnngen("generate", "the", "-m", "model", "-n", "20", cwd=tmp_path)
    assert generated.returncode == 0 and "<unk>" not in generated.stdout


def test_without_held_out_lines_the_shift_undoes_the_replacement_rate(tmp_path: Path) -> None:
    config, _ = train(tmp_path, "--val-split", "0", "--unk-singletons", "0.25")
    assert config["unknown_word"]["fitted_on"] == "replacement rate"
    assert config["unknown_word"]["bias_shift"] == pytest.approx(math.log(4))
    assert config["unknown_word"]["held_out_words"] == 0


@pytest.mark.parametrize("options", [["--max-vocab", "1000"], ["--valid", "valid.txt"]])
def test_words_are_added_only_from_the_corpus_and_when_the_vocabulary_holds_every_word(
    tmp_path: Path, options: list[str]
) -> None:
    (tmp_path / "valid.txt").write_text("the cat othername on a\n" * 50, encoding="utf-8")
    config, vocabulary = train(tmp_path, *options)
    assert config["unknown_word"]["held_out_words"] == 0
    assert "othername" not in vocabulary["words"]
    assert config["model"]["vocab_size"] == len(vocabulary["words"]) + 3


def test_a_run_that_reads_nothing_as_unknown_is_left_as_trained(tmp_path: Path) -> None:
    config, vocabulary = train(tmp_path, "--unk-singletons", "0")
    assert "unknown_word" not in config and vocabulary["unknown_id"] is None
