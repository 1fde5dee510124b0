"""The word-count model a trained network is mixed with: an interpolated Kneser-Ney trigram over the
model's ids, and the mixture itself.

A recurrent network and a trigram of word counts know different things: the network reads the whole
line but learns a word it has seen a few times only vaguely; the counts remember every word pair and
triple exactly but see two words back. Their linear mixture, lambda P_network + (1 - lambda) P_trigram,
scores held-out text better than either (Mikolov et al., "Empirical Evaluation and Combination of
Advanced Language Modeling Techniques", 2011, mixed their networks with a Kneser-Ney 5-gram the same
way). Training fits lambda on the held-out lines (rnngen.train.mixture); this module holds the counts
and computes the trigram's probabilities, for single targets (scoring) and for whole rows of the
vocabulary (generation).

The trigram (Chen and Goodman's interpolated Kneser-Ney, one discount per order, as
benchmarks/ngram_baselines.py builds its baseline): each line is read as ``<pad> <eol> w1 .. wk <eol>``,
the first <eol> standing for the line's start, as the network reads it. The top order uses counts; the
bigram and unigram orders continuation counts (how many distinct words come before); the unigram order
is interpolated with a uniform share over every id but padding, so that every word the vocabulary has
gets some probability. In a vocabulary with <unk>, the trigram's own guess that the next word is new
is the escape probability e (Good-Turing's share of words seen once): <unk> gets e more, and the
rest (1 - e) of what it had.

The counts are kept as the sorted keys ((u V + v) V + w) of the distinct trigrams and their counts, all
the rest derived when loaded: a few tens of megabytes for a corpus of two million tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from rnngen.data.batches import TokenStream
from rnngen.data.vocab import PADDING_ID

# Trigram keys are (u V + v) V + w in an int64: vocabularies up to this size fit.
LARGEST_VOCABULARY = 2_000_000
TRIGRAM_KEYS = "trigram_keys"
TRIGRAM_COUNTS = "trigram_counts"


def line_trigram_keys(stream: TokenStream, vocab_size: int, end_of_line_id: int) -> np.ndarray:
    """The key of every trigram the lines of ``stream`` hold, read as ``<pad> <eol> w1 .. wk <eol>``:
    one per token and one per line end, unsorted."""
    lengths = stream.line_lengths
    lines = len(lengths)
    # Each line takes three more places than its tokens: <pad>, the starting <eol> and the ending one.
    padded_starts = stream.line_starts[:-1] + 3 * np.arange(lines, dtype=np.int64)
    padded = np.full(len(stream.ids) + 3 * lines, end_of_line_id, dtype=np.int64)
    padded[padded_starts] = PADDING_ID
    token_lines = np.repeat(np.arange(lines, dtype=np.int64), lengths)
    token_places = np.arange(len(stream.ids), dtype=np.int64) + 3 * token_lines + 2
    padded[token_places] = stream.ids
    line_ends = padded_starts + lengths + 2
    targets = np.concatenate([token_places, line_ends])
    size = np.int64(vocab_size)
    return (padded[targets - 2] * size + padded[targets - 1]) * size + padded[targets]


def _merged(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and the sum of the counts each had."""
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) else np.zeros(0, np.int64)
    return keys[starts], np.add.reduceat(counts, starts) if len(keys) else counts


def counted_trigrams(
    streams: Iterable[TokenStream], vocab_size: int, end_of_line_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct trigram keys of all the streams' lines, sorted, and how often each occurs (int64)."""
    if vocab_size > LARGEST_VOCABULARY:
        raise ValueError(f"a trigram over more than {LARGEST_VOCABULARY:,} ids does not fit its keys")
    # Each block's distinct keys, merged once at the end: merging after every block would sort what was
    # counted so far again each time.
    block_keys, block_counts = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for stream in streams:
        keys, counts = np.unique(line_trigram_keys(stream, vocab_size, end_of_line_id), return_counts=True)
        block_keys.append(keys)
        block_counts.append(counts)
    return _merged(np.concatenate(block_keys), np.concatenate(block_counts))


def discount(counts: np.ndarray) -> float:
    """D = n1 / (n1 + 2 n2) from one order's count-of-counts (Ney, Essen and Kneser); 0.5 when a tiny text
    lacks counts of one or two, and within [0.1, 0.9] so that seen events keep most of their mass and
    the order below always gets some."""
    ones, twos = int((counts == 1).sum()), int((counts == 2).sum())
    value = ones / (ones + 2 * twos) if ones and twos else 0.5
    return min(max(value, 0.1), 0.9)


@dataclass(frozen=True)
class _Contexts:
    """One order's contexts: sorted context keys, where each one's entries start among the order's sorted
    keys (with one end more), the sum of their counts and how many distinct words follow."""

    keys: np.ndarray
    starts: np.ndarray
    totals: np.ndarray
    types: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int) -> _Contexts:
        context_keys = keys // vocab_size
        first = np.concatenate([[True], context_keys[1:] != context_keys[:-1]]) if len(keys) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        totals = np.add.reduceat(counts, starts) if len(keys) else np.zeros(0, np.int64)
        return cls(context_keys[starts], np.append(starts, len(keys)), totals, np.diff(np.append(starts, len(keys))))

    def find(self, context_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each context key: its index among the contexts, and whether it is one (seen in training)."""
        index = np.minimum(np.searchsorted(self.keys, context_keys), max(len(self.keys) - 1, 0))
        found = self.keys[index] == context_keys if len(self.keys) else np.zeros(len(context_keys), bool)
        return index, found


class KneserNeyTrigram:
    """P(w | u v) over a model's ids, from the counts ``counted_trigrams`` gives (module docstring)."""

    def __init__(
        self,
        trigram_keys: np.ndarray,
        trigram_counts: np.ndarray,
        vocab_size: int,
        unknown_id: int | None,
        escape: float,
    ) -> None:
        size = np.int64(vocab_size)
        self.vocab_size = vocab_size
        self.unknown_id = unknown_id
        self.escape = escape if unknown_id is not None else 0.0
        self.trigram_keys = trigram_keys.astype(np.int64, copy=False)
        self.trigram_counts = trigram_counts.astype(np.int64, copy=False)
        # Continuation counts: N1+(. v w), the distinct u before (v, w); N1+(. w), the distinct v before w.
        self.bigram_keys, self.bigram_counts = np.unique(self.trigram_keys % (size * size), return_counts=True)
        unigram_counts = np.bincount(self.bigram_keys % size, minlength=vocab_size).astype(np.float64)
        self.discounts = (
            discount(unigram_counts[unigram_counts > 0]),
            discount(self.bigram_counts),
            discount(self.trigram_counts),
        )
        self.trigram_contexts = _Contexts.of(self.trigram_keys, self.trigram_counts, vocab_size)
        self.bigram_contexts = _Contexts.of(self.bigram_keys, self.bigram_counts, vocab_size)
        # Bigram contexts are single ids: their totals and types as dense arrays, indexed by id.
        self.bigram_totals = np.zeros(vocab_size)
        self.bigram_types = np.zeros(vocab_size)
        self.bigram_totals[self.bigram_contexts.keys] = self.bigram_contexts.totals
        self.bigram_types[self.bigram_contexts.keys] = self.bigram_contexts.types
        lowest = self.discounts[0]
        predictable = vocab_size - 1  # every id but padding
        unigrams = np.maximum(unigram_counts - lowest, 0.0) + lowest * int((unigram_counts > 0).sum()) / predictable
        unigrams[PADDING_ID] = 0.0
        self.unigram = unigrams / max(unigram_counts.sum(), 1.0)

    def remapped(self, id_map: np.ndarray, vocab_size: int, unknown_id: int | None) -> KneserNeyTrigram:
        """The same counts over another vocabulary: each id ``i`` becomes ``id_map[i]`` (one id to one,
        so no two trigrams merge) among ``vocab_size`` ids."""
        size, new_size = np.int64(self.vocab_size), np.int64(vocab_size)
        firsts, rest = np.divmod(self.trigram_keys, size * size)
        seconds, words = np.divmod(rest, size)
        keys = (id_map[firsts] * new_size + id_map[seconds]) * new_size + id_map[words]
        order = np.argsort(keys, kind="stable")
        return KneserNeyTrigram(keys[order], self.trigram_counts[order], vocab_size, unknown_id, self.escape)

    def with_lines(self, stream: TokenStream, end_of_line_id: int) -> KneserNeyTrigram:
        """The same counts with those of ``stream``'s lines (ids of this vocabulary) added."""
        keys, counts = counted_trigrams([stream], self.vocab_size, end_of_line_id)
        keys, counts = _merged(np.concatenate([self.trigram_keys, keys]), np.concatenate([self.trigram_counts, counts]))
        return KneserNeyTrigram(keys, counts, self.vocab_size, self.unknown_id, self.escape)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What a model folder keeps of it (the rest is derived when it is loaded)."""
        return {TRIGRAM_KEYS: self.trigram_keys, TRIGRAM_COUNTS: self.trigram_counts.astype(np.int32)}

    def _bigram(self, words: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        size = np.int64(self.vocab_size)
        keys = seconds * size + words
        index = np.minimum(np.searchsorted(self.bigram_keys, keys), len(self.bigram_keys) - 1)
        counts = np.where(self.bigram_keys[index] == keys, self.bigram_counts[index], 0)
        totals, types = self.bigram_totals[seconds], self.bigram_types[seconds]
        lower = self.unigram[words]
        kept = np.maximum(counts - self.discounts[1], 0.0) + self.discounts[1] * types * lower
        return np.where(totals > 0, kept / np.maximum(totals, 1.0), lower)

    def probabilities(self, words: np.ndarray, firsts: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """P(words[i] | firsts[i] seconds[i]) for every i (float64), the escape included."""
        words, firsts, seconds = (np.asarray(ids, dtype=np.int64) for ids in (words, firsts, seconds))
        size = np.int64(self.vocab_size)
        lower = self._bigram(words, seconds)
        context_keys = firsts * size + seconds
        context, seen = self.trigram_contexts.find(context_keys)
        keys = context_keys * size + words
        index = np.minimum(np.searchsorted(self.trigram_keys, keys), len(self.trigram_keys) - 1)
        counts = np.where(self.trigram_keys[index] == keys, self.trigram_counts[index], 0)
        totals = np.where(seen, self.trigram_contexts.totals[context], 1)
        types = np.where(seen, self.trigram_contexts.types[context], 0)
        kept = (np.maximum(counts - self.discounts[2], 0.0) + self.discounts[2] * types * lower) / totals
        probabilities = (1.0 - self.escape) * np.where(seen, kept, lower)
        if self.unknown_id is not None:
            probabilities += np.where(words == self.unknown_id, self.escape, 0.0)
        return probabilities

    def distributions(self, firsts: np.ndarray, seconds: np.ndarray, dtype: DTypeLike = np.float64) -> np.ndarray:
        """P(. | firsts[i] seconds[i]) over the whole vocabulary for every row i (rows, vocab_size), each
        row adding up to 1."""
        firsts, seconds = np.asarray(firsts, dtype=np.int64), np.asarray(seconds, dtype=np.int64)
        size = np.int64(self.vocab_size)
        rows = np.empty((len(firsts), self.vocab_size), dtype=dtype)
        middle, top = self.discounts[1], self.discounts[2]
        context, seen = self.trigram_contexts.find(firsts * size + seconds)
        for row, (second, index, has_context) in enumerate(zip(seconds, context, seen, strict=True)):
            distribution = rows[row]
            total = self.bigram_totals[second]
            if total > 0:
                np.multiply(self.unigram, middle * self.bigram_types[second] / total, out=distribution)
                start = np.searchsorted(self.bigram_keys, second * size)
                end = np.searchsorted(self.bigram_keys, (second + 1) * size)
                following = self.bigram_keys[start:end] % size
                distribution[following] += np.maximum(self.bigram_counts[start:end] - middle, 0.0) / total
            else:
                distribution[:] = self.unigram
            if has_context:
                total = self.trigram_contexts.totals[index]
                distribution *= top * self.trigram_contexts.types[index] / total
                start, end = self.trigram_contexts.starts[index], self.trigram_contexts.starts[index + 1]
                following = self.trigram_keys[start:end] % size
                distribution[following] += np.maximum(self.trigram_counts[start:end] - top, 0.0) / total
        rows *= 1.0 - self.escape
        if self.unknown_id is not None:
            rows[:, self.unknown_id] += self.escape
        return rows


@dataclass(frozen=True)
class TrigramMixture:
    """A network's probabilities mixed with a trigram's: ``network_weight`` P_network + the rest P_trigram."""

    trigram: KneserNeyTrigram
    network_weight: float

    def mix_into(self, network: np.ndarray, trigram: np.ndarray) -> np.ndarray:
        """Both models' probabilities (matching shapes) mixed, written over ``network`` and returned;
        ``trigram`` is overwritten too. In place, since a batch of generation rows is tens of megabytes."""
        network *= self.network_weight
        trigram *= 1.0 - self.network_weight
        network += trigram
        return network


def contexts_before(ids: Sequence[int]) -> tuple[int, int]:
    """The trigram's context (u, v) after a row of ids that begins with the line's <eol>: the last two
    ids, <pad> standing in for what comes before the <eol>."""
    if len(ids) >= 2:
        return ids[-2], ids[-1]
    return PADDING_ID, ids[-1] if ids else PADDING_ID
