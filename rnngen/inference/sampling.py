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


# Chosen for a row where nothing is left to choose: every word is banned, has probability 0 or a
# logit of -inf (the repeat rules can rule out every word a small vocabulary has).
NO_WORD = -1


def choose_argmax_rows(
    scores: np.ndarray, banned_ids: Iterable[int] = (), overwrite: bool = False, ruled_out: float = -np.inf
) -> np.ndarray:
    """The best allowed id of each row of scores (batch, vocab): logits, or probabilities with
    ``ruled_out`` 0; NO_WORD where the best is no more than ``ruled_out``.

    With ``overwrite`` the banned columns of ``scores`` itself are overwritten, sparing a copy.
    """
    allowed = scores if overwrite else scores.copy()
    allowed[:, PADDING_ID] = -np.inf
    for banned in banned_ids:
        allowed[:, banned] = -np.inf
    chosen = np.argmax(allowed, axis=1)
    best = allowed[np.arange(len(allowed)), chosen]
    chosen[best <= ruled_out] = NO_WORD
    return chosen


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
        shaped = np.where(nucleus(shaped, settings.top_p), shaped, 0.0)
        shaped = shaped / shaped.sum(axis=1, keepdims=True)
    return shaped


# Top-p sorts no row: it bins each row's probabilities by value, 64 bins to each power of two (the
# exponent and first 6 mantissa bits of a float64), down to 2 ** -64; smaller values and zeros share
# the bottom bin.
MANTISSA_BITS_KEPT = 6
SMALLEST_EXPONENT = -64
_DROPPED_BITS = 52 - MANTISSA_BITS_KEPT
_BOTTOM_KEY = (1023 + SMALLEST_EXPONENT) << MANTISSA_BITS_KEPT  # the bit pattern of 2 ** -64, shifted
VALUE_BINS = (-SMALLEST_EXPONENT << MANTISSA_BITS_KEPT) + 1  # up to 1.0 itself
# Sums in another order than a sorted row's differ from it by less than 1e-12; a row whose totals come
# closer than this to top_p is sorted whole instead, so the words kept are always a full sort's.
CLOSE_TO_TOP_P = 1e-9


def nucleus(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """Which words of each row (batch, vocab) top-p keeps: the most likely ones, in the order of a
    stable sort (ties by id), while the total before them is below ``top_p`` (so the word that
    crosses it is kept too).

    Sorting a whole 10,000-word row at every step costs several times the step itself. Instead each
    row's probabilities are binned by value (``VALUE_BINS``); the bins' totals, from the top, show
    the bin where the total reaches ``top_p``: every word above it is kept, every word below it is
    not, and only the few words in that bin are sorted.
    """
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float64)
    rows, vocabulary = probabilities.shape
    # A positive float64's bits, read as an integer, grow with its value: the top bits are its bin.
    bins = np.maximum((probabilities.view(np.int64) >> _DROPPED_BITS) - _BOTTOM_KEY, 0)  # (rows, vocab)
    row_offsets = (np.arange(rows) * VALUE_BINS)[:, None]
    mass = np.bincount((bins + row_offsets).ravel(), weights=probabilities.ravel(), minlength=rows * VALUE_BINS)
    at_or_above = np.cumsum(mass.reshape(rows, VALUE_BINS)[:, ::-1], axis=1)[:, ::-1]  # (rows, bins)
    # The highest bin whose words and those above reach top_p, the mass above it and through it.
    boundary = (at_or_above >= top_p).sum(axis=1) - 1
    every_row = np.arange(rows)
    above = np.where(boundary + 1 < VALUE_BINS, at_or_above[every_row, np.minimum(boundary + 1, VALUE_BINS - 1)], 0.0)
    through = at_or_above[every_row, np.maximum(boundary, 0)]
    doubtful = (boundary <= 0) | (top_p - above <= CLOSE_TO_TOP_P) | (through - top_p <= CLOSE_TO_TOP_P)
    keep = bins > boundary[:, None]
    # The boundary bin's words, sorted as a full sort would order them (by row, value down, id up).
    in_rows, ids = np.nonzero((bins == boundary[:, None]) & ~doubtful[:, None])
    values = probabilities[in_rows, ids]
    order = np.lexsort((ids, -values, in_rows))
    in_rows, ids, values = in_rows[order], ids[order], values[order]
    running = np.cumsum(values)
    firsts = np.searchsorted(in_rows, in_rows)  # where each word's row starts
    before = above[in_rows] + (running - values) - (running[firsts] - values[firsts])
    doubtful[in_rows[np.abs(before - top_p) <= CLOSE_TO_TOP_P]] = True
    kept = (before < top_p) & ~doubtful[in_rows]
    keep[in_rows[kept], ids[kept]] = True
    if doubtful.any():
        pending = np.flatnonzero(doubtful)
        keep[pending] = _nucleus_by_full_sort(probabilities[pending], top_p)
    return keep


def _nucleus_by_full_sort(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """``nucleus`` the plain way: every row sorted whole."""
    order = np.argsort(-probabilities, axis=1, kind="stable")
    sorted_probabilities = np.take_along_axis(probabilities, order, axis=1)
    before = np.cumsum(sorted_probabilities, axis=1) - sorted_probabilities
    keep = np.zeros(probabilities.shape, dtype=bool)
    np.put_along_axis(keep, order, before < top_p, axis=1)
    return keep


def choose(
    probabilities: np.ndarray,
    settings: GenerationConfig,
    generators: Sequence[np.random.Generator],
    banned_ids: Iterable[int] = (),
) -> np.ndarray:
    """One id per row of probabilities (batch, vocab): the most likely, or a draw from the shaped
    distribution with each row's own random generator (so a row's text never depends on its batch);
    NO_WORD for a row whose allowed words all have probability 0."""
    if not settings.samples:
        return choose_argmax_rows(probabilities, banned_ids, ruled_out=0.0)
    allowed = allowed_probabilities(probabilities, banned_ids)
    empty = ~(allowed.max(axis=1) > 0)
    # A stand-in for such rows keeps the shaping finite; they still draw, so each row's generator
    # advances by one draw per step whatever happens to the others.
    allowed[empty, PADDING_ID] = 1.0
    shaped = shape_distribution(allowed, settings)
    cumulative = np.cumsum(shaped, axis=1)
    draws = np.array([generator.random() for generator in generators]) * cumulative[:, -1]
    chosen = np.array([np.searchsorted(row, draw, side="right") for row, draw in zip(cumulative, draws, strict=True)])
    chosen = np.minimum(chosen, shaped.shape[1] - 1)
    chosen[empty] = NO_WORD
    return chosen
