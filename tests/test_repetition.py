"""Holding repeats back: the repetition penalty on known logits, the no-repeat n-gram rule against a
plain count of the text's n-grams, histories per row, and rows the rules leave without a word."""

from __future__ import annotations

import numpy as np
import pytest

from rnngen.config import GenerationConfig
from rnngen.inference.repetition import RepeatRules, penalised_logits
from rnngen.inference.sampling import NO_WORD, choose, choose_argmax_rows
from rnngen.network.forward import softmax


def test_the_penalty_divides_positive_logits_and_multiplies_negative_ones() -> None:
    logits = np.array([2.0, -1.0, 0.0, 4.0, -0.5])
    np.testing.assert_array_equal(penalised_logits(logits, 2.0), [1.0, -2.0, 0.0, 2.0, -1.0])
    np.testing.assert_array_equal(penalised_logits(logits, 1.0), logits)


def test_the_penalty_applies_to_every_token_already_in_the_text_once() -> None:
    logits = np.array([[0.5, 2.0, -1.0, 3.0, 1.0]])
    rules = RepeatRules(GenerationConfig(repetition_penalty=2.0), [[1, 2, 1]])
    held = logits.copy()
    rules.hold_back_logits(held)
    # Ids 1 and 2 are in the text (1 twice, penalised once); 3 and 4 are not.
    np.testing.assert_array_equal(held, [[0.5, 1.0, -2.0, 3.0, 1.0]])


def test_the_penalty_on_probabilities_is_the_softmax_of_the_penalised_logits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3, 50)).astype(np.float32)
    rules = RepeatRules(GenerationConfig(repetition_penalty=1.7), [[1, 5, 9], [], [49, 2, 2]])
    factors = rules.penalty_factors(logits)
    held = rules.hold_back_probabilities(softmax(logits), factors)
    expected_logits = logits.astype(np.float64)
    rules.hold_back_logits(expected_logits)
    np.testing.assert_allclose(held, softmax(expected_logits), rtol=1e-5)
    np.testing.assert_allclose(held.sum(axis=1), 1.0)


def ngram_completions(text: list[int], size: int) -> set[int]:
    """The plain way: every token that followed the text's last size - 1 tokens somewhere before."""
    if len(text) < size - 1:
        return set()
    last = tuple(text[len(text) - size + 1 :]) if size > 1 else ()
    return {
        text[start + size - 1] for start in range(len(text) - size + 1) if tuple(text[start : start + size - 1]) == last
    }


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_no_repeated_ngram_bans_exactly_the_completions_of_ngrams_already_there(size: int) -> None:
    rng = np.random.default_rng(size)
    prompts = [rng.integers(1, 6, length).tolist() for length in (0, 1, 2, 5, 9)]
    rules = RepeatRules(GenerationConfig(no_repeat_ngram=size), prompts)
    texts = [list(prompt) for prompt in prompts]
    for _ in range(12):
        logits = np.zeros((len(texts), 6))
        rules.hold_back_logits(logits)
        for row, text in enumerate(texts):
            assert set(np.flatnonzero(logits[row] == -np.inf).tolist()) == ngram_completions(text, size), (row, text)
        chosen = rng.integers(1, 6, len(texts)).tolist()
        rules.add(chosen)
        for text, word_id in zip(texts, chosen, strict=True):
            text.append(word_id)


def test_selected_rows_carry_their_own_histories() -> None:
    rules = RepeatRules(GenerationConfig(no_repeat_ngram=2, repetition_penalty=2.0), [[1, 2], [3, 4]])
    selected = rules.select([1, 1, 0])
    selected.add([3, 5, 1])  # texts: 3 4 3 / 3 4 5 / 1 2 1
    logits = np.ones((3, 6))
    selected.hold_back_logits(logits)
    assert np.isneginf(logits[0, 4]) and np.isneginf(logits[2, 2])  # "3 4" and "1 2" again
    assert logits[1].tolist() == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    # The rows it was selected from are as they were.
    original = np.ones((2, 6))
    rules.hold_back_logits(original)
    assert original.tolist() == [[1.0, 0.5, 0.5, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.5, 0.5, 1.0]]


def test_rules_that_are_off_change_nothing() -> None:
    rules = RepeatRules(GenerationConfig(), [[1, 2, 1, 2]])
    assert not rules.active
    logits = np.arange(5.0)[None]
    rules.hold_back_logits(logits)
    assert logits.tolist() == [[0.0, 1.0, 2.0, 3.0, 4.0]]


def test_a_row_with_no_word_left_gets_no_word() -> None:
    probabilities = np.array([[0.1, 0.0, 0.0, 0.9], [0.1, 0.5, 0.0, 0.4]])  # id 3 banned below
    generators = [np.random.default_rng(0), np.random.default_rng(1)]
    for settings in (GenerationConfig(), GenerationConfig(temperature=1.0), GenerationConfig(top_p=0.5)):
        assert choose(probabilities, settings, generators, banned_ids=[3]).tolist() == [NO_WORD, 1]
    logits = np.array([[0.0, -np.inf, -np.inf], [-np.inf, 0.0, -1.0]])
    assert choose_argmax_rows(logits).tolist() == [NO_WORD, 1]


@pytest.mark.parametrize("arguments", [{"no_repeat_ngram": -1}, {"repetition_penalty": 0.0}])
def test_impossible_repeat_settings_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GenerationConfig(**arguments)  # type: ignore[arg-type]
