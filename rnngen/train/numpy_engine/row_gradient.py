"""A gradient that is zero outside a few rows of its array, and the updates that touch those rows alone.

Under a sampled softmax (sampled_softmax.py) a batch's gradient for a tied embedding is zero outside the
rows of the words it reads and of its candidates: a few thousand rows of tens of thousands. Stepping
and averaging the whole matrix anyway was a third of a step on 100,000 NSMC reviews in morpheme pieces
(48,853 rows of 256): Adam's moments and the moving average each pass over all of it. Kept as the rows
and their values, the gradient costs what the batch touched.

Adam then updates the rows a gradient has (TensorFlow Addons' LazyAdam): a row without a gradient keeps
its moments and its weights, where the dense update would go on moving it on momentum. The moving
average of a row the optimizer does not move needs no work either: every step it moves a (1 - decay)
share of the way towards the same weights, so it is brought up to date in one go when next read
(``catch_up``), from the step it was last brought to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowGradient:
    """The gradient of an array that is zero outside ``rows`` (sorted, distinct), whose rows hold ``values``."""

    rows: np.ndarray  # (rows,) int64
    values: np.ndarray  # (rows, ...) float32

    def dense(self, shape: tuple[int, ...]) -> np.ndarray:
        """The whole gradient, zeros outside the rows."""
        whole = np.zeros(shape, dtype=self.values.dtype)
        whole[self.rows] = self.values
        return whole


# One training step's gradients by weight name: whole arrays, or RowGradients.
Gradients = dict[str, np.ndarray | RowGradient]


def catch_up(
    average: np.ndarray, weights: np.ndarray, average_steps: np.ndarray, rows: np.ndarray, step: int, decay: float
) -> None:
    """Bring ``average``'s ``rows`` (a moving average of ``weights`` with this decay) from the steps
    ``average_steps`` records for them to ``step``, in place, assuming their weights did not move in
    between: average = weights + (average - weights) decay^(steps missed). Rows already at ``step``
    are left exactly as they are."""
    missed = step - average_steps[rows]
    behind = rows[missed > 0]
    if behind.size == 0:
        return
    factors = np.power(decay, missed[missed > 0].astype(np.float64)).astype(np.float32)
    current = weights[behind]
    average[behind] = current + (average[behind] - current) * factors.reshape(-1, *([1] * (average.ndim - 1)))
    average_steps[behind] = step
