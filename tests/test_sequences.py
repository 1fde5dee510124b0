import numpy as np
import pytest

from rnngen.config import TokenizerConfig
from rnngen.data.batches import (
    PrefixBatches,
    TokenStream,
    WindowBatches,
    context_windows,
    group_by_length,
    line_windows,
    one_hot,
    padded_sequences,
    prefix_samples,
)
from rnngen.text import make_tokenizer

from .conftest import SEED_TEXT
from .test_vocab import seed_vocabulary

NOTEBOOK_SEQUENCES = [
    [2, 3],
    [2, 3, 4],
    [2, 3, 4, 5],
    [6, 7],
    [6, 7, 8],
    [6, 7, 8, 9],
    [6, 7, 8, 9, 10],
    [6, 7, 8, 9, 10, 1],
    [11, 12],
    [11, 12, 13],
    [11, 12, 13, 14],
    [11, 12, 13, 14, 1],
]
NOTEBOOK_PADDED = np.array(
    [
        [0, 0, 0, 0, 2, 3],
        [0, 0, 0, 2, 3, 4],
        [0, 0, 2, 3, 4, 5],
        [0, 0, 0, 0, 6, 7],
        [0, 0, 0, 6, 7, 8],
        [0, 0, 6, 7, 8, 9],
        [0, 6, 7, 8, 9, 10],
        [6, 7, 8, 9, 10, 1],
        [0, 0, 0, 0, 11, 12],
        [0, 0, 0, 11, 12, 13],
        [0, 0, 11, 12, 13, 14],
        [0, 11, 12, 13, 14, 1],
    ]
)
NOTEBOOK_Y = np.array([3, 4, 5, 7, 8, 9, 10, 1, 12, 13, 14, 1])


def seed_stream() -> TokenStream:
    tokenizer = make_tokenizer(TokenizerConfig())
    vocabulary = seed_vocabulary()
    return TokenStream.from_lines([vocabulary.encode(tokenizer.split(line)).ids for line in SEED_TEXT.split("\n")])


def test_prefix_samples_are_the_notebooks() -> None:
    stream = seed_stream()
    samples = prefix_samples(stream)
    assert len(samples) == 12
    prefixes = [
        stream.ids[start : end + 1].tolist()
        for start, end in zip(samples.line_start, samples.target_position, strict=True)
    ]
    assert prefixes == NOTEBOOK_SEQUENCES
    assert max(len(prefix) for prefix in prefixes) == 6


def test_padded_sequences_x_and_y_are_the_notebooks() -> None:
    padded = padded_sequences(seed_stream(), max_len=6)
    np.testing.assert_array_equal(padded, NOTEBOOK_PADDED)
    contexts, targets = context_windows(seed_stream(), prefix_samples(seed_stream()), context_len=5)
    np.testing.assert_array_equal(contexts, NOTEBOOK_PADDED[:, :-1])
    np.testing.assert_array_equal(targets, NOTEBOOK_Y)


def test_short_windows_keep_the_last_words_like_pad_sequences() -> None:
    contexts, _ = context_windows(seed_stream(), prefix_samples(seed_stream()), context_len=2)
    np.testing.assert_array_equal(contexts, NOTEBOOK_PADDED[:, -3:-1])


def test_one_hot_rows_are_to_categorical() -> None:
    rows = one_hot(NOTEBOOK_Y, 15)
    assert rows.shape == (12, 15) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows.argmax(axis=1), NOTEBOOK_Y)
    np.testing.assert_array_equal(rows.sum(axis=1), np.ones(12))


def test_batches_cover_every_sample_once_per_epoch_and_only_build_one_batch_of_one_hots() -> None:
    stream = seed_stream()
    batches = PrefixBatches(stream, prefix_samples(stream), context_len=5, vocab_size=15, batch_size=5, seed=3)
    assert len(batches) == 3
    for epoch in range(2):
        batches.set_epoch(epoch)
        seen = []
        for contexts, targets in batches:
            assert contexts.shape[1] == 5 and targets.shape[1] == 15 and len(contexts) <= 5
            seen.extend(map(tuple, np.concatenate([contexts, targets.argmax(1)[:, None]], axis=1)))
        assert sorted(seen) == sorted(map(tuple, NOTEBOOK_PADDED))


def test_window_batches_bound_their_size_and_cover_every_window_once() -> None:
    rng = np.random.default_rng(0)
    stream = TokenStream.from_lines([rng.integers(1, 50, size=length).tolist() for length in rng.integers(1, 40, 300)])
    windows = line_windows(stream.with_boundaries(50), length=30)
    batches = WindowBatches(stream.with_boundaries(50), windows, batch_size=16, seed=1, vocab_size=100)
    batches.max_positions = 200  # as for a vocabulary of MAX_LOGITS_PER_BATCH / 200 words
    for epoch in range(2):
        batches.set_epoch(epoch)
        seen = []
        for index in range(len(batches)):
            inputs, targets = batches.batch(index)
            assert inputs.shape == targets.shape
            assert len(inputs) <= 16 and inputs.size <= 200
            seen.extend(map(tuple, inputs[:, 0:1].tolist()))
        assert sum(int((batches.batch(i)[0] != 0).sum()) for i in range(len(batches))) == windows.targets


def test_joined_stream_puts_one_end_of_line_between_lines() -> None:
    stream = TokenStream.from_lines([[1, 2, 3], [4], [5, 6]])
    joined = stream.joined(9)
    assert joined.ids.tolist() == [9, 1, 2, 3, 9, 4, 9, 5, 6, 9]
    assert joined.line_count == 1
    # Windows over the stream cross line ends and pair each id with the next one, none left out.
    windows = line_windows(joined, length=4)
    assert windows.start.tolist() == [0, 4, 8] and windows.length.tolist() == [4, 4, 1]
    assert windows.targets == len(joined.ids) - 1


def test_an_epochs_batches_depend_on_the_seed_and_epoch_alone() -> None:
    """What lets a resumed run see the batches an uninterrupted one would have seen."""
    stream = TokenStream.from_lines([[1] * (1 + index % 7) for index in range(100)]).with_boundaries(2)
    windows = line_windows(stream, length=10)

    def batch_rows(batches: WindowBatches) -> list[list[int]]:
        return [batches.batch(index)[0].tolist() for index in range(len(batches))]

    first = WindowBatches(stream, windows, batch_size=8, seed=5)
    first.set_epoch(3)
    fresh = WindowBatches(stream, windows, batch_size=8, seed=5)
    fresh.set_epoch(3)
    assert batch_rows(first) == batch_rows(fresh)
    first.set_epoch(4)
    assert [group.tolist() for group in first._batches] != [group.tolist() for group in fresh._batches]


def test_the_first_two_batches_differ_in_width_whenever_widths_differ() -> None:
    """Keras fixes every batch's shape from its first two, so they must not share a width by chance."""
    stream = TokenStream.from_lines([[1] * (2 if index < 40 else 9) for index in range(50)]).with_boundaries(2)
    windows = line_windows(stream, length=20)
    for shuffle in (False, True):
        for epoch in range(5):
            batches = WindowBatches(stream, windows, batch_size=4, seed=epoch, shuffle=shuffle)
            batches.set_epoch(epoch)
            assert batches.batch(0)[0].shape[1] != batches.batch(1)[0].shape[1]
            assert sum(len(batch) for batch in batches._batches) == len(windows)


def _group_step_by_step(lengths: np.ndarray, order: np.ndarray, batch_size: int, max_positions: int) -> list[list[int]]:
    """The batching rule spelled out one window at a time: a batch takes the next window, then more
    while it holds fewer than batch_size and its padded size (windows x the newest's length) fits."""
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        while (
            end < len(order) and end - start < batch_size and (end - start + 1) * lengths[order[end]] <= max_positions
        ):
            end += 1
        batches.append([int(window) for window in order[start:end]])
        start = end
    return batches


@pytest.mark.parametrize("seed", range(6))
def test_group_by_length_follows_the_rule_window_by_window(seed: int) -> None:
    random = np.random.default_rng(seed)
    lengths = random.integers(1, 80, size=int(random.integers(1, 3000)))
    order = np.lexsort((random.random(len(lengths)), lengths))
    for batch_size, max_positions in [(64, 2**24), (64, 500), (7, 90), (1000, 3000), (3, 10)]:
        expected = _group_step_by_step(lengths, order, batch_size, max_positions)
        assert [list(batch) for batch in group_by_length(lengths, order, batch_size, max_positions)] == expected
