"""Stateful training (--stateful): the stream's parallel tracks (track_batches.py), layers started from
carried states in the numpy engine's forward and backward passes, and runs whose validation reads the
stream as `evaluate` does and which resume mid-epoch to the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.data.batches import TokenStream
from rnngen.data.block_batches import BatchLayout
from rnngen.data.track_batches import TrackBatches, track_layout
from rnngen.network.weights import cell_weight_names, trainable_names
from rnngen.train.numpy_engine import backprop

from .conftest import rnngen
from .test_numpy_engine import numeric_gradients, tiny_config, tiny_weights
from .test_regularisers import assert_resumes_exactly, corpus_lines


def joined_stream(tokens: int) -> TokenStream:
    return TokenStream(np.arange(1, tokens + 1, dtype=np.int32), np.array([0, tokens], dtype=np.int64))


def test_each_row_goes_on_where_the_batch_before_left_it() -> None:
    batches = TrackBatches(joined_stream(101), batch_size=4, length=6, max_positions=1_000)
    assert (batches.tracks, batches.track_length) == (4, 25)  # 100 pairs in 4 tracks
    assert len(batches) == 5 and batches.targets == 100  # windows of 6, 6, 6, 6 and 1
    inputs = np.concatenate([batches.batch(index)[0] for index in range(len(batches))], axis=1)
    targets = np.concatenate([batches.batch(index)[1] for index in range(len(batches))], axis=1)
    np.testing.assert_array_equal(inputs, np.arange(1, 101).reshape(4, 25))
    np.testing.assert_array_equal(targets, inputs + 1)  # every pair once, none padded
    assert [batches.continues(index) for index in range(len(batches))] == [False, True, True, True, True]
    batches.set_epoch(3)
    np.testing.assert_array_equal(batches.batch(1)[0], inputs[:, 6:12])  # no shuffling
    with pytest.raises(IndexError):
        batches.batch(5)


@pytest.mark.parametrize(
    ("pairs", "batch_size", "length", "max_positions", "expected"),
    [
        (100, 4, 6, 1_000, (4, 25)),
        (100, 64, 6, 1_000, (16, 6)),  # every track at least a window long
        (5, 4, 6, 1_000, (1, 5)),  # a stream shorter than a window is one track
        (100, 64, 6, 20, (3, 33)),  # a batch's positions stay within the logits' cap
        (0, 4, 6, 1_000, (0, 0)),
    ],
)
def test_tracks_are_as_many_as_the_batch_size_allows(
    pairs: int, batch_size: int, length: int, max_positions: int, expected: tuple[int, int]
) -> None:
    assert track_layout(pairs, batch_size, length, max_positions) == expected


def test_the_layout_counts_what_the_track_plan_holds() -> None:
    lines = [np.arange(1, length + 1, dtype=np.int32) for length in (3, 9, 1, 14, 7, 22, 5)]
    stream = TokenStream.from_lines(lines)
    layout = BatchLayout(30, True, context_len=4, batch_size=3, vocab_size=31, prefixes=False, tracks=True)
    batches = layout.batches(stream, seed=0, shuffle=True)
    assert isinstance(batches, TrackBatches)
    assert layout.count(stream.line_lengths) == (len(batches), batches.targets)
    joined = stream.joined(30).ids
    assert batches.batch(0)[0][0].tolist() == joined[:4].tolist()  # the first track starts the stream


def split_scores(cell: str, layers: int) -> tuple[float, float]:
    """A batch's cross-entropy read in one go, and as two halves, the second from the first's end states."""
    config = tiny_config(cell, layers)
    weights = tiny_weights(config, seed=1)
    random = np.random.default_rng(2)
    inputs = random.integers(1, config.vocab_size, (3, 8)).astype(np.int32)
    targets = random.integers(1, config.vocab_size, (3, 8)).astype(np.int32)
    whole = backprop.score_batch(weights, config, inputs, targets)
    first = backprop.score_batch(weights, config, inputs[:, :5], targets[:, :5])
    second = backprop.score_batch(weights, config, inputs[:, 5:], targets[:, 5:], first.end_states)
    training, _ = backprop.loss_and_gradients(
        weights, config, inputs[:, 5:], targets[:, 5:], None, None, first.end_states
    )
    assert training.cross_entropy == pytest.approx(second.cross_entropy, rel=1e-12)
    assert whole.end_states is not None and second.end_states is not None
    for ended, carried in zip(whole.end_states, second.end_states, strict=True):
        for array, other in zip(ended, carried, strict=True):
            np.testing.assert_allclose(array, other, rtol=1e-12)
    return whole.cross_entropy, first.cross_entropy + second.cross_entropy


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_carried_states_read_a_sequence_as_one_pass_does(cell: str) -> None:
    whole, halves = split_scores(cell, layers=2)
    assert halves == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_gradients_from_carried_states_match_finite_differences(cell: str) -> None:
    """The carried states are constants (truncated back-propagation): the weights' gradients, with
    them and with dropout's masks, against central differences of the loss from the same states."""
    config = tiny_config(cell, layers=2, tie=True, dropout=0.3)
    weights = tiny_weights(config, seed=3)
    random = np.random.default_rng(4)
    inputs = random.integers(1, config.vocab_size, (3, 5)).astype(np.int32)
    targets = random.integers(1, config.vocab_size, (3, 5)).astype(np.int32)
    parts = 2 if cell == "lstm" else 1
    states = [tuple(random.normal(0, 0.5, (3, 4)) for _ in range(parts)) for _ in range(config.layers)]

    _, gradients = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5), None, states)
    numeric = numeric_gradients(weights, config, inputs, targets, seed=5, initial_states=states)
    for name in trainable_names(config):
        np.testing.assert_allclose(gradients[name], numeric[name], atol=1e-7, rtol=1e-5, err_msg=name)
    # Without them the first step reads zeros, and the gradients differ.
    _, from_zeros = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5))
    recurrent_kernel = cell_weight_names(0)[1]
    assert not np.allclose(from_zeros[recurrent_kernel], gradients[recurrent_kernel])


def test_states_of_the_wrong_shape_are_refused() -> None:
    config = tiny_config("lstm")
    weights = tiny_weights(config, seed=1)
    inputs = np.ones((2, 3), np.int32)
    with pytest.raises(ValueError, match="initial states"):
        backprop.score_batch(weights, config, inputs, inputs, [(np.zeros((2, 4)),)])


STATEFUL = ["--context", "stream", "--stateful", "--embedding-dim", "8", "--units", "8", "--batch-size", "4"]
STATEFUL += ["--epochs", "3", "--quiet", "--dropout-input", "0.2", "--weight-drop", "0.2"]


def test_a_stateful_run_resumes_mid_epoch_to_the_same_weights(tmp_path: Path) -> None:
    # 300 lines give 13 batches an epoch: step 20 stops in the middle of the second epoch, where the
    # checkpoint must keep the states that batch 7 ended in.
    assert_resumes_exactly(tmp_path, 300, [*STATEFUL, "--val-split", "0.1"], max_steps=20)
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["training"]["stateful"] is True
    info = json.loads(rnngen("info", "-m", "straight", "--json", cwd=tmp_path).stdout)
    assert info["training"]["stateful"] is True
    plain = rnngen(
        "train", "corpus.txt", "-o", "plain", *STATEFUL[3:], "--context", "stream", "--val-split", "0.1", cwd=tmp_path
    )
    assert plain.returncode == 0, plain.stderr
    with (
        np.load(tmp_path / "plain" / "weights.npz") as plain_weights,
        np.load(tmp_path / "straight" / "weights.npz") as ours,
    ):
        assert not np.array_equal(plain_weights["embedding"], ours["embedding"])


def test_validation_reads_the_stream_as_evaluate_does(tmp_path: Path) -> None:
    """A validation text shorter than two windows is one track, read from the start with the state
    carried: its cross-entropy is the one `evaluate --context stream` computes."""
    (tmp_path / "corpus.txt").write_text(corpus_lines(200), encoding="utf-8")
    (tmp_path / "valid.txt").write_text(
        "the cat sat on a mat\nand then it ran\nthe cat ran far away\n", encoding="utf-8"
    )
    options = [*STATEFUL[:9], "--epochs", "2", "--quiet", "--max-len", "13"]
    trained = rnngen("train", "corpus.txt", "-o", "model", "--valid", "valid.txt", *options, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    history = json.loads((tmp_path / "model" / "config.json").read_text())["history"]
    evaluated = rnngen("evaluate", "valid.txt", "-m", "model", "--context", "stream", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert scores["perplexity"] == pytest.approx(np.exp(history["val_cross_entropy"][-1]), rel=1e-4)


def test_auto_picks_the_numpy_engine_for_a_stateful_run(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(corpus_lines(40), encoding="utf-8")
    result = rnngen("train", "corpus.txt", *STATEFUL[:9], "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "numpy engine (auto: --stateful needs numpy)" in result.stderr
