"""Rows stepped alone under a sampled softmax (row_gradient.py): Adam on a RowGradient's rows, the moving
average brought up to date when read, checkpoints that keep the rows' steps, and exact resumption."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnngen.config import ArchitectureConfig, TrainingConfig
from rnngen.train.engines import EngineState
from rnngen.train.numpy_engine.adam import Adam
from rnngen.train.numpy_engine.row_gradient import RowGradient, catch_up

from .test_regularisers import OPTIONS, assert_resumes_exactly, small_run


def test_adam_steps_a_row_gradient_as_the_dense_update_steps_those_rows_and_leaves_the_rest() -> None:
    random = np.random.default_rng(0)
    start = {"embedding": random.normal(size=(6, 3)).astype(np.float32)}
    gradient = random.normal(size=(6, 3)).astype(np.float32)
    dense_weights, row_weights = {"embedding": start["embedding"].copy()}, {"embedding": start["embedding"].copy()}
    dense, lazy = Adam(dense_weights, 0.01, 1.0), Adam(row_weights, 0.01, 1.0)
    for optimizer, weights in ((dense, dense_weights), (lazy, row_weights)):
        optimizer.apply(weights, {"embedding": gradient})  # a first step gives every row its moments
    rows = np.array([1, 4])
    sparse = RowGradient(rows, gradient[rows] * 3)
    before = row_weights["embedding"].copy()
    dense.apply(dense_weights, {"embedding": sparse.dense((6, 3))}, 0.5)
    lazy.apply(row_weights, {"embedding": sparse}, 0.5)
    # The same clipping (by the norm of the rows' values), moments and step on the rows it has ...
    np.testing.assert_array_equal(row_weights["embedding"][rows], dense_weights["embedding"][rows])
    np.testing.assert_array_equal(lazy.first_moments["embedding"][rows], dense.first_moments["embedding"][rows])
    np.testing.assert_array_equal(lazy.second_moments["embedding"][rows], dense.second_moments["embedding"][rows])
    # ... and none elsewhere, where the dense update goes on moving the rows on momentum.
    others = np.setdiff1d(np.arange(6), rows)
    np.testing.assert_array_equal(row_weights["embedding"][others], before[others])
    assert not np.allclose(dense_weights["embedding"][others], before[others])


def test_catching_up_is_the_missed_steps_of_the_average_towards_unmoved_weights() -> None:
    random = np.random.default_rng(1)
    weights = random.normal(size=(4, 2)).astype(np.float32)
    average = random.normal(size=(4, 2)).astype(np.float32)
    steps = np.array([3, 7, 10, 10], dtype=np.int64)
    expected = average.astype(np.float64)
    for row, step in enumerate(steps):
        for _ in range(10 - step):
            expected[row] += (weights[row] - expected[row]) * (1 - 0.9)
    untouched = average[2:].copy()
    catch_up(average, weights, steps, np.arange(4), 10, 0.9)
    np.testing.assert_allclose(average, expected, rtol=1e-5)
    np.testing.assert_array_equal(average[2:], untouched)  # rows already at the step are not rounded again
    assert steps.tolist() == [10, 10, 10, 10]


SAMPLED = ArchitectureConfig(embedding_dim=6, units=6, dropout=0.0, tie_embeddings=True)


def test_under_a_sampled_softmax_the_average_is_the_dense_one_of_the_weights_once_read(tmp_path: Path) -> None:
    decay = 0.8
    training = TrainingConfig(epochs=1, batch_size=4, ema=decay, val_split=0.2, sampled_softmax=2)
    session = small_run(tmp_path, SAMPLED, training)
    after_each_step: list[dict[str, np.ndarray]] = []
    behind: list[int] = []

    def record(step: int, logs: dict[str, float]) -> bool:
        after_each_step.append({name: array.copy() for name, array in session.model_weights.items()})
        behind.append(int(np.count_nonzero(session.average_steps["embedding"] < session.optimizer.iterations)))
        return False

    session.train_epoch(0, record)
    assert len(after_each_step) >= 5 and max(behind) > 0  # some rows' averages waited to be read
    expected = {name: array.astype(np.float64) for name, array in after_each_step[0].items()}
    for raw in after_each_step[1:]:
        for name in expected:
            expected[name] = decay * expected[name] + (1 - decay) * raw[name]
    evaluated = session.evaluated_weights
    for name in expected:
        np.testing.assert_allclose(evaluated[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert (session.average_steps["embedding"] == session.optimizer.iterations).all()


def test_a_checkpoint_keeps_the_rows_steps_and_one_without_them_reads_as_up_to_date(tmp_path: Path) -> None:
    training = TrainingConfig(epochs=1, batch_size=4, ema=0.8, val_split=0.2, sampled_softmax=2)
    session = small_run(tmp_path, SAMPLED, training)
    session.train_epoch(0, lambda step, logs: step == 6)
    state = session.state()
    assert state.variable_paths[-1] == "average_steps/embedding"
    restored = small_run(tmp_path, SAMPLED, training)
    restored.restore(state)
    np.testing.assert_array_equal(restored.average_steps["embedding"], session.average_steps["embedding"])
    assert restored.average is not None and session.average is not None
    np.testing.assert_array_equal(restored.average["embedding"], session.average["embedding"])
    older = EngineState(state.variable_paths[:-1], state.variables[:-1], state.optimizer)
    from_older = small_run(tmp_path, SAMPLED, training)
    from_older.restore(older)
    assert (from_older.average_steps["embedding"] == session.optimizer.iterations).all()


def test_a_run_with_a_sampled_softmax_and_an_average_resumes_exactly_from_mid_epoch(tmp_path: Path) -> None:
    # Two hundred words, so that most rows wait for a batch to read them or draw them as candidates.
    random = np.random.default_rng(2)
    words = [f"w{index}" for index in range(200)]
    text = "".join(" ".join(random.choice(words, size=6)) + "\n" for _ in range(300))
    options = [*OPTIONS, "--sampled-softmax", "3", "--ema", "0.9", "--tie-embeddings", "--layers", "1"]
    assert_resumes_exactly(tmp_path, 300, options, max_steps=11, text=text)
