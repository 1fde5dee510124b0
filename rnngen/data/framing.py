"""Lines of ids framed by end-of-line ids, read position by position, never copied whole.

``TokenStream.with_boundaries`` and ``TokenStream.joined`` build the framed stream in memory (a copy
of every id and more); here the framed stream is a view: a batch's positions are turned into lines
and offsets, and the ids read from the lines' source (a memory-mapped id file, through a lookup from
provisional to final ids). Batches cut from a view are those cut from the copy, position for position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.data.batches import TokenStream


@dataclass(frozen=True)
class LineIds:
    """Lines of ids: line ``i`` is ``lookup[source[starts[i]:starts[i] + lengths[i]]]`` (no lookup:
    the source's ids as they are)."""

    source: np.ndarray  # (tokens,) raw ids, in memory or memory-mapped
    starts: np.ndarray  # (lines,) int64
    lengths: np.ndarray  # (lines,) int64
    lookup: np.ndarray | None = None  # (raw ids,) int32 final id of each raw id

    @classmethod
    def of_stream(cls, stream: TokenStream) -> LineIds:
        return cls(stream.ids, stream.line_starts[:-1], stream.line_lengths)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())

    def id_counts(self, size: int) -> np.ndarray:
        """(size,) how often each final id occurs in the lines, read a run of lines at a time."""
        counts = np.zeros(size, dtype=np.int64)
        for first in range(0, self.line_count, 1 << 16):
            ids = self.take(self._positions(first, min(first + (1 << 16), self.line_count)))
            counts += np.bincount(ids, minlength=size)
        return counts

    def _positions(self, first: int, end: int) -> np.ndarray:
        lengths = self.lengths[first:end]
        starts = np.repeat(self.starts[first:end] - np.cumsum(lengths) + lengths, lengths)
        return starts + np.arange(int(lengths.sum()), dtype=np.int64)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Final ids (int32) at positions of the source."""
        raw = np.asarray(self.source[positions])
        if self.lookup is None:
            return raw.astype(np.int32)
        return self.lookup[raw]


class FramedIds:
    """The framed stream's ids by position: ``ids[positions]`` as an array would give them.

    Line context (``gap`` 2): every line is ``<eol> w1 .. wk <eol>``. Stream context (``gap`` 1): one
    ``<eol>``, then each line followed by one ``<eol>``.
    """

    def __init__(self, lines: LineIds, boundary_id: int, gap: int) -> None:
        self.lines = lines
        self.boundary_id = boundary_id
        # (lines,) framed position of each line's first word.
        framed_lengths = lines.lengths + gap
        self.word_starts = np.cumsum(framed_lengths) - framed_lengths + 1
        self.size = int(framed_lengths.sum()) + (1 if gap == 1 else 0)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        line = np.searchsorted(self.word_starts, positions, side="right") - 1
        safe_line = np.maximum(line, 0)
        offset = positions - self.word_starts[safe_line]
        is_word = (line >= 0) & (offset < self.lines.lengths[safe_line])
        ids = np.full(positions.shape, self.boundary_id, dtype=np.int32)
        ids[is_word] = self.lines.take(self.lines.starts[safe_line[is_word]] + offset[is_word])
        return ids


def framed_stream(lines: LineIds, boundary_id: int, joined: bool) -> TokenStream:
    """The stream ``with_boundaries`` (or ``joined``) would build from these lines, as a view whose ids
    are read per batch. Its ``ids`` is a FramedIds, not an array: index it with position arrays only."""
    framed = FramedIds(lines, boundary_id, gap=1 if joined else 2)
    if joined:
        line_starts = np.array([0, len(framed)], dtype=np.int64)
    else:
        line_starts = np.append(framed.word_starts - 1, len(framed)).astype(np.int64)
    return TokenStream(framed, line_starts)  # type: ignore[arg-type]


def framed_target_counts(lines: LineIds, size: int, boundary_id: int) -> np.ndarray:
    """(size,) how often each id is a target of the framed stream, line or stream context alike: every
    word, and one end-of-line per line."""
    counts = lines.id_counts(size)
    counts[boundary_id] += lines.line_count
    return counts
