"""One batch plan over a corpus read a block at a time (line_blocks.py).

Each block is framed and planned as a whole corpus would be (framed lines, windows or prefixes,
batches of similar lengths), and an epoch trains the blocks one after another in an order drawn from
(seed, epoch). Only the block being trained is in memory. How many batches each block gives is known
from its line lengths alone, before any id is read, so the epoch's length (for progress, budgets and
mid-epoch checkpoints) is known at once, and batch ``i`` of an epoch is always the same batch.

A corpus of one block is planned exactly as the in-memory plan plans it: same windows, same batches,
same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.data.batches import (
    Batches,
    PrefixBatches,
    TokenStream,
    WindowBatches,
    line_windows,
    max_positions,
    prefix_samples,
    window_batch_count,
    window_lengths,
)
from rnngen.data.line_blocks import LineBlocks
from rnngen.data.track_batches import TrackBatches, track_batch_count

# Tells the draw of the epoch's order of blocks apart from the blocks' own draws (keyed by block number).
BLOCK_ORDER_KEY = 2**32 - 1


@dataclass(frozen=True)
class BatchLayout:
    """How lines become batches: framing, window or prefix samples, and batch sizes."""

    boundary_id: int
    joined: bool  # stream context: all lines one stream, each followed by one boundary
    context_len: int
    batch_size: int
    vocab_size: int
    prefixes: bool  # the notebook's prefix samples (a bidirectional model) instead of windows
    # The words a step scores each target against: the vocabulary, or fewer with a sampled softmax. A
    # window batch's padded positions are capped so that its logits (positions x these) stay bounded.
    scored_words: int | None = None
    # Stateful batches (track_batches.py): the joined stream's parallel tracks, window after window.
    tracks: bool = False

    @property
    def logits_width(self) -> int:
        return self.vocab_size if self.scored_words is None else self.scored_words

    def framed(self, stream: TokenStream) -> TokenStream:
        return stream.joined(self.boundary_id) if self.joined else stream.with_boundaries(self.boundary_id)

    def framed_lengths(self, line_lengths: np.ndarray) -> np.ndarray:
        """The framed lines' lengths, from the lines' own."""
        if self.joined:
            return np.array([int(line_lengths.sum()) + len(line_lengths) + 1], dtype=np.int64)
        return line_lengths + 2

    def batches(self, stream: TokenStream, seed: int, shuffle: bool, random_key: tuple[int, ...] = ()) -> Batches:
        """The plan of batches of these (unframed) lines."""
        framed = self.framed(stream)
        if self.prefixes:
            samples = prefix_samples(framed)
            return PrefixBatches(
                framed, samples, self.context_len, self.vocab_size, self.batch_size, seed, shuffle, random_key
            )
        if self.tracks:
            return TrackBatches(framed, self.batch_size, self.context_len, self.positions_cap)
        windows = line_windows(framed, self.context_len)
        return WindowBatches(framed, windows, self.batch_size, seed, shuffle, self.logits_width, random_key)

    @property
    def positions_cap(self) -> int:
        """The padded positions a batch of this layout may hold (its windows are at most context_len)."""
        return max_positions(self.logits_width, self.context_len)

    def count(self, line_lengths: np.ndarray) -> tuple[int, int]:
        """(batches, targets) the plan of lines of these lengths has, from the lengths alone."""
        framed = self.framed_lengths(line_lengths)
        if self.prefixes:
            samples = int(np.maximum(framed - 1, 0).sum())
            return -(-samples // self.batch_size), samples
        if self.tracks:
            pairs = int(np.maximum(framed - 1, 0).sum())  # one joined stream
            return track_batch_count(pairs, self.batch_size, self.context_len, self.positions_cap)
        lengths = window_lengths(framed, self.context_len)
        return window_batch_count(lengths, self.batch_size, self.logits_width), int(lengths.sum())


class BlockBatches:
    """Batches of a corpus in blocks: see the module."""

    def __init__(self, blocks: LineBlocks, layout: BatchLayout, seed: int, shuffle: bool = True) -> None:
        self.blocks = blocks
        self.layout = layout
        self.seed = seed
        self.shuffle = shuffle
        counted = [layout.count(blocks.line_lengths(block)) for block in range(blocks.block_count)]
        self.block_batches = np.array([batches for batches, _ in counted], dtype=np.int64)
        self.targets = sum(targets for _, targets in counted)
        self.batch_size = layout.batch_size
        self.max_positions = layout.positions_cap  # what a window batch of any block may hold
        self._epoch = 0
        self._order = np.arange(blocks.block_count)
        self._ends = np.cumsum(self.block_batches)
        self._current: tuple[int, Batches] | None = None
        self.set_epoch(0)

    def __len__(self) -> int:
        return int(self.block_batches.sum())

    @property
    def windowed(self) -> bool:
        """Whether the batches are windows (as WindowBatches'), not prefixes."""
        return not self.layout.prefixes

    def continues(self, index: int) -> bool:
        """Whether batch ``index`` goes on from where batch ``index - 1``'s rows stopped: in stateful
        batches, every batch but a block's first (each block's tracks start afresh)."""
        if not self.layout.tracks:
            return False
        position = int(np.searchsorted(self._ends, index, side="right"))
        first = int(self._ends[position - 1]) if position else 0
        return index > first

    def set_epoch(self, epoch: int) -> None:
        """Take epoch ``epoch``'s order of blocks (and, block by block, of their batches)."""
        self._epoch = epoch
        count = self.blocks.block_count
        if self.shuffle and count > 1:
            self._order = np.random.default_rng([self.seed, epoch, BLOCK_ORDER_KEY]).permutation(count)
        self._ends = np.cumsum(self.block_batches[self._order])
        self._current = None

    def _block_batches(self, block: int) -> Batches:
        if self._current is None or self._current[0] != block:
            self._current = None  # the block trained before is let go before the next is read
            # One block alone keeps the in-memory plan's draws; several tell theirs apart by block.
            key = () if self.blocks.block_count == 1 else (block,)
            batches = self.layout.batches(self.blocks.stream(block), self.seed, self.shuffle, key)
            batches.set_epoch(self._epoch)
            if len(batches) != self.block_batches[block]:
                counted = self.block_batches[block]
                raise RuntimeError(f"block {block} planned {len(batches)} batches where {counted} were counted")
            self._current = (block, batches)
        return self._current[1]

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of the current epoch."""
        position = int(np.searchsorted(self._ends, index, side="right"))
        block = int(self._order[position])
        first = int(self._ends[position - 1]) if position else 0
        return self._block_batches(block).batch(index - first)
