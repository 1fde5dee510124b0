"""Writes a model folder's weights as a Keras model (`rnngen export --keras`), for folders the numpy
engine trained: the same network, predicting the same probabilities."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from rnngen.errors import ModelFolderError
from rnngen.store.folder import KERAS_FILE, StoredModel
from rnngen.train.keras_engine.backend import import_keras
from rnngen.train.keras_engine.model import build_model, import_weights

keras = import_keras()


def export_keras_model(stored: StoredModel) -> Path:
    """Write ``model.keras`` into the model folder (replacing any there) and return its path.

    The file is written beside its final name and renamed into place, so an interrupted export leaves
    the folder as it was. A one-directional model predicts after every position (batch, time, vocab),
    as the Keras engine saves it; a bidirectional one after the whole context (batch, vocab).
    """
    config = stored.model
    model = build_model(config, sequence_output=not config.bidirectional)
    import_weights(model, config, stored.weights)
    path = stored.folder / KERAS_FILE
    # Keras insists on the .keras suffix for the file it writes.
    staging = stored.folder / f".{KERAS_FILE}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}.keras"
    try:
        model.save(staging)
        os.replace(staging, path)
    except OSError as error:
        raise ModelFolderError(f"{stored.folder}: cannot write {KERAS_FILE} ({error.strerror})") from None
    finally:
        staging.unlink(missing_ok=True)
    return path
