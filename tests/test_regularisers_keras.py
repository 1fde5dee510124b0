"""The regularisers and schedules in the Keras engine: the model with its dropouts scores as the numpy
engine's in inference, its locked dropout and word dropout drop what they should in training, it steps
with the numpy engine's learning rates, and a run with them resumes exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, EngineKind, ExecutionConfig, ScheduleKind, TrainingConfig
from rnngen.network.weights import cell_weight_names, recurrent_layer_name
from rnngen.train import TrainingRequest
from rnngen.train.numpy_engine import backprop
from rnngen.train.schedule import StepSchedule
from rnngen.train.setup import prepare_run

from .test_numpy_engine import tiny_batch, tiny_config, tiny_weights
from .test_regularisers import assert_resumes_exactly, corpus_lines

RATES = {"dropout_input": 0.3, "dropout_hidden": 0.3, "dropout_output": 0.4, "dropout_embedding": 0.2}


@pytest.mark.parametrize("tie", [True, False])
def test_with_its_dropouts_the_keras_model_scores_as_the_numpy_engine_in_inference(tie: bool) -> None:
    from rnngen.train.keras_engine.backend import import_keras
    from rnngen.train.keras_engine.model import build_model, logits_model

    keras = import_keras()
    config = dataclasses.replace(tiny_config("lstm", layers=2, tie=tie, dropout=0.2, vocab=9), **RATES)
    weights = {name: array.astype(np.float32) for name, array in tiny_weights(config, seed=3).items()}
    inputs, targets = tiny_batch(config.vocab_size, seed=4)
    model = logits_model(build_model(config, sequence_output=True))
    if tie:
        model.get_layer("embedding").set_weights([weights["embedding"], weights["output.bias"]])
    else:
        model.get_layer("embedding").set_weights([weights["embedding"]])
        model.get_layer("output").set_weights([weights["output.kernel"], weights["output.bias"]])
    for layer in range(config.layers):
        model.get_layer(recurrent_layer_name(layer)).set_weights([weights[name] for name in cell_weight_names(layer)])
    names = {layer.name for layer in model.layers}
    assert {"locked_dropout_input", "locked_dropout1", "locked_dropout_output"} <= names
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = float(keras.ops.convert_to_numpy(loss(targets, model([inputs], training=False))))
    score = backprop.score_batch(weights, config, inputs, targets)
    assert score.cross_entropy / score.targets == pytest.approx(expected, rel=1e-5)
    trained = float(keras.ops.convert_to_numpy(loss(targets, model([inputs], training=True))))
    assert trained != pytest.approx(expected, rel=1e-3)  # in training the masks act


def test_rates_at_zero_add_no_layers_so_earlier_checkpoints_fit() -> None:
    from rnngen.train.keras_engine.model import build_model

    config = tiny_config("gru", layers=2, dropout=0.2)
    plain = build_model(config, sequence_output=True)
    regularised = build_model(dataclasses.replace(config, **dict.fromkeys(RATES, 0.0)), sequence_output=True)
    assert [variable.shape for variable in plain.variables] == [variable.shape for variable in regularised.variables]
    assert [layer.name for layer in plain.layers] == [layer.name for layer in regularised.layers]


def test_keras_locked_dropout_and_word_dropout_drop_what_they_should() -> None:
    from rnngen.train.keras_engine.backend import import_keras
    from rnngen.train.keras_engine.model import build_model

    keras = import_keras()
    config = dataclasses.replace(tiny_config("lstm", layers=1, vocab=6), dropout_input=0.5, dropout_embedding=0.5)
    model = build_model(config, sequence_output=True)
    locked = model.get_layer("locked_dropout_input")
    seen = keras.ops.convert_to_numpy(locked(np.ones((6, 8, 4), np.float32), training=True))  # (batch, time, dim)
    assert (seen == 0).any() and (seen == 2.0).any()
    np.testing.assert_array_equal(seen, np.broadcast_to(seen[:, :1], seen.shape))  # the same at every step
    embedding = model.get_layer("embedding")
    embedding.set_weights([np.ones((6, 4), np.float32)])
    ids = np.tile(np.arange(1, 6, dtype=np.int32), (4, 3))
    looked_up = keras.ops.convert_to_numpy(embedding(ids, training=True))  # (batch, time, dim)
    dropped = {int(word) for word in ids[(looked_up == 0).all(axis=-1)]}
    kept = {int(word) for word in ids[(looked_up == 2.0).all(axis=-1)]}
    assert dropped and kept and not dropped & kept and dropped | kept == set(range(1, 6))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embedding(ids, training=False)), 1.0)


def test_the_keras_engine_steps_with_the_schedules_rates(tmp_path: Path) -> None:
    from rnngen.train.keras_engine.engine import KerasEngine

    (tmp_path / "corpus.txt").write_text(corpus_lines(60), encoding="utf-8")
    training = TrainingConfig(epochs=2, batch_size=8, lr_schedule=ScheduleKind.cosine, warmup_steps=3, val_split=0.2)
    request = TrainingRequest(
        corpus=tmp_path / "corpus.txt",
        destination=tmp_path / "model",
        architecture=ArchitectureConfig(embedding_dim=6, units=6),
        training=training,
        execution=ExecutionConfig(engine=EngineKind.keras, device="cpu"),  # type: ignore[arg-type]
    )
    run = prepare_run(request, EngineKind.keras)
    session = KerasEngine(request).start(run)
    rates: list[float] = []

    def record(step: int, logs: dict[str, float]) -> bool:
        rates.append(session.learning_rate)  # the rate the step just taken used
        return False

    for epoch in range(2):
        session.learning_rate = 0.01
        session.train_epoch(epoch, record)
        assert session.learning_rate == pytest.approx(0.01)  # the epoch's rate again, for checkpoints
    steps = len(run.training_plan.batches)
    schedule = StepSchedule(ScheduleKind.cosine, 3, 2 * steps)
    assert rates == pytest.approx([0.01 * schedule.factor(step) for step in range(2 * steps)], rel=1e-6)


OPTIONS = ["--epochs", "3", "--batch-size", "8", "--embedding-dim", "8", "--units", "8", "--layers", "2"]
OPTIONS += ["--val-split", "0.2", "--patience", "0", "--quiet", "--engine", "keras"]
OPTIONS += [
    "--dropout-input",
    "0.3",
    "--dropout-hidden",
    "0.2",
    "--dropout-output",
    "0.3",
    "--dropout-embedding",
    "0.1",
]
OPTIONS += ["--lr-schedule", "linear", "--warmup-steps", "5"]


def test_a_keras_run_with_the_regularisers_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    assert_resumes_exactly(tmp_path, 160, OPTIONS, max_steps=20)
    histories = [
        json.loads((tmp_path / name / "config.json").read_text())["history"] for name in ("straight", "stages")
    ]
    assert histories[0] == histories[1]
