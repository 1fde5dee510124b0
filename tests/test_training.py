"""Training through the Python API: options, validation, and the two saved forms agreeing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, CellKind, TrainingConfig
from rnngen.generation import TextGenerator
from rnngen.store import read_model_folder
from rnngen.training import train_corpus

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
    from rnngen.keras_backend import import_keras

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
    train_corpus(corpus, tmp_path / "model", architecture=architecture, training=TrainingConfig(epochs=2))
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
    # 8 words a line: 9 targets with the end of the line.
    assert result.validation_samples == 5 * 9 and result.samples == 15 * 9
    assert "val_loss" in result.metrics


def test_same_seed_same_weights(corpus: Path, tmp_path: Path) -> None:
    training = TrainingConfig(epochs=3, seed=3)
    architecture = ArchitectureConfig(units=8, embedding_dim=4)
    train_corpus(corpus, tmp_path / "first", architecture=architecture, training=training)
    train_corpus(corpus, tmp_path / "second", architecture=architecture, training=training)
    first, second = read_model_folder(tmp_path / "first"), read_model_folder(tmp_path / "second")
    for name, array in first.weights.items():
        np.testing.assert_array_equal(array, second.weights[name])


def test_learning_rate_decays_every_epoch(corpus: Path, tmp_path: Path) -> None:
    training = TrainingConfig(epochs=3, learning_rate=0.01, lr_decay=0.5, reduce_lr_patience=0, patience=0)
    train_corpus(
        corpus, tmp_path / "model", architecture=ArchitectureConfig(units=8, embedding_dim=4), training=training
    )
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["history"]["learning_rate"] == pytest.approx([0.01, 0.005, 0.0025])
