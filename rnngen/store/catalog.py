"""Where models live, and models by name: the models folder, `-m NAME`, and the list `rnngen models` prints.

Models live under one folder, `./models` unless the environment says otherwise, so that `train`
writes `models/<corpus stem>` and `-m seed` finds `models/seed` from wherever the shell is. Listing
reads each folder's config.json only, never its weights, so it stays fast however large the models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnngen.errors import ModelFolderError
from rnngen.store.folder import CONFIG_FILE, DEFAULT_MODELS_ROOT, latest_model_folder, read_json

# RNNGEN_MODELS names the models folder itself; RNNGEN_HOME names a folder whose `models/` it is.
MODELS_VARIABLE = "RNNGEN_MODELS"
HOME_VARIABLE = "RNNGEN_HOME"


def models_root() -> Path:
    """The folder models live in: $RNNGEN_MODELS, else $RNNGEN_HOME/models, else ./models."""
    if folder := os.environ.get(MODELS_VARIABLE):
        return Path(folder).expanduser()
    if home := os.environ.get(HOME_VARIABLE):
        return Path(home).expanduser() / DEFAULT_MODELS_ROOT.name
    return DEFAULT_MODELS_ROOT


def _is_model_folder(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def find_model(given: Path | None) -> Path:
    """The model folder that ``-m`` names, or the newest one in the models folder when none is named.

    A path that holds a model wins; otherwise a plain name is looked up in the models folder, so
    `-m seed` finds `models/seed` even where a `seed` folder of something else exists here.
    """
    root = models_root()
    if given is None:
        return latest_model_folder(root)
    if _is_model_folder(given):
        return given
    named = root / given
    if not given.is_absolute() and len(given.parts) == 1 and _is_model_folder(named):
        return named
    if given.exists() or given.is_absolute() or len(given.parts) > 1:
        return given  # reading it reports what is wrong with this folder
    raise ModelFolderError(
        f"{given}: no such model folder, here or in {root}/ ('rnngen models' lists the models there)"
    )


@dataclass(frozen=True)
class ModelEntry:
    """One line of `rnngen models`: what a model folder's config.json says about it."""

    name: str
    folder: str
    tokenizer: str
    network: str  # cell, layers x units, e.g. "lstm 1x128"
    vocabulary: int | None
    created: str | None
    perplexity: float | None  # held-out when the run had validation text, else on the training text
    bits_per_char: float | None
    held_out: bool  # whether the two figures are on held-out text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": self.folder,
            "tokenizer": self.tokenizer,
            "network": self.network,
            "vocabulary": self.vocabulary,
            "created": self.created,
            "perplexity": self.perplexity,
            "bits_per_char": self.bits_per_char,
            "held_out": self.held_out,
        }


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    section = config.get(name)
    return section if isinstance(section, dict) else {}


def _entry(folder: Path) -> ModelEntry | None:
    """The folder's entry, or None when its config.json cannot be read (it is left out of the list)."""
    try:
        config = read_json(folder / CONFIG_FILE)
    except ModelFolderError:
        return None
    if not isinstance(config, dict):
        return None
    model, tokenizer, metrics = (_section(config, name) for name in ("model", "tokenizer", "metrics"))
    held_out = "val_perplexity" in metrics
    prefix = "val_" if held_out else ""
    cell = ("bi-" if model.get("bidirectional") else "") + str(model.get("cell", "?"))
    network = f"{cell} {model.get('layers', '?')}x{model.get('units', '?')}"
    return ModelEntry(
        name=folder.name,
        folder=str(folder),
        tokenizer=str(tokenizer.get("kind", "?")),
        network=network,
        vocabulary=model.get("vocab_size"),
        created=config.get("created"),
        perplexity=metrics.get(f"{prefix}perplexity"),
        bits_per_char=metrics.get(f"{prefix}bits_per_char"),
        held_out=held_out,
    )


def list_models(root: Path | None = None) -> list[ModelEntry]:
    """Every model folder directly under ``root`` (the models folder by default), by name."""
    root = models_root() if root is None else root
    if not root.is_dir():
        return []
    folders = sorted(path for path in root.iterdir() if not path.name.startswith(".") and _is_model_folder(path))
    return [entry for folder in folders if (entry := _entry(folder)) is not None]
