"""The Kneser-Ney trigram a network is mixed with (rnngen/network/trigram.py): the same probabilities as
the benchmarks' baseline, distributions that add up to one, counts merged across blocks."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnngen.data.batches import TokenStream
from rnngen.data.vocab import PADDING_ID, Vocabulary
from rnngen.network.trigram import KneserNeyTrigram, TrigramMixture, contexts_before, counted_trigrams

LINES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat ran",
    "on the mat the cat sat",
    "a bird",
]


def baseline_module():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "ngram_baselines.py"
    spec = importlib.util.spec_from_file_location("ngram_baselines_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def token_lines() -> list[list[str]]:
    return [line.split() for line in LINES]


def trigram_of(vocabulary: Vocabulary, escape: float = 0.1, blocks: int = 1) -> KneserNeyTrigram:
    id_lines = [[vocabulary.id_of(token) or vocabulary.unknown_id for token in tokens] for tokens in token_lines()]
    step = -(-len(id_lines) // blocks)
    streams = [TokenStream.from_lines(id_lines[start : start + step]) for start in range(0, len(id_lines), step)]
    keys, counts = counted_trigrams(streams, vocabulary.size, vocabulary.end_of_line_id)
    return KneserNeyTrigram(keys, counts, vocabulary.size, vocabulary.unknown_id, escape)


def test_the_probabilities_are_the_benchmark_baselines() -> None:
    baselines = baseline_module()
    vocabulary = Vocabulary.build(token_lines())
    trigram = trigram_of(vocabulary)
    reference = baselines.KneserNeyTrigram(token_lines(), len(Counter(w for t in token_lines() for w in t)) + 1)
    end = baselines.END
    eol = vocabulary.end_of_line_id
    words, firsts, seconds, expected = [], [], [], []
    for tokens in [*token_lines(), "the cat sat on a log".split(), "dog the bird".split()]:
        history = [baselines.START, baselines.START]
        ids = [PADDING_ID, eol]
        for token in [*tokens, end]:
            words.append(eol if token == end else vocabulary.id_of(token))
            firsts.append(ids[-2])
            seconds.append(ids[-1])
            expected.append(reference.probability(token, history[-2], history[-1]))
            history.append(token)
            ids.append(words[-1])
    assert trigram.discounts == pytest.approx(reference.discounts)
    # Without <unk> the escape is left out: the trigram covers the known words alone.
    np.testing.assert_allclose(trigram.probabilities(words, firsts, seconds), expected, rtol=1e-12)


def test_distributions_add_up_to_one_and_hold_the_single_probabilities() -> None:
    vocabulary = Vocabulary.build(token_lines(), min_count=2)  # words seen once become <unk>
    assert vocabulary.unknown_id is not None
    trigram = trigram_of(vocabulary, escape=0.2)
    size = vocabulary.size
    firsts = np.array([PADDING_ID, vocabulary.end_of_line_id, vocabulary.id_of("the"), vocabulary.unknown_id, 1])
    seconds = np.array([vocabulary.end_of_line_id, vocabulary.id_of("the"), vocabulary.id_of("cat"), 1, 2])
    rows = trigram.distributions(firsts, seconds)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-12)
    assert (rows[:, PADDING_ID] == 0).all() and (rows[:, 1:] > 0).all()
    assert (rows[:, vocabulary.unknown_id] >= 0.2).all()
    for row, (first, second) in enumerate(zip(firsts, seconds, strict=True)):
        every = np.arange(size)
        singles = trigram.probabilities(every, np.full(size, first), np.full(size, second))
        np.testing.assert_allclose(rows[row, 1:], singles[1:], rtol=1e-12)
    # The word the text has most often after "the cat" is "sat" (<unk>, "ran" once, has the escape too).
    words = rows[2].copy()
    words[vocabulary.unknown_id] = 0.0
    assert int(np.argmax(words)) == vocabulary.id_of("sat")


def test_counts_merged_across_blocks_are_those_of_one_block() -> None:
    vocabulary = Vocabulary.build(token_lines())
    whole, split = trigram_of(vocabulary), trigram_of(vocabulary, blocks=3)
    np.testing.assert_array_equal(whole.trigram_keys, split.trigram_keys)
    np.testing.assert_array_equal(whole.trigram_counts, split.trigram_counts)
    # Six lines of 2 to 6 words: one trigram per token and per line end.
    assert int(whole.trigram_counts.sum()) == sum(len(tokens) + 1 for tokens in token_lines())


def test_a_mixture_mixes_and_the_context_starts_at_the_lines_start() -> None:
    vocabulary = Vocabulary.build(token_lines())
    mixture = TrigramMixture(trigram_of(vocabulary), network_weight=0.75)
    np.testing.assert_allclose(mixture.mix_into(np.array([0.4, 0.0]), np.array([0.0, 0.8])), [0.3, 0.2])
    eol = vocabulary.end_of_line_id
    assert contexts_before([eol]) == (PADDING_ID, eol)
    assert contexts_before([eol, 3, 4]) == (3, 4)


def test_remapped_counts_are_those_of_the_lines_read_with_the_new_ids() -> None:
    vocabulary = Vocabulary.build(token_lines(), min_count=2)
    assert vocabulary.unknown_id is not None
    # A vocabulary with two more words before <eol> and <unk>, as calibration's held-out words make one.
    extended = Vocabulary((*vocabulary.words, "zebra", "yak"), has_unknown=True)
    assert extended.unknown_id is not None
    id_map = np.arange(vocabulary.size)
    id_map[vocabulary.end_of_line_id] = extended.end_of_line_id
    id_map[vocabulary.unknown_id] = extended.unknown_id
    remapped = trigram_of(vocabulary, escape=0.2).remapped(id_map, extended.size, extended.unknown_id)
    counted = trigram_of(extended, escape=0.2)
    np.testing.assert_array_equal(remapped.trigram_keys, counted.trigram_keys)
    np.testing.assert_array_equal(remapped.trigram_counts, counted.trigram_counts)
    assert remapped.discounts == counted.discounts and remapped.escape == counted.escape


def test_lines_added_later_count_as_though_counted_with_the_rest() -> None:
    vocabulary = Vocabulary.build(token_lines())
    id_lines = [vocabulary.encode(tokens).ids for tokens in token_lines()]
    first = TokenStream.from_lines(id_lines[:4])
    keys, counts = counted_trigrams([first], vocabulary.size, vocabulary.end_of_line_id)
    partial = KneserNeyTrigram(keys, counts, vocabulary.size, vocabulary.unknown_id, 0.1)
    added = partial.with_lines(TokenStream.from_lines(id_lines[4:]), vocabulary.end_of_line_id)
    whole = trigram_of(vocabulary)
    np.testing.assert_array_equal(added.trigram_keys, whole.trigram_keys)
    np.testing.assert_array_equal(added.trigram_counts, whole.trigram_counts)
    assert added.discounts == whole.discounts and added.escape == whole.escape
