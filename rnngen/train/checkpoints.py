"""Training checkpoints: everything needed to go on from the last finished epoch, or from a batch in
the middle of an epoch, kept beside the model.

A checkpoint is a hidden folder next to the model folder it will become (``models/.ptb.checkpoint``
for ``models/ptb``), replaced whole at every epoch end (and in the middle of an epoch, when asked), so
an interruption at any moment leaves the previous checkpoint intact. It holds plain arrays (``.npz``,
read without pickle) and JSON:

- state.json: the epochs done, the settings the run was asked for (which `--resume` alone takes up),
  the settings and data fingerprint a resumed run must match, the history so far, the state of early
  stopping and of the learning-rate halving, the seconds spent; in the middle of an epoch also where
  in the epoch it stands (the batches done and the engine's state for the rest of the epoch: its
  running sums and its dropout's random generator);
- variables.npz: every model variable, dropout's random-generator state included;
- optimizer.npz: the optimizer's variables (step count, learning rate, moment estimates);
- best.npz: the weights of the best epoch so far, which early stopping restores at the end.

A checkpoint at an epoch's end is format 1, which every version reads; one in the middle of an epoch
is format 2, which versions that cannot go on from a batch refuse rather than misread.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import LATER_MODEL_SETTINGS, LATER_TRAINING_SETTINGS, EngineKind
from rnngen.errors import ModelFolderError
from rnngen.store.folder import read_arrays, read_json, recover_folder, replace_folder

FORMAT_NAME = "rnngen-checkpoint"
FORMAT_VERSION = 1
MID_EPOCH_FORMAT_VERSION = 2  # a checkpoint with an epoch position
STATE_FILE = "state.json"
VARIABLES_FILE = "variables.npz"
OPTIMIZER_FILE = "optimizer.npz"
BEST_FILE = "best.npz"


def checkpoint_folder(destination: Path) -> Path:
    """Where the checkpoint of a model bound for ``destination`` lives."""
    destination = Path(destination)
    return destination.parent / f".{destination.name}.checkpoint"


@dataclass(frozen=True)
class EpochPosition:
    """Where an epoch under way stands: the batches done, and what the engine needs to go on from
    there as if it had never stopped (JSON values; their meaning is the engine's own)."""

    steps_done: int
    engine_state: dict[str, Any]


@dataclass(frozen=True)
class Checkpoint:
    """The state of a training run after ``epochs_done`` epochs."""

    epochs_done: int
    fingerprint: dict[str, Any]  # settings and data a resumed run must share
    history: dict[str, list[float]]
    callbacks: dict[str, dict[str, Any]]  # each stateful callback's counters, by name
    training_seconds: float
    variable_paths: list[str]  # the model variable each array of ``variables`` belongs to (for people)
    variables: list[np.ndarray]
    optimizer: list[np.ndarray]
    best: list[np.ndarray] | None
    # The request's settings (TrainingRequest.settings); None in checkpoints written before they were kept.
    settings: dict[str, Any] | None = None
    # How far epoch ``epochs_done`` (0-based) had got, for a checkpoint in its middle; None at an epoch's end.
    epoch_position: EpochPosition | None = None


# Settings younger than the checkpoint format, with the values a checkpoint that lacks them trained with.
LATER_SETTINGS: dict[str, Any] = {**LATER_MODEL_SETTINGS, **LATER_TRAINING_SETTINGS}


def engine_of(fingerprint: Mapping[str, Any]) -> EngineKind:
    """The engine a checkpoint's run trained with: Keras's for checkpoints written before there was a choice."""
    return EngineKind(fingerprint.get("engine", EngineKind.keras.value))


def _arrays(arrays: Sequence[np.ndarray]) -> dict[str, Any]:
    return {f"a{index:04d}": np.asarray(array) for index, array in enumerate(arrays)}


def save_checkpoint(folder: Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint beside ``folder`` and swap it in, replacing the previous one whole."""
    folder = Path(folder)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        position = checkpoint.epoch_position
        state = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION if position is None else MID_EPOCH_FORMAT_VERSION,
            "epochs_done": checkpoint.epochs_done,
            "fingerprint": checkpoint.fingerprint,
            "history": checkpoint.history,
            "callbacks": checkpoint.callbacks,
            "training_seconds": checkpoint.training_seconds,
            "variable_paths": checkpoint.variable_paths,
            "has_best": checkpoint.best is not None,
            "settings": checkpoint.settings,
        }
        if position is not None:
            state["epoch_position"] = {"steps_done": position.steps_done, "engine_state": position.engine_state}
        (staging / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        np.savez(staging / VARIABLES_FILE, **_arrays(checkpoint.variables))
        np.savez(staging / OPTIMIZER_FILE, **_arrays(checkpoint.optimizer))
        if checkpoint.best is not None:
            np.savez(staging / BEST_FILE, **_arrays(checkpoint.best))
        replace_folder(staging, folder)
    except OSError as error:
        raise ModelFolderError(f"{folder}: cannot write the checkpoint ({error.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_arrays(path: Path) -> list[np.ndarray]:
    arrays = read_arrays(path)
    names = sorted(arrays)
    if names != [f"a{index:04d}" for index in range(len(names))]:
        raise ModelFolderError(f"{path}: the checkpoint is damaged (unexpected array names)")
    return [arrays[name] for name in names]


def _checked_state(folder: Path) -> dict[str, Any]:
    state = read_json(folder / STATE_FILE)
    expected_types: Mapping[str, type | tuple[type, ...]] = {
        "epochs_done": int,
        "fingerprint": dict,
        "history": dict,
        "callbacks": dict,
        "training_seconds": (int, float),
        "variable_paths": list,
        "has_best": bool,
    }
    if not isinstance(state, dict) or state.get("format") != FORMAT_NAME:
        raise ModelFolderError(f"{folder}: not an rnngen checkpoint")
    if state.get("format_version") not in (FORMAT_VERSION, MID_EPOCH_FORMAT_VERSION):
        raise ModelFolderError(f"{folder}: checkpoint format {state.get('format_version')!r} is not supported")
    for name, kind in expected_types.items():
        if not isinstance(state.get(name), kind):
            raise ModelFolderError(f"{folder}: the checkpoint is damaged ({name})")
    history = state["history"]
    if not all(
        isinstance(values, list) and all(isinstance(v, (int, float)) for v in values) for values in history.values()
    ):
        raise ModelFolderError(f"{folder}: the checkpoint is damaged (history)")
    if state["epochs_done"] < 0:
        raise ModelFolderError(f"{folder}: the checkpoint is damaged (epochs_done)")
    if not isinstance(state.get("settings"), (dict, type(None))):
        raise ModelFolderError(f"{folder}: the checkpoint is damaged (settings)")
    position = state.get("epoch_position")
    if position is not None and not (
        isinstance(position, dict)
        and isinstance(position.get("steps_done"), int)
        and position["steps_done"] >= 0
        and isinstance(position.get("engine_state"), dict)
    ):
        raise ModelFolderError(f"{folder}: the checkpoint is damaged (epoch_position)")
    return state


def read_checkpoint_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's state.json alone, checked (its arrays are not read); ModelFolderError if missing
    or damaged."""
    folder = Path(folder)
    recover_folder(folder)
    if not (folder / STATE_FILE).is_file():
        raise ModelFolderError(f"{folder}: no checkpoint here")
    return _checked_state(folder)


def load_checkpoint(folder: Path) -> Checkpoint:
    """Read and check a checkpoint folder; ModelFolderError if it is missing or damaged."""
    folder = Path(folder)
    state = read_checkpoint_state(folder)
    variables = _load_arrays(folder / VARIABLES_FILE)
    if len(variables) != len(state["variable_paths"]):
        raise ModelFolderError(f"{folder}: the checkpoint is damaged (variables)")
    best = _load_arrays(folder / BEST_FILE) if state["has_best"] else None
    position = state.get("epoch_position")
    return Checkpoint(
        epochs_done=state["epochs_done"],
        fingerprint=state["fingerprint"],
        history={name: [float(value) for value in values] for name, values in state["history"].items()},
        callbacks=state["callbacks"],
        training_seconds=float(state["training_seconds"]),
        variable_paths=[str(path) for path in state["variable_paths"]],
        variables=variables,
        optimizer=_load_arrays(folder / OPTIMIZER_FILE),
        best=best,
        settings=state.get("settings"),
        epoch_position=None if position is None else EpochPosition(position["steps_done"], position["engine_state"]),
    )


def _to_resume(folder: Path) -> Path:
    """The checkpoint folder, put back first if a writer died while replacing it; ModelFolderError
    that says there is nothing to resume when there is none."""
    folder = Path(folder)
    recover_folder(folder)
    if not folder.exists():
        raise ModelFolderError(f"nothing to resume: no checkpoint at {folder}; train without --resume")
    return folder


def checkpoint_to_resume(folder: Path) -> Checkpoint:
    """The checkpoint a resumed run goes on from."""
    return load_checkpoint(_to_resume(folder))


def state_to_resume(folder: Path) -> dict[str, Any]:
    """The state.json of the checkpoint a resumed run goes on from, its arrays unread."""
    return read_checkpoint_state(_to_resume(folder))


def remove_checkpoint(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
