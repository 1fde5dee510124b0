"""Choosing the next word from the model's distribution: argmax, temperature, top-k, top-p."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rnngen.config import GenerationConfig
from rnngen.data.vocab import PADDING_ID
from rnngen.network.forward import softmax_in_place


def allowed_probabilities(probabilities: np.ndarray, banned_ids: Iterable[int] = ()) -> np.ndarray:
    """The distribution (..., vocab) with padding and any banned ids set to zero: they are never emitted."""
    allowed = probabilities.copy()
    allowed[..., PADDING_ID] = 0.0
    for banned in banned_ids:
        allowed[..., banned] = 0.0
    return allowed


def choose_argmax_rows(scores: np.ndarray, banned_ids: Iterable[int] = (), overwrite: bool = False) -> np.ndarray:
    """The best allowed id of each row of scores (batch, vocab): probabilities or logits alike.

    With ``overwrite`` the banned columns of ``scores`` itself are overwritten, sparing a copy.
    """
    allowed = scores if overwrite else scores.copy()
    allowed[:, PADDING_ID] = -np.inf
    for banned in banned_ids:
        allowed[:, banned] = -np.inf
    return np.argmax(allowed, axis=1)


def shape_distribution(allowed: np.ndarray, settings: GenerationConfig) -> np.ndarray:
    """Apply temperature, top-k and top-p to allowed probabilities (batch, vocab); rows sum to 1."""
    shaped = allowed.astype(np.float64)
    if settings.temperature:
        # p ** (1 / T), through logarithms so that small probabilities do not underflow first.
        with np.errstate(divide="ignore"):
            shaped = softmax_in_place(np.log(shaped) / settings.temperature)
    if settings.top_k is not None and settings.top_k < shaped.shape[1]:
        # Everything below the k-th largest value of its row goes.
        threshold = -np.partition(-shaped, settings.top_k - 1, axis=1)[:, settings.top_k - 1 : settings.top_k]
        shaped = np.where(shaped >= threshold, shaped, 0.0)
    shaped = shaped / shaped.sum(axis=1, keepdims=True)
    if settings.top_p is not None and settings.top_p < 1.0:
        order = np.argsort(-shaped, axis=1, kind="stable")
        sorted_probabilities = np.take_along_axis(shaped, order, axis=1)
        # Keep the most likely words until their total reaches top_p (the one crossing it included).
        before = np.cumsum(sorted_probabilities, axis=1) - sorted_probabilities
        keep_sorted = before < settings.top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        shaped = np.where(keep, shaped, 0.0)
        shaped = shaped / shaped.sum(axis=1, keepdims=True)
    return shaped


def choose(
    probabilities: np.ndarray,
    settings: GenerationConfig,
    generators: Sequence[np.random.Generator],
    banned_ids: Iterable[int] = (),
) -> np.ndarray:
    """One id per row of probabilities (batch, vocab): the most likely, or a draw from the shaped
    distribution with each row's own random generator (so a row's text never depends on its batch)."""
    if not settings.samples:
        return choose_argmax_rows(probabilities, banned_ids)
    allowed = allowed_probabilities(probabilities, banned_ids)
    shaped = shape_distribution(allowed, settings)
    cumulative = np.cumsum(shaped, axis=1)
    draws = np.array([generator.random() for generator in generators]) * cumulative[:, -1]
    chosen = np.array([np.searchsorted(row, draw, side="right") for row, draw in zip(cumulative, draws, strict=True)])
    return np.minimum(chosen, shaped.shape[1] - 1)
