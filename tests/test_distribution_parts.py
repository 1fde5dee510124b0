"""The pieces of distributed and mixed-precision training, in this process: the cluster read from
TF_CONFIG, batches cut into replica shards, the loss and accuracy that ignore the padding, and a
mixed-precision model whose logits stay float32. (tests/test_distribution.py trains for real.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnngen.config import CellKind, ExecutionConfig, ModelConfig, TrainingConfig
from rnngen.data.batches import TokenStream, WindowBatches, line_windows
from rnngen.errors import UsageError
from rnngen.train.keras_engine.shapes import WIDTH_MULTIPLE, bucket_shape, pad_to_bucket

WORKERS = ["127.0.0.1:20001", "127.0.0.1:20002", "127.0.0.1:20003"]


def tf_config(cluster: object, task: object) -> dict[str, str]:
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


@pytest.fixture(scope="module")
def distribution():  # type: ignore[no-untyped-def]
    from rnngen.train.keras_engine import distribution

    return distribution


def test_worker_zero_is_the_chief_unless_the_cluster_names_one(distribution) -> None:  # type: ignore[no-untyped-def]
    for index in range(3):
        task = distribution.cluster_task(tf_config({"worker": WORKERS}, {"type": "worker", "index": index}))
        assert (task.workers, task.chief) == (3, index == 0)
    cluster = {"chief": ["127.0.0.1:20000"], "worker": WORKERS}
    chief = distribution.cluster_task(tf_config(cluster, {"type": "chief", "index": 0}))
    first_worker = distribution.cluster_task(tf_config(cluster, {"type": "worker", "index": 0}))
    assert (chief.workers, chief.chief, first_worker.chief) == (4, True, False)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "TF_CONFIG is not set"),
        ({"TF_CONFIG": "{cluster: 1"}, "not valid JSON"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}}'}, '"task" object'),
        (tf_config({"worker": WORKERS, "ps": ["127.0.0.1:1"]}, {"type": "worker", "index": 0}), "ps"),
        (tf_config({"worker": ["localhost"]}, {"type": "worker", "index": 0}), "host:port"),
        (tf_config({"worker": WORKERS}, {"type": "worker", "index": 3}), "task index 3"),
        (tf_config({"worker": WORKERS}, {"type": "evaluator", "index": 0}), "task type 'evaluator'"),
    ],
    ids=["unset", "not-json", "no-task", "parameter-server", "no-port", "index-out-of-range", "unknown-type"],
)
def test_unusable_tf_config_is_a_usage_error(distribution, environment: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="--distribute multiworker") as raised:
        distribution.cluster_task(environment)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("kind", ["mirrored", "multiworker"])
def test_strategies_need_the_tensorflow_backend(distribution, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(distribution.keras.backend, "backend", lambda: "jax")
    with pytest.raises(UsageError, match=f"--distribute {kind} needs Keras's TensorFlow backend"):
        distribution.place_training(ExecutionConfig(distribute=kind))


def uneven_window_batches() -> WindowBatches:
    """Lines of 1 to 12 words and a logits budget that long lines exceed: batches of 5 rows, fewer
    when lines are long, and a short last batch."""
    stream = TokenStream.from_lines([[1 + (line + word) % 9 for word in range(1 + line % 12)] for line in range(41)])
    framed = stream.with_boundaries(10)
    windows = line_windows(framed, 13)
    batches = WindowBatches(framed, windows, batch_size=5, seed=3, shuffle=True, vocab_size=2**24 // 30)
    return batches


@pytest.mark.parametrize("replicas", [2, 3, 8])
def test_replica_shards_cover_every_row_once_in_equal_shapes(distribution, replicas: int) -> None:  # type: ignore[no-untyped-def]
    batches = uneven_window_batches()
    rows = [len(batches.batch(index)[0]) for index in range(len(batches))]
    assert len(set(rows)) > 1 and min(rows) < replicas  # uneven batches, some smaller than the replicas
    for epoch in range(2):  # two epochs, the second in its own order
        shards = distribution.replica_shards(batches, epoch=epoch, replicas=replicas, own=range(replicas))
        batches.set_epoch(epoch)
        for index in range(len(batches)):
            inputs, targets = batches.batch(index)
            pieces = [next(shards) for _ in range(replicas)]
            assert len({piece[0].shape for piece in pieces}) == 1 and len({piece[1].shape for piece in pieces}) == 1
            joined_inputs = np.concatenate([piece[0] for piece in pieces])
            joined_targets = np.concatenate([piece[1] for piece in pieces])
            np.testing.assert_array_equal(joined_inputs[: len(inputs)], inputs)
            np.testing.assert_array_equal(joined_targets[: len(targets)], targets)
            assert not joined_inputs[len(inputs) :].any() and not joined_targets[len(targets) :].any()
        assert next(shards, None) is None  # one epoch's shards, no more


def test_each_worker_keeps_its_own_replicas_shards(distribution) -> None:  # type: ignore[no-untyped-def]
    batches = uneven_window_batches()
    everything = distribution.replica_shards(batches, epoch=1, replicas=4, own=range(4))
    second_worker = distribution.replica_shards(batches, epoch=1, replicas=4, own=range(2, 4))
    for _ in range(len(batches)):
        all_four = [next(everything) for _ in range(4)]
        for mine, expected in zip([next(second_worker) for _ in range(2)], all_four[2:], strict=True):
            np.testing.assert_array_equal(mine[0], expected[0])
            np.testing.assert_array_equal(mine[1], expected[1])


@pytest.mark.parametrize("sparse", [True, False], ids=["windows", "one-hot-rows"])
def test_sharded_loss_and_accuracy_leave_padding_rows_out(distribution, sparse: bool) -> None:  # type: ignore[no-untyped-def]
    from rnngen.train.keras_engine.metrics import TokenAccuracy, keras

    generator = np.random.default_rng(0)
    if sparse:  # (rows, time) ids with padding at the ends, and a row of padding only
        targets = np.array([[3, 1, 2, 0], [4, 4, 0, 0], [0, 0, 0, 0]], dtype=np.int32)
        logits = generator.normal(size=(3, 4, 5)).astype(np.float32)
        real = targets != 0
        nats = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
        expected_loss = np.take_along_axis(nats, targets[..., None], -1)[..., 0][real].mean()
        expected_accuracy = (logits.argmax(-1) == targets)[real].mean()
    else:  # one-hot rows, the last one empty (a padding row)
        targets = np.eye(5, dtype=np.float32)[[1, 3, 0]]
        targets[2] = 0.0
        logits = generator.normal(size=(3, 5)).astype(np.float32)
        nats = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
        expected_loss = np.mean([nats[0, 1], nats[1, 3]])
        expected_accuracy = np.mean([logits[0].argmax() == 1, logits[1].argmax() == 3])
    loss = distribution.ShardedCrossEntropy(sparse=sparse)
    assert float(loss(targets, logits)) == pytest.approx(expected_loss, rel=1e-6)
    accuracy = TokenAccuracy(sparse=sparse)
    accuracy.update_state(keras.ops.convert_to_tensor(targets), keras.ops.convert_to_tensor(logits))
    assert float(accuracy.result()) == pytest.approx(expected_accuracy)


@pytest.mark.parametrize("tied", [False, True], ids=["dense-output", "tied-embeddings"])
def test_mixed_precision_computes_in_bfloat16_but_keeps_logits_loss_and_weights_float32(tied: bool) -> None:
    from rnngen.train.keras_engine.devices import dtype_policy
    from rnngen.train.keras_engine.model import build_model, export_weights, logits_model
    from rnngen.train.keras_engine.session import compile_model, keras

    config = ModelConfig(
        vocab_size=12, max_len=6, cell=CellKind.lstm, layers=2, bidirectional=False, embedding_dim=8, units=8,
        dropout=0.0, tie_embeddings=tied,
    )  # fmt: skip
    with dtype_policy("mixed_bfloat16"):
        model = build_model(config, sequence_output=True)
        trained = logits_model(model)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back
    assert model.get_layer("rnn0").compute_dtype == "bfloat16"
    assert all(variable.dtype == "float32" for variable in model.weights)
    compile_model(trained, config, TrainingConfig())
    contexts = np.array([[11, 3, 4, 0], [11, 5, 0, 0]], dtype=np.int32)
    targets = np.array([[3, 4, 11, 0], [5, 11, 0, 0]], dtype=np.int32)
    logits = trained([contexts])
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.backend.standardize_dtype(model(contexts).dtype) == "float32"  # the softmax
    loss = trained.compute_loss(x=contexts, y=targets, y_pred=logits)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert all(array.dtype == np.float32 for array in export_weights(model, config).values())


@pytest.mark.parametrize(("rows", "width"), [(64, 3), (64, 9), (7, 16), (3, 63), (20, 64)])
def test_bucketed_batches_come_in_few_shapes_and_keep_their_content(rows: int, width: int) -> None:
    batch_size, max_positions = 64, 1000
    padded_rows, padded_width = bucket_shape(rows, width, batch_size, max_positions)
    assert padded_width % WIDTH_MULTIPLE == 0 and width <= padded_width < width + WIDTH_MULTIPLE
    assert padded_rows >= rows and (padded_rows == rows or padded_rows * padded_width <= max_positions)
    inputs = np.arange(1, rows * width + 1, dtype=np.int32).reshape(rows, width)
    padded_inputs, padded_targets = pad_to_bucket(inputs, inputs + 1, batch_size, max_positions)
    assert padded_inputs.shape == padded_targets.shape == (padded_rows, padded_width)
    np.testing.assert_array_equal(padded_inputs[:rows, :width], inputs)
    assert padded_inputs.sum() == inputs.sum() and padded_targets.sum() == (inputs + 1).sum()
    shapes = {bucket_shape(64, length, batch_size, max_positions) for length in range(1, 65)}
    assert len(shapes) == 64 // WIDTH_MULTIPLE
