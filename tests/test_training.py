"""Training through the Python API: options, validation, and the two saved forms agreeing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, CellKind, EngineKind, ExecutionConfig, TrainingConfig
from rnngen.inference.generation import TextGenerator
from rnngen.store.folder import read_model_folder
from rnngen.train import train_corpus

from .conftest import SEED_TEXT


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "seed.txt"
    path.write_text(SEED_TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bidirectional", "tied"), [(False, False), (True, False), (False, True)], ids=["one-way", "bidirectional", "tied"]
)
def test_saved_keras_model_and_npz_weights_agree(corpus: Path, tmp_path: Path, bidirectional: bool, tied: bool) -> None:
    from rnngen.train.keras_engine.backend import import_keras

    keras = import_keras()
    architecture = ArchitectureConfig(
        cell=CellKind.gru,
        layers=2,
        bidirectional=bidirectional,
        embedding_dim=6 if tied else 8,
        units=6,
        dropout=0.1,
        tie_embeddings=tied,
    )
    train_corpus(
        corpus,
        tmp_path / "model",
        architecture=architecture,
        training=TrainingConfig(epochs=2),
        execution=ExecutionConfig(engine=EngineKind.keras),
    )
    stored = read_model_folder(tmp_path / "model")
    keras_model = keras.saving.load_model(tmp_path / "model" / "model.keras", safe_mode=True)
    contexts = np.array([[0, 0, 0, 0, 15], [0, 0, 0, 15, 2], [15, 6, 7, 8, 9], [0, 0, 0, 0, 0]])
    outputs = np.asarray(keras_model(contexts))
    # A one-directional model is saved as trained, predicting after every position; its last
    # position is the prediction for the whole context.
    expected = outputs if bidirectional else outputs[:, -1]
    engine = TextGenerator(stored).engine
    np.testing.assert_allclose(engine.probabilities_of_contexts(contexts.tolist()), expected, atol=1e-5)


def test_options_reach_the_saved_model(corpus: Path, tmp_path: Path) -> None:
    architecture = ArchitectureConfig(cell=CellKind.simple, layers=2, embedding_dim=5, units=7)
    result = train_corpus(
        corpus,
        tmp_path / "model",
        architecture=architecture,
        training=TrainingConfig(epochs=3, batch_size=4, max_len=3, learning_rate=0.01, seed=5),
    )
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["model"] == {
        "vocab_size": 16,
        "max_len": 3,
        "cell": "simple",
        "layers": 2,
        "bidirectional": False,
        "embedding_dim": 5,
        "units": 7,
        "dropout": 0.0,
        "tie_embeddings": False,
        "dropout_input": 0.0,
        "dropout_hidden": 0.0,
        "dropout_output": 0.0,
        "dropout_embedding": 0.0,
        "weight_drop": 0.0,
        "activation_regularization": 0.0,
        "temporal_activation_regularization": 0.0,
    }
    assert config["training"]["batch_size"] == 4 and config["training"]["seed"] == 5
    assert result.epochs_run == 3 and len(config["history"]["loss"]) == 3


def test_validation_split_holds_out_lines_and_reports_validation_loss(tmp_path: Path) -> None:
    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(f"the cat number {i} sat on the mat" for i in range(20)), encoding="utf-8")
    result = train_corpus(
        corpus,
        tmp_path / "model",
        architecture=ArchitectureConfig(units=8, embedding_dim=4),
        training=TrainingConfig(epochs=2, val_split=0.25),
    )
    # 8 words a line: 9 targets with the end of the line. A held-out line's number is a word the
    # training lines lack, so it is unknown there and left out, as evaluate leaves it out.
    assert result.validation_samples == 5 * 8 and result.samples == 15 * 9
    assert "val_cross_entropy" in result.metrics and "val_bits_per_char" in result.metrics
    assert "val_loss" not in result.metrics  # Keras's batch-averaged loss stays in the history only
    vocabulary = read_model_folder(tmp_path / "model").vocabulary
    assert len(vocabulary.words) == 6 + 15  # the, cat, number, sat, on, mat and the training lines' numbers


def test_same_seed_same_weights(corpus: Path, tmp_path: Path) -> None:
    training = TrainingConfig(epochs=3, seed=3)
    architecture = ArchitectureConfig(units=8, embedding_dim=4)
    train_corpus(corpus, tmp_path / "first", architecture=architecture, training=training)
    train_corpus(corpus, tmp_path / "second", architecture=architecture, training=training)
    first, second = read_model_folder(tmp_path / "first"), read_model_folder(tmp_path / "second")
    for name, array in first.weights.items():
        np.testing.assert_array_equal(array, second.weights[name])


@pytest.mark.parametrize("engine", [EngineKind.numpy, EngineKind.keras])
def test_learning_rate_decays_every_epoch(corpus: Path, tmp_path: Path, engine: EngineKind) -> None:
    training = TrainingConfig(epochs=3, learning_rate=0.01, lr_decay=0.5, reduce_lr_patience=0, patience=0)
    train_corpus(
        corpus,
        tmp_path / "model",
        architecture=ArchitectureConfig(units=8, embedding_dim=4),
        training=training,
        execution=ExecutionConfig(engine=engine),
    )
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["history"]["learning_rate"] == pytest.approx([0.01, 0.005, 0.0025])


def test_xla_trains_as_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnngen.config import ContextKind, XlaKind
    from rnngen.train.keras_engine import session as keras_session

    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(f"the cat number {i % 7} sat on the mat" for i in range(40)), encoding="utf-8")
    compiled_with = []
    compile_model = keras_session.compile_model

    def recording_compile(*arguments: object, jit_compile: bool | str = "auto", **keywords: object) -> None:
        compiled_with.append(jit_compile)
        compile_model(*arguments, jit_compile=jit_compile, **keywords)  # type: ignore[arg-type]

    monkeypatch.setattr(keras_session, "compile_model", recording_compile)
    architecture = ArchitectureConfig(units=8, embedding_dim=4)
    settings = TrainingConfig(epochs=2, batch_size=2, context=ContextKind.stream, val_split=0.0, patience=0)
    losses = {}
    for xla in (XlaKind.on, XlaKind.off):
        folder = tmp_path / xla.value
        execution = ExecutionConfig(xla=xla, engine=EngineKind.keras)
        train_corpus(corpus, folder, architecture=architecture, training=settings, execution=execution)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        losses[xla] = config["history"]["loss"]
        assert config["execution"]["xla"] == xla.value
    assert compiled_with == [True, False]
    # The same steps from the same weights (no dropout): only the order of float additions differs.
    np.testing.assert_allclose(losses[XlaKind.on], losses[XlaKind.off], rtol=1e-4)


@pytest.mark.parametrize(
    ("xla", "context", "steps", "expected"),
    [
        ("auto", "stream", 100, True),
        ("auto", "stream", 99, False),  # too few steps to repay compiling
        ("auto", "line", 1000, False),  # lines come in many widths: a compilation for each
        ("on", "line", 1, True),
        ("off", "stream", 1000, False),
    ],
)
def test_xla_is_chosen_for_many_stream_steps_on_a_cpu(xla: str, context: str, steps: int, expected: bool) -> None:
    from rnngen.config import ContextKind
    from rnngen.train.keras_engine.distribution import Placement
    from rnngen.train.keras_engine.session import jit_compile_setting
    from rnngen.train.setup import DataPlan

    placement = Placement(strategy=None, device="cpu", dtype_policy="float32")
    plan = DataPlan(batches=[None] * steps, targets=steps, target_counts=np.zeros(1))  # type: ignore[arg-type]
    training = TrainingConfig(context=ContextKind(context))
    assert jit_compile_setting(ExecutionConfig(xla=xla), placement, training, plan) is expected
