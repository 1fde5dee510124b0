"""A prepared corpus trained a block at a time: one block plans exactly what the in-memory plan does,
several blocks give every training window once an epoch, in an order fixed by (seed, epoch), reading
one block at a time."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, TokenizerConfig, TrainingBudget, TrainingConfig
from rnngen.data import line_blocks
from rnngen.data.batches import TokenStream, group_by_length, max_positions, window_batch_count
from rnngen.data.block_batches import BatchLayout, BlockBatches
from rnngen.data.corpus import held_out_line_numbers
from rnngen.data.line_blocks import LineBlocks, chunk_table, deal_blocks
from rnngen.data.prepared import PreparedCorpus, SourceFiles, prepare_corpus
from rnngen.data.vocab import PADDING_ID
from rnngen.train import train_corpus

WORDS = 40
BOUNDARY = WORDS + 1


@pytest.fixture
def prepared(tmp_path: Path) -> PreparedCorpus:
    """A corpus of 300 lines of 1 to 12 words named w1..w40."""
    rng = np.random.default_rng(5)
    lines = [
        " ".join(f"w{word}" for word in rng.integers(1, WORDS + 1, size=length)) for length in rng.integers(1, 13, 300)
    ]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    folder = tmp_path / "prepared"
    folder.mkdir()
    prepare_corpus(SourceFiles((corpus,), "corpus", None), TokenizerConfig(), folder)
    return PreparedCorpus(folder)


def _blocks(prepared: PreparedCorpus, held_out: np.ndarray, chunk_tokens: int, block_chunks: int) -> LineBlocks:
    # Final ids: each provisional id + 1, so that 0 stays padding.
    lookup = np.arange(1, len(prepared.words) + 1, dtype=np.int32)
    return LineBlocks(prepared, held_out, lookup, np.zeros(WORDS + 2, np.int64), chunk_tokens, block_chunks)


def _in_memory(prepared: PreparedCorpus, held_out: np.ndarray) -> TokenStream:
    lengths = prepared.line_lengths().astype(np.int64)
    ids = prepared.read(0, prepared.tokens).astype(np.int32) + 1
    lines, start = [], 0
    for number, length in enumerate(lengths.tolist()):
        if number not in set(held_out.tolist()):
            lines.append(ids[start : start + length])
        start += length
    return TokenStream.from_lines(lines)


def _layout(joined: bool = False, prefixes: bool = False, batch_size: int = 8) -> BatchLayout:
    return BatchLayout(BOUNDARY, joined, context_len=6, batch_size=batch_size, vocab_size=WORDS + 2, prefixes=prefixes)


def _epoch(batches: BlockBatches, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    batches.set_epoch(epoch)
    return [batches.batch(index) for index in range(len(batches))]


def test_chunks_end_at_the_first_line_end_past_each_multiple(prepared: PreparedCorpus) -> None:
    chunks = chunk_table(prepared, chunk_tokens=50)
    ends = np.cumsum(prepared.line_lengths().astype(np.int64))
    expected_lines = [0] + [
        int(np.searchsorted(ends, multiple, side="left")) + 1 for multiple in range(50, int(ends[-1]), 50)
    ]
    expected_lines = sorted(set(expected_lines) | {prepared.lines})
    assert chunks.first_line.tolist() == expected_lines
    assert chunks.first_token.tolist() == [0] + [int(ends[line - 1]) for line in expected_lines[1:]]


def test_chunks_are_dealt_into_blocks_once_and_in_file_order_within_each() -> None:
    assert [block.tolist() for block in deal_blocks(5, block_chunks=8)] == [[0, 1, 2, 3, 4]]
    blocks = deal_blocks(50, block_chunks=8)
    assert len(blocks) == 7 and max(len(block) for block in blocks) <= 8
    assert sorted(np.concatenate(blocks).tolist()) == list(range(50))
    assert all(np.all(np.diff(block) > 0) for block in blocks)
    assert [block.tolist() for block in blocks] == [block.tolist() for block in deal_blocks(50, block_chunks=8)]
    assert np.concatenate(blocks).tolist() != list(range(50))  # mixed across the file


@pytest.mark.parametrize(("joined", "prefixes"), [(False, False), (True, False), (False, True)])
def test_one_block_is_planned_as_the_whole_corpus_in_memory(
    prepared: PreparedCorpus, joined: bool, prefixes: bool
) -> None:
    held_out = held_out_line_numbers(prepared.lines, 0.2, seed=1)
    blocks = _blocks(prepared, held_out, chunk_tokens=1 << 16, block_chunks=64)
    assert blocks.block_count == 1
    layout = _layout(joined, prefixes)
    blocked = BlockBatches(blocks, layout, seed=3)
    whole = layout.batches(_in_memory(prepared, held_out), seed=3, shuffle=True)
    assert len(blocked) == len(whole)
    for epoch in (0, 2):
        whole.set_epoch(epoch)
        for index, (inputs, targets) in enumerate(_epoch(blocked, epoch)):
            expected_inputs, expected_targets = whole.batch(index)
            assert np.array_equal(inputs, expected_inputs) and np.array_equal(targets, expected_targets)


def _windows(batches: list[tuple[np.ndarray, np.ndarray]]) -> Counter[tuple[tuple[int, ...], tuple[int, ...]]]:
    windows: Counter[tuple[tuple[int, ...], tuple[int, ...]]] = Counter()
    for inputs, targets in batches:
        for row_inputs, row_targets in zip(inputs.tolist(), targets.tolist(), strict=True):
            kept = [index for index, target in enumerate(row_targets) if target != PADDING_ID]
            windows[(tuple(row_inputs[i] for i in kept), tuple(row_targets[i] for i in kept))] += 1
    return windows


def test_many_blocks_give_every_window_once_an_epoch_in_an_order_of_seed_and_epoch(prepared: PreparedCorpus) -> None:
    held_out = held_out_line_numbers(prepared.lines, 0.2, seed=1)
    blocks = _blocks(prepared, held_out, chunk_tokens=40, block_chunks=3)
    assert blocks.block_count > 5
    layout = _layout()
    blocked = BlockBatches(blocks, layout, seed=3)
    whole = layout.batches(_in_memory(prepared, held_out), seed=3, shuffle=True)
    first, second = _epoch(blocked, 0), _epoch(blocked, 1)
    assert len(first) == len(second) == len(blocked)
    assert _windows(first) == _windows(second) == _windows([whole.batch(index) for index in range(len(whole))])
    assert [batch[1].tolist() for batch in first] != [batch[1].tolist() for batch in second]
    # Batch i of an epoch is the same batch whatever was read before, and in a new plan (a resumed run).
    again = BlockBatches(blocks, layout, seed=3)
    again.set_epoch(1)
    for index in (len(second) - 1, 0, len(second) // 2):
        assert np.array_equal(again.batch(index)[1], second[index][1])


def test_an_epoch_reads_each_block_once_and_holds_one_at_a_time(
    prepared: PreparedCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = _blocks(prepared, np.zeros(0, np.int64), chunk_tokens=40, block_chunks=3)
    reads: list[int] = []
    original = LineBlocks.stream
    monkeypatch.setattr(LineBlocks, "stream", lambda self, block: reads.append(block) or original(self, block))
    batches = BlockBatches(blocks, _layout(), seed=0)
    assert reads == []  # counting the batches reads line lengths, never ids
    _epoch(batches, 0)
    assert sorted(reads) == list(range(blocks.block_count))


def test_stream_context_blocks_keep_every_target(prepared: PreparedCorpus) -> None:
    blocks = _blocks(prepared, np.zeros(0, np.int64), chunk_tokens=40, block_chunks=3)
    batches = BlockBatches(blocks, _layout(joined=True), seed=0)
    targets = Counter(target for _, batch_targets in _epoch(batches, 0) for target in batch_targets.ravel().tolist())
    del targets[PADDING_ID]
    ids = prepared.read(0, prepared.tokens).astype(np.int64) + 1
    expected = Counter(ids.tolist())
    expected[BOUNDARY] = prepared.lines
    assert targets == expected and batches.targets == prepared.tokens + prepared.lines


@pytest.mark.parametrize("seed", range(40))
def test_batches_are_counted_from_the_lengths_as_they_are_cut(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, int(rng.integers(2, 40)), size=int(rng.integers(1, 3000)))
    batch_size = int(rng.integers(1, 70))
    vocab_size = int(rng.choice([2, 10_000, 2**24 // 40, 2**24 // 300]))
    order = np.lexsort((rng.random(len(lengths)), lengths))
    cap = max_positions(vocab_size, int(lengths.max()))
    expected = len(group_by_length(lengths, order, batch_size, cap))
    assert window_batch_count(lengths, batch_size, vocab_size) == expected


def _weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def test_training_in_blocks_resumes_mid_epoch_to_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(line_blocks, "CHUNK_TOKENS", 60)
    monkeypatch.setattr(line_blocks, "BLOCK_CHUNKS", 4)
    words = "the cat sat on a mat and then it ran far away".split()
    lines = [" ".join(words[index % 4 : 2 + index % 9]) for index in range(600)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    architecture = ArchitectureConfig(units=8, embedding_dim=8, dropout=0.2)
    training = TrainingConfig(epochs=2, batch_size=8, val_split=0.1, patience=2)
    straight = train_corpus(corpus, tmp_path / "straight", architecture=architecture, training=training)
    saved = json.loads((tmp_path / "straight" / "config.json").read_text(encoding="utf-8"))
    assert saved["corpus"]["training_blocks"] > 3
    steps = saved["history"]["steps"][0]
    # Stopped in the middle of the first epoch, inside a block, then resumed to the end.
    budget = TrainingBudget(max_steps=steps // 2 + 1)
    train_corpus(corpus, tmp_path / "resumed", architecture=architecture, training=training, budget=budget)
    resumed = train_corpus(corpus, tmp_path / "resumed", resume=True)
    assert resumed.epochs_run == straight.epochs_run == 2
    expected, actual = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)
