"""The notebook's data step without its memory bill: per-line prefixes and whole-line windows.

The notebook materialises every prefix of every line, padded to the longest, plus a one-hot row of
vocabulary width per target. Here the corpus is one flat id array with line boundaries, and padded
arrays exist only for the batch being fitted. Two kinds of batch:

- PrefixBatches: one sample per (prefix, next word), pre-padded, the notebook's exact form. The
  bidirectional model needs it, since its backward reading of a prefix depends on where it ends.
- WindowBatches: one sample per line (or window of a long line), inputs ``line[:-1]`` and targets
  ``line[1:]``. For a one-directional model with masked padding, the loss at each position of one
  pass equals the loss of the matching pre-padded prefix, so a line costs one pass instead of one
  pass per word (tests/test_sequence_equivalence.py proves it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rnngen.data.vocab import PADDING_ID


class Batches(Protocol):
    """Padded (inputs, targets) batches in the order of an epoch, which depends on (seed, epoch) alone:
    what every training engine reads (PrefixBatches, WindowBatches)."""

    def __len__(self) -> int: ...

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of the current epoch."""

    def set_epoch(self, epoch: int) -> None:
        """Take epoch ``epoch``'s order."""

    def continues(self, index: int) -> bool:
        """Whether batch ``index``'s rows go on where batch ``index - 1``'s stopped (stateful batches,
        track_batches.py), so that a model may start them from its end states."""


@dataclass(frozen=True)
class TokenStream:
    """All lines' ids end to end; line ``i`` is ``ids[line_starts[i]:line_starts[i + 1]]``."""

    ids: np.ndarray  # (tokens,) int32
    line_starts: np.ndarray  # (lines + 1,) int64

    @classmethod
    def from_lines(cls, id_lines: Sequence[Sequence[int] | np.ndarray]) -> TokenStream:
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

    @property
    def line_count(self) -> int:
        return len(self.line_starts) - 1

    def target_counts(self, size: int) -> np.ndarray:
        """(size,) how often each id is a training target: at every position of a line but its first."""
        counts = np.bincount(self.ids, minlength=size)
        counts -= np.bincount(self.ids[self.line_starts[:-1][self.line_lengths > 0]], minlength=size)
        return counts

    def line(self, index: int) -> np.ndarray:
        return self.ids[self.line_starts[index] : self.line_starts[index + 1]]

    def with_boundaries(self, boundary_id: int) -> TokenStream:
        """Every line framed by the boundary id: ``<eol> w1 .. wk <eol>``.

        The leading boundary lets the model predict a line's first word; the trailing one teaches
        it where lines end (one end-of-line token per line, the language-modelling convention).
        """
        lengths = self.line_lengths + 2
        line_starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=line_starts[1:])
        return TokenStream(
            self._framed(line_starts[:-1], line_starts[1:] - 1, int(line_starts[-1]), boundary_id), line_starts
        )

    def joined(self, boundary_id: int) -> TokenStream:
        """All lines as one line, each followed by the boundary id: ``<eol> l1 <eol> l2 <eol> ..``.

        The stream form of the corpus: one end-of-line token between lines (not two, as framing
        each line separately gives), so predictions may look back across line ends.
        """
        ends = np.cumsum(self.line_lengths + 1)  # (lines,) where each line's boundary goes
        size = int(ends[-1]) + 1 if len(ends) else 1
        ids = self._framed(np.zeros(1, dtype=np.int64), ends, size, boundary_id)
        return TokenStream(ids, np.array([0, len(ids)], dtype=np.int64))

    def _framed(self, boundaries: np.ndarray, more_boundaries: np.ndarray, size: int, boundary_id: int) -> np.ndarray:
        """(size,) int32: the boundary id at the given positions, and the words in order in the rest.

        A mask of a byte a position costs less than positions of eight: a block of a large corpus is
        framed in a fifth of the memory an index array would take.
        """
        is_word = np.ones(size, dtype=bool)
        is_word[boundaries] = False
        is_word[more_boundaries] = False
        ids = np.full(size, boundary_id, dtype=np.int32)
        ids[is_word] = self.ids
        return ids


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
        random_key: tuple[int, ...] = (),
    ) -> None:
        if len(samples) == 0:
            raise ValueError("no samples to batch")
        self.stream = stream
        self.samples = samples
        self.context_len = context_len
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.random_key = random_key  # told apart from other plans on the same seed (blocks of a corpus)
        self._order = np.arange(len(samples))
        self.set_epoch(0)

    def __len__(self) -> int:
        return -(-len(self.samples) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Take epoch ``epoch``'s sample order (the corpus order when not shuffling).

        The order depends on (seed, epoch) alone, so a run resumed at any epoch sees the batches an
        uninterrupted run would have seen.
        """
        if self.shuffle:
            self._order = np.random.default_rng([self.seed, epoch, *self.random_key]).permutation(len(self.samples))

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of this epoch: contexts (batch, context_len) int32, targets (batch, vocab)."""
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        contexts, targets = context_windows(self.stream, self.samples.subset(chosen), self.context_len)
        return contexts, one_hot(targets, self.vocab_size)

    def continues(self, index: int) -> bool:
        """Never: every row is a sample of its own."""
        return False

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.batch(index) for index in range(len(self)))


@dataclass(frozen=True)
class Windows:
    """Input windows of at most ``length`` ids, each with the following ids as its targets."""

    start: np.ndarray  # (windows,) int64: position of the first input id
    length: np.ndarray  # (windows,) int64: number of inputs (and of targets)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def targets(self) -> int:
        return int(self.length.sum())


def _window_layout(line_lengths: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For lines of these lengths cut into windows of at most ``length`` pairs: each window's line, its
    index within its line, and its length."""
    pairs = np.maximum(line_lengths - 1, 0)
    per_line = -(-pairs // length)  # (lines,) windows per line
    line_of_window = np.repeat(np.arange(len(line_lengths)), per_line)
    first_window_of_line = np.repeat(np.cumsum(per_line) - per_line, per_line)
    index_in_line = np.arange(len(line_of_window), dtype=np.int64) - first_window_of_line
    window_length = np.minimum(length, pairs[line_of_window] - index_in_line * length)
    return line_of_window, index_in_line, window_length.astype(np.int64)


def line_windows(stream: TokenStream, length: int) -> Windows:
    """Cut each line's (input, target) pairs into windows of at most ``length`` positions.

    A line of n ids has n - 1 pairs; longer than ``length`` it is cut into consecutive windows, each
    read from a fresh state (the prefix form instead keeps the last ``length`` words; the two agree
    for every line that fits).
    """
    line_of_window, index_in_line, window_length = _window_layout(stream.line_lengths, length)
    start = stream.line_starts[line_of_window] + index_in_line * length
    return Windows(start.astype(np.int64), window_length)


def window_lengths(line_lengths: np.ndarray, length: int) -> np.ndarray:
    """(windows,) the lengths of the windows ``line_windows`` cuts from lines of these lengths."""
    return _window_layout(line_lengths, length)[2]


# A batch's logits (positions x vocabulary floats) and their gradients are the largest arrays of a
# training step; capping their size keeps memory flat whatever the line lengths and vocabulary.
MAX_LOGITS_PER_BATCH = 2**24


def group_by_length(lengths: np.ndarray, order: np.ndarray, batch_size: int, max_positions: int) -> list[np.ndarray]:
    """Cut windows, taken in ``order`` (shortest first), into batches of at most ``batch_size``
    windows whose padded size (windows x longest) stays within ``max_positions``."""
    if len(order) and batch_size * int(lengths.max()) <= max_positions:
        # No batch of batch_size windows can exceed max_positions: the loop below would cut the
        # order into runs of batch_size, which numpy does at once (a large corpus has millions).
        return np.split(order, range(batch_size, len(order), batch_size))
    # Greedy: each batch takes as many next windows as fit (at least one). Lengths never fall along
    # ``order``, so the padded sizes of a batch's prefixes (k windows x the k-th's length) never fall
    # either, and one binary search per batch finds how many fit, not a step per window.
    sorted_lengths = lengths[order]
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        ahead = min(batch_size, len(order) - start)
        padded_sizes = np.arange(1, ahead + 1) * sorted_lengths[start : start + ahead]
        end = start + max(1, int(np.searchsorted(padded_sizes, max_positions, side="right")))
        batches.append(order[start:end])
        start = end
    return batches


def max_positions(vocab_size: int, longest_window: int) -> int:
    """The padded positions a batch may hold: MAX_LOGITS_PER_BATCH's worth of logits, and never fewer
    than one window's."""
    return max(MAX_LOGITS_PER_BATCH // vocab_size, longest_window)


def window_batch_count(lengths: np.ndarray, batch_size: int, vocab_size: int) -> int:
    """How many batches WindowBatches makes of windows of these lengths, in any epoch.

    ``group_by_length`` cuts the windows in sorted order, which is the same whatever the tie-breaking,
    so the count follows from how many windows there are of each length: whole batches of one length
    at once, and a batch that runs from one length into the next step by step. A block of a few
    million tokens is counted in a few dozen steps, not one per batch.
    """
    if len(lengths) == 0:
        return 0
    cap = max_positions(vocab_size, int(lengths.max()))
    histogram = np.bincount(lengths)
    present = np.flatnonzero(histogram)
    sizes, counts = present.tolist(), histogram[present].tolist()

    def fits(length: int) -> int:  # most windows of this length (at least one) a batch may hold
        return max(1, min(batch_size, cap // length))

    batches, run, left = 0, 0, counts[0]
    while run < len(sizes):
        whole = left // fits(sizes[run])
        batches += whole
        left -= whole * fits(sizes[run])
        if left == 0:
            run += 1
            left = counts[run] if run < len(sizes) else 0
            continue
        # A batch starts with the ``left`` last windows of this length and takes longer ones while
        # the padded size allows.
        batches += 1
        taken = left
        run += 1
        left = counts[run] if run < len(sizes) else 0
        while run < len(sizes) and taken < fits(sizes[run]):
            more = min(left, fits(sizes[run]) - taken)
            taken += more
            left -= more
            if left:
                break
            run += 1
            left = counts[run] if run < len(sizes) else 0
    return batches


def _first_two_differ_in_width(batches: list[np.ndarray], lengths: np.ndarray) -> list[np.ndarray]:
    """The batches, with the second one swapped for the first of another width if it has the first's.

    Keras's TensorFlow backend fixes the shape of every batch from its first two: a dimension they
    share is taken to be constant, and a later batch of another width then fails. Giving the first
    two different widths (when the batches have more than one) keeps the time axis free.
    """
    widths = [int(lengths[batch].max()) for batch in batches]
    if len(batches) < 3 or widths[0] != widths[1]:
        return batches
    other = next((index for index in range(2, len(batches)) if widths[index] != widths[0]), None)
    if other is None:
        return batches
    batches = list(batches)
    batches[1], batches[other] = batches[other], batches[1]
    return batches


class WindowBatches:
    """Batches of post-padded (inputs, targets) windows: (batch, time) int32 each, 0 as padding.

    Windows of similar length share a batch, so little time is spent on padding; the order of
    batches, and which windows share one, is reshuffled every epoch from the seed. A batch holds at
    most ``batch_size`` windows, and fewer when they are long, so that its logits stay within
    MAX_LOGITS_PER_BATCH.
    """

    def __init__(
        self,
        stream: TokenStream,
        windows: Windows,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        vocab_size: int = 1,
        random_key: tuple[int, ...] = (),
    ) -> None:
        if len(windows) == 0:
            raise ValueError("no windows to batch")
        self.stream = stream
        self.windows = windows
        self.batch_size = batch_size
        self.max_positions = max_positions(vocab_size, int(windows.length.max()))
        self.shuffle = shuffle
        self.seed = seed
        self.random_key = random_key  # told apart from other plans on the same seed (blocks of a corpus)
        self._batches: list[np.ndarray] = []
        self.set_epoch(0)

    def __len__(self) -> int:
        return len(self._batches)

    def set_epoch(self, epoch: int) -> None:
        """Take epoch ``epoch``'s batches, which depend on (seed, epoch) alone (see PrefixBatches)."""
        count = len(self.windows)
        random = np.random.default_rng([self.seed, epoch, *self.random_key])
        # Sort by length, breaking ties at random, then cut into batches and shuffle their order.
        # The lengths in sorted order never change, so neither does the number of batches.
        tie_breaker = random.random(count) if self.shuffle else np.arange(count)
        order = np.lexsort((tie_breaker, self.windows.length))
        batches = group_by_length(self.windows.length, order, self.batch_size, self.max_positions)
        if self.shuffle:
            batches = [batches[i] for i in random.permutation(len(batches))]
        self._batches = _first_two_differ_in_width(batches, self.windows.length)

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self._batches[index]
        starts = self.windows.start[chosen]
        lengths = self.windows.length[chosen]
        width = int(lengths.max())
        positions = starts[:, None] + np.arange(width, dtype=np.int64)[None, :]  # (batch, width)
        inside = np.arange(width)[None, :] < lengths[:, None]
        safe = np.where(inside, positions, 0)
        inputs = np.where(inside, self.stream.ids[safe], PADDING_ID).astype(np.int32)
        targets = np.where(inside, self.stream.ids[safe + 1], PADDING_ID).astype(np.int32)
        return inputs, targets

    def continues(self, index: int) -> bool:
        """Never: every row is a sample of its own."""
        return False

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.batch(index) for index in range(len(self)))
