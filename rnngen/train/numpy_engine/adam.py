"""Keras 3's Adam in numpy, with the gradients clipped to a global norm first."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from rnngen.network.weights import Weights
from rnngen.train.numpy_engine.row_gradient import RowGradient

# Keras 3's defaults for Adam.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7


class Adam:
    """Keras 3's Adam (epsilon 1e-7) with the gradients clipped to a global norm first."""

    def __init__(self, weights: Mapping[str, np.ndarray], learning_rate: float, clip_norm: float | None) -> None:
        self.learning_rate = learning_rate
        self.clip_norm = clip_norm
        self.iterations = 0
        self.first_moments = {name: np.zeros_like(array) for name, array in weights.items()}
        self.second_moments = {name: np.zeros_like(array) for name, array in weights.items()}
        self._scratch: dict[str, np.ndarray] = {}

    def apply(
        self, weights: Weights, gradients: Mapping[str, np.ndarray | RowGradient], rate_factor: float = 1.0
    ) -> None:
        """Update ``weights`` in place, at ``rate_factor`` times the learning rate (a schedule's warm-up
        or decay within an epoch; the rate kept for checkpoints stays the epoch's). A RowGradient
        updates its rows alone, moments included (row_gradient.py)."""
        scale = 1.0
        if self.clip_norm is not None:
            arrays = (
                gradient.values if isinstance(gradient, RowGradient) else gradient for gradient in gradients.values()
            )
            norm = math.sqrt(sum(float(np.vdot(array, array)) for array in arrays))
            scale = self.clip_norm / max(norm, self.clip_norm)
        self.iterations += 1
        learning_rate = self.learning_rate if rate_factor == 1.0 else self.learning_rate * rate_factor
        step_size = learning_rate * math.sqrt(1.0 - BETA_2**self.iterations) / (1.0 - BETA_1**self.iterations)
        for name, weight in weights.items():
            gradient = gradients[name]
            if isinstance(gradient, RowGradient):
                self._apply_rows(name, weight, gradient, np.float32(scale), np.float32(step_size))
                continue
            if scale != 1.0:
                gradient = gradient * np.float32(scale)
            first, second = self.first_moments[name], self.second_moments[name]
            # One scratch array per weight holds each intermediate in turn: with a vocabulary of tens of
            # thousands of words the embedding alone is millions of values, and fresh temporaries for each
            # of the steps below cost more than the arithmetic. The operations and their order are those of
            # m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= step m / (sqrt(v) + eps).
            scratch = self._scratch.get(name)
            if scratch is None or scratch.shape != weight.shape:
                scratch = self._scratch[name] = np.empty_like(weight)
            np.subtract(gradient, first, out=scratch)
            scratch *= np.float32(1.0 - BETA_1)
            first += scratch
            np.square(gradient, out=scratch)
            scratch -= second
            scratch *= np.float32(1.0 - BETA_2)
            second += scratch
            np.sqrt(second, out=scratch)
            scratch += np.float32(EPSILON)
            np.divide(first, scratch, out=scratch)
            scratch *= np.float32(step_size)
            weight -= scratch

    def _apply_rows(
        self, name: str, weight: np.ndarray, gradient: RowGradient, scale: np.float32, step_size: np.float32
    ) -> None:
        """The update above on the gradient's rows alone; the other rows keep their moments and weights."""
        rows, values = gradient.rows, gradient.values
        if scale != 1.0:
            values = values * scale
        first, second = self.first_moments[name][rows], self.second_moments[name][rows]
        first += (values - first) * np.float32(1.0 - BETA_1)
        second += (np.square(values) - second) * np.float32(1.0 - BETA_2)
        self.first_moments[name][rows] = first
        self.second_moments[name][rows] = second
        weight[rows] -= first / (np.sqrt(second) + np.float32(EPSILON)) * step_size

    def state(self, names: list[str]) -> list[np.ndarray]:
        return [
            np.array(self.iterations, np.int64),
            np.array(self.learning_rate, np.float64),
            *(self.first_moments[name] for name in names),
            *(self.second_moments[name] for name in names),
        ]

    def restore(self, names: list[str], arrays: list[np.ndarray]) -> None:
        self.iterations = int(arrays[0])
        self.learning_rate = float(arrays[1])
        for index, name in enumerate(names):
            self.first_moments[name] = arrays[2 + index].astype(np.float32)
            self.second_moments[name] = arrays[2 + len(names) + index].astype(np.float32)
