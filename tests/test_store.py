"""The model folder: round trip, validation, atomic replacement, newest-model lookup."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import CellKind, ModelConfig, TokenizerConfig, to_json_dict
from rnngen.data.vocab import Vocabulary
from rnngen.errors import ModelFolderError
from rnngen.network.weights import expected_weight_shapes
from rnngen.store.folder import latest_model_folder, read_model_folder, recover_folder, write_model_folder

MODEL = ModelConfig(
    vocab_size=5, max_len=3, cell=CellKind.gru, layers=1, bidirectional=False, embedding_dim=2, units=3, dropout=0.0
)
VOCABULARY = Vocabulary(("a", "b", "c"))


def weights(fill: float = 0.5) -> dict[str, np.ndarray]:
    return {name: np.full(shape, fill, dtype=np.float32) for name, shape in expected_weight_shapes(MODEL).items()}


def settings() -> dict[str, object]:
    return {"tokenizer": to_json_dict(TokenizerConfig()), "model": to_json_dict(MODEL)}


def test_round_trip(tmp_path: Path) -> None:
    write_model_folder(tmp_path / "model", settings(), VOCABULARY, weights())
    stored = read_model_folder(tmp_path / "model")
    assert stored.model == MODEL and stored.vocabulary == VOCABULARY and stored.tokenizer == TokenizerConfig()
    np.testing.assert_array_equal(stored.weights["output.bias"], weights()["output.bias"])


def test_a_failed_write_leaves_the_previous_model_untouched(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    write_model_folder(destination, settings(), VOCABULARY, weights(0.5))

    def crash(folder: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_model_folder(destination, settings(), VOCABULARY, weights(0.9), write_extra=crash)
    assert read_model_folder(destination).weights["embedding"][0, 0] == pytest.approx(0.5)
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_a_new_model_replaces_the_old_one_completely(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    write_model_folder(
        destination, settings(), VOCABULARY, weights(0.5), write_extra=lambda f: (f / "x").write_text("1")
    )
    write_model_folder(destination, settings(), VOCABULARY, weights(0.9))
    assert not (destination / "x").exists()
    assert read_model_folder(destination).weights["embedding"][0, 0] == pytest.approx(0.9)
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda config: config.update(format_version=99), "version 99 is not supported"),
        (lambda config: config.update(format="other"), "not an rnngen model folder"),
        (lambda config: config["model"].update(units="3"), "invalid settings"),
        (lambda config: config["model"].update(cell="transformer"), "invalid settings"),
        (lambda config: config["model"].update(units=4), "wrong shape"),
        (lambda config: config.pop("tokenizer"), "invalid settings"),
        (
            lambda config: config["tokenizer"].update(kind="bpe"),
            "unknown tokenizer 'bpe'; this rnngen knows word, morph, char",
        ),
    ],
)
def test_invalid_settings_are_rejected(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    destination = tmp_path / "model"
    write_model_folder(destination, settings(), VOCABULARY, weights())
    config = json.loads((destination / "config.json").read_text(encoding="utf-8"))
    change(config)
    (destination / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFolderError, match=message):
        read_model_folder(destination)


def test_non_finite_weights_are_rejected(tmp_path: Path) -> None:
    broken = weights()
    broken["output.bias"][1] = np.nan
    write_model_folder(tmp_path / "model", settings(), VOCABULARY, broken)
    with pytest.raises(ModelFolderError, match="NaN"):
        read_model_folder(tmp_path / "model")


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    write_model_folder(tmp_path / "model", settings(), VOCABULARY, weights())
    arrays = weights()
    np.savez(tmp_path / "model" / "weights.npz", **arrays, sneaky=np.array([object()], dtype=object))
    with pytest.raises(ModelFolderError, match="damaged"):
        read_model_folder(tmp_path / "model")


def test_latest_model_is_the_most_recently_written(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="no trained model"):
        latest_model_folder(tmp_path)
    write_model_folder(tmp_path / "older", settings(), VOCABULARY, weights())
    write_model_folder(tmp_path / "newer", settings(), VOCABULARY, weights())
    past = time.time() - 60
    os.utime(tmp_path / "older" / "config.json", (past, past))
    assert latest_model_folder(tmp_path) == tmp_path / "newer"
    os.utime(tmp_path / "newer" / "config.json", (past - 60, past - 60))
    assert latest_model_folder(tmp_path) == tmp_path / "older"


def dead_process_id() -> int:
    """The id of a process that has ended (the kernel does not reuse it at once)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_writer_killed_between_its_two_renames_leaves_the_old_model_working(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    write_model_folder(destination, settings(), VOCABULARY, weights(0.5))
    # The state kill -9 leaves between "move the old model aside" and "rename the new one in".
    dead = dead_process_id()
    os.rename(destination, tmp_path / f".model.old-{dead}-0123abcd")
    (tmp_path / f".model.partial-{dead}-89abcdef").mkdir()
    assert read_model_folder(destination).weights["embedding"][0, 0] == pytest.approx(0.5)
    assert latest_model_folder(tmp_path) == destination
    write_model_folder(destination, settings(), VOCABULARY, weights(0.9))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_folders_of_a_running_writer_are_left_alone(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    write_model_folder(destination, settings(), VOCABULARY, weights(0.5))
    busy = tmp_path / f".model.partial-{os.getpid()}-0123abcd"
    busy.mkdir()
    recover_folder(destination)
    assert busy.is_dir()
