"""Reads and writes the model folder: JSON settings, vocabulary, npz weights, atomic replacement.

A folder is written beside its destination and renamed into place only when complete, so a crash
never leaves half a model where a good one was. Reading validates everything before use and never
unpickles or executes anything from the folder.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import CellKind, ModelConfig, TokenizerConfig, TokenizerKind
from rnngen.data.vocab import Vocabulary
from rnngen.errors import ModelFolderError, UsageError
from rnngen.network.trigram import TRIGRAM_COUNTS, TRIGRAM_KEYS, KneserNeyTrigram, TrigramMixture
from rnngen.network.weights import expected_weight_shapes
from rnngen.processes import process_is_gone

FORMAT_NAME = "rnngen-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "model.keras"
# The word counts a network is mixed with (rnngen/network/trigram.py), when config.json has "mixture".
TRIGRAM_FILE = "trigram.npz"
MIXTURE_ENTRY = "mixture"
CURVE_FILE = "training.png"
DEFAULT_MODELS_ROOT = Path("models")


@dataclass(frozen=True)
class StoredModel:
    """Everything generation needs, read and checked from a model folder."""

    folder: Path
    config: dict[str, Any]
    tokenizer: TokenizerConfig
    model: ModelConfig
    vocabulary: Vocabulary
    weights: dict[str, np.ndarray]
    # The trigram the network's probabilities are mixed with, and how; None for the network alone.
    mixture: TrigramMixture | None = None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _fsync_folder(folder: Path) -> None:
    """Flush every file in the folder to disk, so the rename that follows publishes real data."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def check_destination(destination: Path, replace: bool = False) -> None:
    """Fail now, not after hours of training, if a model folder cannot be written at ``destination``.

    An existing model there is replaced only when ``replace`` says so (`train --force`, or `--resume`
    finishing its own run); a folder of anything else is never replaced.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise ModelFolderError(f"{destination}: exists and is not a folder; choose another output")
    recover_folder(destination)
    if destination.is_dir() and any(destination.iterdir()):
        if not (destination / CONFIG_FILE).is_file():
            raise UsageError(f"{destination}: exists and is not a model folder; choose another output with -o")
        if not replace:
            raise UsageError(
                f"{destination} already holds a model; add --force to replace it, or -o for another folder"
            )
    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{destination.name}.probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        raise ModelFolderError(f"{parent}: cannot write the model folder here ({error.strerror})") from None


def write_model_folder(
    destination: Path,
    config: Mapping[str, Any],
    vocabulary: Vocabulary,
    weights: Mapping[str, np.ndarray],
    write_extra: Callable[[Path], None] | None = None,
    trigram: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write a complete model folder, then swap it in for whatever was at ``destination``.

    ``write_extra`` may add files (the Keras model) to the staging folder before the swap; ``trigram``
    is the counts of the mixture config.json describes.
    """
    destination = Path(destination)
    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # mkdir (not mkdtemp) so the folder gets the user's usual permissions once renamed.
        staging = parent / f".{destination.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as error:
        raise ModelFolderError(f"{parent}: cannot write the model folder here ({error.strerror})") from None
    try:
        _write_json(staging / CONFIG_FILE, {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **config})
        _write_json(staging / VOCABULARY_FILE, vocabulary.to_json())
        arrays: dict[str, Any] = {name: np.asarray(array) for name, array in weights.items()}
        np.savez(staging / WEIGHTS_FILE, **arrays)
        if trigram is not None:
            counts: dict[str, Any] = {name: np.asarray(array) for name, array in trigram.items()}
            np.savez(staging / TRIGRAM_FILE, **counts)
        if write_extra is not None:
            write_extra(staging)
        replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# Names of the folders a writer leaves beside its destination while it works:
# ".<name>.partial-<pid>-<random>" (being written) and ".<name>.old-<pid>-<random>" (moved aside).
_WORK_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


def recover_folder(destination: Path) -> None:
    """Clean up after a writer that was killed (kill -9, power loss) while replacing ``destination``.

    Its half-written folder is removed; and if it died between moving the previous folder aside and
    renaming the new one into place, the previous folder is put back, so the old model still works.
    Folders of writers that are still running are left alone.
    """
    destination = Path(destination)
    parent = destination.parent
    if not parent.is_dir():
        return
    abandoned: dict[str, list[Path]] = {"partial": [], "old": []}
    for path in parent.glob(f".{glob.escape(destination.name)}.*-*"):
        match = _WORK_FOLDER.match(path.name)
        if match and match["name"] == destination.name and process_is_gone(int(match["pid"])):
            abandoned[match["kind"]].append(path)
    for path in abandoned["partial"]:
        shutil.rmtree(path, ignore_errors=True)
    retired = sorted(abandoned["old"], key=lambda path: path.stat().st_mtime_ns)
    if retired and not destination.exists():
        os.rename(retired.pop(), destination)
    for path in retired:
        shutil.rmtree(path, ignore_errors=True)


def replace_folder(staging: Path, destination: Path) -> None:
    """Flush the finished folder to disk and rename it to its destination, moving any previous
    folder there aside first: readers see the old folder or the new one, never half of either."""
    if destination.exists() and not destination.is_dir():
        raise ModelFolderError(f"{destination}: exists and is not a folder; choose another output")
    _fsync_folder(staging)
    retired = None
    if destination.exists():
        retired = destination.parent / f".{destination.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(destination, retired)
    try:
        os.rename(staging, destination)
    except OSError:
        if retired is not None:
            os.rename(retired, destination)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def read_json(path: Path) -> Any:
    """The JSON value of a file of a model folder or checkpoint; ModelFolderError if missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path.parent}: not a model folder ({path.name} is missing)") from None
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: absurdly nested JSON
        raise ModelFolderError(f"{path}: unreadable ({error.__class__.__name__})") from None


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, never unpickling anything; ModelFolderError if missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFolderError(f"{path.parent}: not a model folder ({path.name} is missing)") from None
    except Exception as error:  # noqa: BLE001
        # A damaged archive can make zipfile's and numpy's parsers raise nearly anything (BadZipFile,
        # NotImplementedError for a made-up zip version, EOFError, struct.error, ...): to the user it
        # is all the same damage.
        raise ModelFolderError(f"{path}: the weights are damaged ({error.__class__.__name__})") from None


def _settings(config: dict[str, Any]) -> tuple[TokenizerConfig, ModelConfig]:
    """The tokenizer and model settings of config.json, type-checked field by field."""
    tokenizer = config.get("tokenizer")
    model = config.get("model")
    if not isinstance(tokenizer, dict) or not isinstance(model, dict):
        raise ValueError("tokenizer or model settings are missing")
    if not isinstance(tokenizer.get("filters"), str) or not isinstance(tokenizer.get("lower"), bool):
        raise ValueError("tokenizer settings have the wrong types")
    known_kinds = [kind.value for kind in TokenizerKind]
    if tokenizer.get("kind") not in known_kinds:
        raise ValueError(f"unknown tokenizer {tokenizer.get('kind')!r}; this rnngen knows {', '.join(known_kinds)}")
    integer_fields = ("vocab_size", "layers", "embedding_dim", "units", "max_len")
    if any(type(model.get(name)) is not int for name in integer_fields):
        raise ValueError("model sizes must be integers")
    if (
        not isinstance(model.get("bidirectional"), bool)
        or not isinstance(model.get("dropout"), (int, float))
        or not isinstance(model.get("tie_embeddings", False), bool)
    ):
        raise ValueError("model settings have the wrong types")
    tokenizer_config = TokenizerConfig(
        kind=TokenizerKind(tokenizer.get("kind")), filters=tokenizer["filters"], lower=tokenizer["lower"]
    )
    model_config = ModelConfig(
        vocab_size=model["vocab_size"],
        cell=CellKind(model.get("cell")),
        layers=model["layers"],
        bidirectional=model["bidirectional"],
        embedding_dim=model["embedding_dim"],
        units=model["units"],
        dropout=float(model["dropout"]),
        max_len=model["max_len"],
        tie_embeddings=model.get("tie_embeddings", False),
    )
    return tokenizer_config, model_config


def read_model_folder(folder: Path) -> StoredModel:
    """Load and validate a model folder written by ``write_model_folder``."""
    folder = Path(folder)
    if not folder.exists():
        recover_folder(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    config = read_json(folder / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFolderError(f"{folder}: not an rnngen model folder")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{folder}: model format version {config.get('format_version')!r} is not supported "
            f"(this rnngen reads version {FORMAT_VERSION}); retrain the model"
        )
    try:
        tokenizer, model = _settings(config)
    except (ValueError, TypeError) as error:
        raise ModelFolderError(f"{folder / CONFIG_FILE}: invalid settings ({error})") from None
    try:
        vocabulary = Vocabulary.from_json(read_json(folder / VOCABULARY_FILE))
    except ValueError as error:
        raise ModelFolderError(f"{folder / VOCABULARY_FILE}: invalid vocabulary ({error})") from None
    if vocabulary.size != model.vocab_size:
        raise ModelFolderError(
            f"{folder}: the vocabulary has {vocabulary.size} ids but the model expects {model.vocab_size}"
        )
    weights = read_arrays(folder / WEIGHTS_FILE)
    for name, shape in expected_weight_shapes(model).items():
        array = weights.get(name)
        if array is None or array.shape != shape or array.dtype.kind != "f":
            raise ModelFolderError(f"{folder / WEIGHTS_FILE}: weight '{name}' is missing or has the wrong shape")
        if not np.isfinite(array).all():
            raise ModelFolderError(f"{folder / WEIGHTS_FILE}: weight '{name}' holds NaN or infinite values")
    mixture = _read_mixture(folder, config, vocabulary)
    return StoredModel(folder, config, tokenizer, model, vocabulary, weights, mixture)


def _read_mixture(folder: Path, config: dict[str, Any], vocabulary: Vocabulary) -> TrigramMixture | None:
    """The trigram mixture config.json describes, its counts read from TRIGRAM_FILE and checked; None
    when it describes none."""
    settings = config.get(MIXTURE_ENTRY)
    if settings is None:
        return None
    weight = settings.get("network_weight") if isinstance(settings, dict) else None
    escape = settings.get("escape") if isinstance(settings, dict) else None
    if not all(isinstance(value, float) and 0.0 <= value < 1.0 for value in (weight, escape)) or weight == 0.0:
        raise ModelFolderError(f"{folder / CONFIG_FILE}: invalid mixture settings")
    arrays = read_arrays(folder / TRIGRAM_FILE)
    keys, counts = arrays.get(TRIGRAM_KEYS), arrays.get(TRIGRAM_COUNTS)
    size = vocabulary.size
    if (
        keys is None
        or counts is None
        or keys.dtype != np.int64
        or counts.dtype.kind != "i"
        or keys.ndim != 1
        or keys.shape != counts.shape
        or len(keys) == 0
        or (counts < 1).any()
        or keys[0] < 0
        or keys[-1] >= size**3
        or (np.diff(keys) <= 0).any()
    ):
        raise ModelFolderError(f"{folder / TRIGRAM_FILE}: the trigram counts are damaged")
    trigram = KneserNeyTrigram(keys, counts, size, vocabulary.unknown_id, float(escape))  # type: ignore[arg-type]
    return TrigramMixture(trigram, float(weight))  # type: ignore[arg-type]


def latest_model_folder(models_root: Path = DEFAULT_MODELS_ROOT) -> Path:
    """The most recently written model folder under ``models_root`` (by its config.json's time)."""
    for path in Path(models_root).glob(".*.old-*"):
        match = _WORK_FOLDER.match(path.name)
        if match:
            recover_folder(Path(models_root) / match["name"])
    candidates = [
        config_path.parent
        for config_path in Path(models_root).glob(f"*/{CONFIG_FILE}")
        if not config_path.parent.name.startswith(".")
    ]
    if not candidates:
        raise ModelFolderError(
            f"no trained model under {models_root}/; train one with 'rnngen train CORPUS' or pass -m DIR"
        )
    return max(candidates, key=lambda folder: (folder / CONFIG_FILE).stat().st_mtime_ns)
