"""Stateful batches (--stateful): the stream laid out as parallel tracks, read window after window.

The joined stream (all lines end to end) is cut into ``tracks`` equal, contiguous parts, one per batch
row, and batch ``i`` holds the ``i``-th window of every part. Row ``r`` of batch ``i + 1`` goes on
where row ``r`` of batch ``i`` stopped, so a model can start each batch from the states the previous
one ended in, as `rnngen evaluate` reads a stream: every position but the very first of a track has
its whole history behind it, not just the words since its window began. This is the Penn Treebank
literature's truncated back-propagation through time (Zaremba et al., AWD-LSTM), and Keras's
``stateful=True``.

The order cannot be shuffled: what shuffling gave, batches that differ from epoch to epoch, comes from
the dropout masks. No batch is padded (the last window of each track may be shorter, the same for every
row), and the last ``pairs mod tracks`` positions of the stream are left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rnngen.data.batches import TokenStream


def track_layout(pairs: int, batch_size: int, length: int, max_positions: int) -> tuple[int, int]:
    """(tracks, positions per track) for a stream of ``pairs`` (input, target) pairs: as many tracks as
    the batch size, but no more than leave each track a whole window, nor than a batch of ``length``
    steps may hold (``max_positions``, the logits' cap)."""
    if pairs <= 0:
        return 0, 0
    tracks = max(1, min(batch_size, pairs // length, max_positions // length))
    return tracks, pairs // tracks


def track_batch_count(pairs: int, batch_size: int, length: int, max_positions: int) -> tuple[int, int]:
    """(batches, targets) of the track plan of a stream of ``pairs`` pairs, from its size alone."""
    tracks, track_length = track_layout(pairs, batch_size, length, max_positions)
    return -(-track_length // length), tracks * track_length


class TrackBatches:
    """Batches of a joined stream's parallel tracks: see the module. Same interface as WindowBatches,
    plus ``continues``."""

    def __init__(self, stream: TokenStream, batch_size: int, length: int, max_positions: int) -> None:
        if stream.line_count != 1:
            raise ValueError("stateful batches read one joined stream")
        pairs = len(stream.ids) - 1
        self.tracks, self.track_length = track_layout(pairs, batch_size, length, max_positions)
        if self.tracks == 0:
            raise ValueError("no windows to batch")
        self.length = length
        used = self.tracks * self.track_length
        # Views, not copies: (tracks, track_length) each.
        self._inputs = stream.ids[:used].reshape(self.tracks, self.track_length)
        self._targets = stream.ids[1 : used + 1].reshape(self.tracks, self.track_length)

    def __len__(self) -> int:
        return -(-self.track_length // self.length)

    @property
    def targets(self) -> int:
        return self.tracks * self.track_length

    def set_epoch(self, epoch: int) -> None:
        """Nothing: every epoch reads the tracks in the same order."""

    def continues(self, index: int) -> bool:
        """Whether batch ``index`` goes on from where batch ``index - 1``'s rows stopped."""
        return index > 0

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        window = slice(index * self.length, min((index + 1) * self.length, self.track_length))
        return self._inputs[:, window].astype(np.int32), self._targets[:, window].astype(np.int32)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.batch(index) for index in range(len(self)))
