"""The notebook's data step without its memory bill: per-line prefixes, pre-padded, batch by batch.

The notebook materialises every prefix of every line, padded to the longest, plus a one-hot row of
vocabulary width per target. Here the corpus is one flat id array with line boundaries; a training
sample is just the position of its target word, and padded contexts and one-hot targets exist only
for the batch being fitted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rnngen.vocab import PADDING_ID


@dataclass(frozen=True)
class TokenStream:
    """All lines' ids end to end; line ``i`` is ``ids[line_starts[i]:line_starts[i + 1]]``."""

    ids: np.ndarray  # (tokens,) int32
    line_starts: np.ndarray  # (lines + 1,) int64

    @classmethod
    def from_lines(cls, id_lines: Sequence[Sequence[int]]) -> TokenStream:
        lengths = np.fromiter((len(line) for line in id_lines), dtype=np.int64, count=len(id_lines))
        line_starts = np.zeros(len(id_lines) + 1, dtype=np.int64)
        np.cumsum(lengths, out=line_starts[1:])
        ids = np.fromiter(
            (word_id for line in id_lines for word_id in line), dtype=np.int32, count=int(line_starts[-1])
        )
        return cls(ids, line_starts)

    @property
    def line_lengths(self) -> np.ndarray:
        return np.diff(self.line_starts)


@dataclass(frozen=True)
class PrefixSamples:
    """One sample per (prefix, next word) pair: where its line starts and where its target sits."""

    line_start: np.ndarray  # (samples,) int64
    target_position: np.ndarray  # (samples,) int64

    def __len__(self) -> int:
        return len(self.target_position)

    def subset(self, order: np.ndarray) -> PrefixSamples:
        return PrefixSamples(self.line_start[order], self.target_position[order])


def prefix_samples(stream: TokenStream) -> PrefixSamples:
    """Every prefix of two or more words of every line, in the notebook's order.

    For a line ``w1 .. wk`` the samples are (w1 -> w2), (w1 w2 -> w3), ..., (w1 .. wk-1 -> wk).
    """
    lengths = stream.line_lengths
    per_line = np.maximum(lengths - 1, 0)
    line_start = np.repeat(stream.line_starts[:-1], per_line)
    # Offset of each target inside its line: 1, 2, ..., length - 1, line after line.
    first_sample_of_line = np.repeat(np.cumsum(per_line) - per_line, per_line)
    offset = np.arange(len(line_start), dtype=np.int64) - first_sample_of_line + 1
    return PrefixSamples(line_start, line_start + offset)


def context_windows(stream: TokenStream, samples: PrefixSamples, context_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Pre-padded contexts (samples, context_len) and target ids (samples,) for these samples.

    A context longer than ``context_len`` keeps its last words, as ``pad_sequences`` truncates by
    default ('pre').
    """
    offsets = np.arange(-context_len, 0, dtype=np.int64)  # (context_len,)
    positions = samples.target_position[:, None] + offsets[None, :]  # (samples, context_len)
    inside_line = positions >= samples.line_start[:, None]
    contexts = np.where(inside_line, stream.ids[np.maximum(positions, 0)], PADDING_ID)
    targets = stream.ids[samples.target_position]
    return contexts.astype(np.int32), targets.astype(np.int32)


def padded_sequences(stream: TokenStream, max_len: int) -> np.ndarray:
    """The notebook's ``pad_sequences(prefixes, maxlen=max_len, padding='pre')`` matrix, for small data."""
    contexts, targets = context_windows(stream, prefix_samples(stream), max_len - 1)
    return np.concatenate([contexts, targets[:, None]], axis=1)


def one_hot(targets: np.ndarray, vocab_size: int) -> np.ndarray:
    """One-hot rows (batch, vocab_size) float32, as ``to_categorical``, for one batch only."""
    rows = np.zeros((len(targets), vocab_size), dtype=np.float32)
    rows[np.arange(len(targets)), targets] = 1.0
    return rows


class PrefixBatches:
    """Batches of (pre-padded contexts, one-hot targets), reshuffled every epoch from a seed."""

    def __init__(
        self,
        stream: TokenStream,
        samples: PrefixSamples,
        context_len: int,
        vocab_size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
    ) -> None:
        if len(samples) == 0:
            raise ValueError("no samples to batch")
        self.stream = stream
        self.samples = samples
        self.context_len = context_len
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._random = np.random.default_rng(seed)
        self._order = np.arange(len(samples))
        self.new_epoch()

    def __len__(self) -> int:
        return -(-len(self.samples) // self.batch_size)

    def new_epoch(self) -> None:
        """Draw a new sample order (or keep the corpus order when not shuffling)."""
        if self.shuffle:
            self._order = self._random.permutation(len(self.samples))

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of this epoch: contexts (batch, context_len) int32, targets (batch, vocab)."""
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        contexts, targets = context_windows(self.stream, self.samples.subset(chosen), self.context_len)
        return contexts, one_hot(targets, self.vocab_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.batch(index) for index in range(len(self)))
