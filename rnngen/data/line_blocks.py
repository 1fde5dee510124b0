"""The training lines of a prepared corpus in blocks: what one batch plan holds in memory at a time.

A corpus is cut into chunks of whole lines, about CHUNK_TOKENS tokens each, and the chunks are dealt
into blocks of at most BLOCK_CHUNKS. A corpus of one block (up to about four million tokens) is that
block, its chunks in order: its batches are exactly those planned over all lines at once. A larger one
deals its chunks into blocks by a fixed shuffle, so that each block mixes lines from all over the text
(a text sorted by topic or date still gives varied batches), and reads only the block being trained.

What memory holds then depends on the block, not on the corpus: the chunk table (two numbers per
chunk), the held-out line numbers, and one block's ids and batch plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.data.batches import TokenStream
from rnngen.data.prepared import PreparedCorpus

CHUNK_TOKENS = 1 << 16
BLOCK_CHUNKS = 64
# Seeds the dealing of chunks into blocks: fixed, so every run on a corpus has the same blocks.
DEALING_SEED = 20_240_601


@dataclass(frozen=True)
class Chunks:
    """Chunk ``i`` is lines ``first_line[i]`` to ``first_line[i + 1]``, its ids from ``first_token[i]``."""

    first_line: np.ndarray  # (chunks + 1,) int64
    first_token: np.ndarray  # (chunks + 1,) int64

    def __len__(self) -> int:
        return len(self.first_line) - 1


def chunk_table(prepared: PreparedCorpus, chunk_tokens: int = CHUNK_TOKENS) -> Chunks:
    """Cut the corpus into runs of whole lines: a chunk ends at the first line end at or past each
    multiple of ``chunk_tokens`` tokens. Reads the line lengths a piece at a time."""
    first_lines = [0]
    first_tokens = [0]
    tokens_before = 0
    for first, lengths in prepared.length_pieces():
        ends = tokens_before + np.cumsum(lengths, dtype=np.int64)
        # Lines (in this piece) after which a chunk ends: where the running total crosses a multiple.
        crossings = np.flatnonzero(ends // chunk_tokens > np.concatenate(([tokens_before], ends[:-1])) // chunk_tokens)
        first_lines.extend((first + crossings + 1).tolist())
        first_tokens.extend(ends[crossings].tolist())
        tokens_before = int(ends[-1]) if len(ends) else tokens_before
    if first_lines[-1] != prepared.lines:
        first_lines.append(prepared.lines)
        first_tokens.append(tokens_before)
    return Chunks(np.array(first_lines, dtype=np.int64), np.array(first_tokens, dtype=np.int64))


def deal_blocks(chunk_count: int, block_chunks: int = BLOCK_CHUNKS) -> list[np.ndarray]:
    """The chunks of each block, in file order within a block: one block of every chunk when they fit,
    else the chunks shuffled once (DEALING_SEED) and dealt into blocks of near-equal size."""
    if chunk_count <= block_chunks:
        return [np.arange(chunk_count, dtype=np.int64)]
    shuffled = np.random.default_rng(DEALING_SEED).permutation(chunk_count)
    parts = np.array_split(shuffled, -(-chunk_count // block_chunks))
    return [np.sort(part) for part in parts]


def held_out_mask(held_out: np.ndarray, first_line: int, end_line: int) -> np.ndarray:
    """(end_line - first_line,) bool: which of these lines are held out (``held_out``: sorted line numbers)."""
    mask = np.zeros(end_line - first_line, dtype=bool)
    low, high = np.searchsorted(held_out, [first_line, end_line])
    mask[held_out[low:high] - first_line] = True
    return mask


class LineBlocks:
    """A prepared corpus's training lines (every line but the held-out ones), as final ids, in blocks."""

    def __init__(
        self,
        prepared: PreparedCorpus,
        held_out: np.ndarray,
        lookup: np.ndarray,
        id_counts: np.ndarray,
        chunk_tokens: int | None = None,
        block_chunks: int | None = None,
    ) -> None:
        """``held_out``: sorted numbers of the lines held out; ``lookup``: (provisional ids,) int32 final
        id; ``id_counts``: (vocabulary size,) how often each final id occurs in the training lines."""
        self.prepared = prepared
        self.held_out = held_out
        self.lookup = lookup
        self.id_counts = id_counts
        # Sizes default to the module's, read now rather than when the class was defined.
        self.chunks = chunk_table(prepared, chunk_tokens or CHUNK_TOKENS)
        self.blocks = deal_blocks(len(self.chunks), block_chunks or BLOCK_CHUNKS)

    @property
    def block_count(self) -> int:
        return len(self.blocks)

    @property
    def line_count(self) -> int:
        return self.prepared.lines - len(self.held_out)

    @property
    def tokens(self) -> int:
        return int(self.id_counts.sum())

    def _chunk_lengths(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's line lengths (int64), and which of its lines are trained on."""
        first, end = int(self.chunks.first_line[chunk]), int(self.chunks.first_line[chunk + 1])
        lengths = self.prepared.line_lengths(first, end).astype(np.int64)
        return lengths, ~held_out_mask(self.held_out, first, end)

    def line_lengths(self, block: int) -> np.ndarray:
        """(training lines of the block,) int64: their tokens, without reading any id."""
        pieces = []
        for chunk in self.blocks[block].tolist():
            lengths, trained = self._chunk_lengths(chunk)
            pieces.append(lengths[trained])
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def stream(self, block: int) -> TokenStream:
        """The block's training lines as final ids, in memory."""
        id_pieces: list[np.ndarray] = []
        length_pieces: list[np.ndarray] = []
        for chunk in self.blocks[block].tolist():
            lengths, trained = self._chunk_lengths(chunk)
            first_token = int(self.chunks.first_token[chunk])
            ids = self.prepared.read(first_token, int(self.chunks.first_token[chunk + 1]) - first_token)
            if not trained.all():
                ids = ids[np.repeat(trained, lengths)]
                lengths = lengths[trained]
            id_pieces.append(self.lookup[ids])
            length_pieces.append(lengths)
        lengths = np.concatenate(length_pieces) if length_pieces else np.zeros(0, dtype=np.int64)
        line_starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=line_starts[1:])
        ids = np.concatenate(id_pieces) if id_pieces else np.zeros(0, dtype=np.int32)
        return TokenStream(ids.astype(np.int32, copy=False), line_starts)
