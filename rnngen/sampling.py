"""Choosing the next word from the model's distribution."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rnngen.vocab import PADDING_ID


def allowed_probabilities(probabilities: np.ndarray, banned_ids: Iterable[int] = ()) -> np.ndarray:
    """The distribution with padding (and any banned ids) removed: they are never emitted."""
    allowed = probabilities.astype(np.float64, copy=True)
    allowed[PADDING_ID] = 0.0
    for banned in banned_ids:
        allowed[banned] = 0.0
    return allowed


def choose_argmax(probabilities: np.ndarray, banned_ids: Iterable[int] = ()) -> int:
    """The most likely allowed id, never padding (ties go to the lower id, as numpy's argmax)."""
    return int(np.argmax(allowed_probabilities(probabilities, banned_ids)))
