"""`rnngen export --keras`: a folder the numpy engine trained, written as a Keras model that predicts
what rnngen's own forward pass predicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, CellKind, EngineKind, ExecutionConfig, TrainingConfig
from rnngen.network.forward import NumpyLanguageModel
from rnngen.store.folder import read_model_folder
from rnngen.train import train_corpus

from .conftest import SEED_TEXT, rnngen

# Every word of the seed corpus's vocabulary (16 ids) appears; the last row is all padding.
CONTEXTS = np.array([[0, 0, 0, 0, 15], [0, 0, 0, 15, 2], [15, 6, 7, 8, 9], [2, 3, 4, 5, 1], [0, 0, 0, 0, 0]])


@pytest.mark.parametrize(
    ("cell", "layers", "tied"),
    [(CellKind.lstm, 1, False), (CellKind.gru, 2, True), (CellKind.simple, 2, False)],
    ids=["lstm", "gru-tied", "simple-stacked"],
)
def test_the_exported_model_predicts_the_numpy_engines_probabilities(
    tmp_path: Path, cell: CellKind, layers: int, tied: bool
) -> None:
    from rnngen.train.keras_engine.backend import import_keras
    from rnngen.train.keras_engine.export import export_keras_model

    keras = import_keras()
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    folder = tmp_path / "model"
    train_corpus(
        tmp_path / "seed.txt",
        folder,
        architecture=ArchitectureConfig(cell=cell, layers=layers, embedding_dim=6, units=6, tie_embeddings=tied),
        training=TrainingConfig(epochs=3),
        execution=ExecutionConfig(engine=EngineKind.numpy),
    )
    stored = read_model_folder(folder)
    assert export_keras_model(stored) == folder / "model.keras"
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".")) == []  # no staging left
    keras_model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    # A one-directional model predicts after every position; the last is the whole context's prediction.
    expected = np.asarray(keras_model(CONTEXTS))[:, -1]
    engine = NumpyLanguageModel(stored.model, stored.weights)
    np.testing.assert_allclose(engine.probabilities_of_contexts(CONTEXTS.tolist()), expected, atol=1e-5)


def test_export_on_the_command_line(seed_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    shutil.copytree(seed_model, folder)
    result = rnngen("export", str(folder), "--keras", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{folder / 'model.keras'}\n", "")
    assert (folder / "model.keras").stat().st_size > 0

    no_format = rnngen("export", str(folder), cwd=tmp_path)
    assert no_format.returncode == 2 and "--keras" in no_format.stderr and no_format.stdout == ""
    missing = rnngen("export", str(tmp_path / "nothing"), "--keras", cwd=tmp_path)
    assert missing.returncode == 1 and "no such model folder" in missing.stderr and "Traceback" not in missing.stderr
