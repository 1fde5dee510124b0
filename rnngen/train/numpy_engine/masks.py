"""The random masks of one training batch: dropout, locked dropout, embedding dropout and weight drop.

Every mask is inverted, as Keras's Dropout is in training: a kept value is scaled by 1 / (1 - rate),
so a layer's expected input is its input without the mask, and validation, which draws none, needs
no rescaling. The masks are drawn in one fixed order from the batch's generator, and only for the
regularisers that are on, so a run with the plain ``dropout`` alone draws exactly what it drew before
the others existed (its checkpoints' generator states stay valid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.config import ModelConfig
from rnngen.network.weights import GATES


@dataclass(frozen=True)
class BatchMasks:
    """The scaled keep-masks of one batch; None where a regulariser is off."""

    # (vocab,): each word's embedding row kept (scaled) or dropped for the whole batch (dropoute).
    embedding_rows: np.ndarray | None
    # Per recurrent layer, on what it reads: (time, batch, width) with the plain dropout, else the
    # locked mask (1, batch, width), shared by every time step of a row (dropouti, dropouth).
    layer_inputs: list[np.ndarray | None]
    # Per recurrent layer, on its recurrent kernel (units, gates x units): DropConnect (wdrop).
    recurrent_kernels: list[np.ndarray | None]
    # On the last layer's outputs, shaped as layer_inputs' masks (dropout, AWD-LSTM's output dropout).
    top: np.ndarray | None


def keep_mask(random: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray | None:
    """Ones where a value is kept, scaled by 1 / (1 - rate), zeros where it is dropped; None at rate 0."""
    if rate <= 0.0:
        return None
    keep = (random.random(shape, dtype=np.float32) >= rate).astype(np.float32)
    keep *= 1.0 / (1.0 - rate)
    return keep


def _combined(element: np.ndarray | None, locked: np.ndarray | None) -> np.ndarray | None:
    """Both masks as one (the plain dropout's per value, times the locked one's per row)."""
    if element is None or locked is None:
        return element if locked is None else locked
    return element * locked


def draw_masks(config: ModelConfig, time: int, batch: int, random: np.random.Generator | None) -> BatchMasks:
    """The masks of a (batch, time) batch; no masks at all without a generator (validation)."""
    layers = config.layers
    if random is None:
        return BatchMasks(None, [None] * layers, [None] * layers, None)
    embedding_rows = keep_mask(random, (config.vocab_size,), config.dropout_embedding)
    layer_inputs: list[np.ndarray | None] = []
    recurrent_kernels: list[np.ndarray | None] = []
    for layer in range(layers):
        width = config.embedding_dim if layer == 0 else config.units
        recurrent_shape = (config.units, GATES[config.cell] * config.units)
        recurrent_kernels.append(keep_mask(random, recurrent_shape, config.weight_drop))
        element = keep_mask(random, (time, batch, width), config.dropout)
        locked_rate = config.dropout_input if layer == 0 else config.dropout_hidden
        layer_inputs.append(_combined(element, keep_mask(random, (1, batch, width), locked_rate)))
    element = keep_mask(random, (time, batch, config.units), config.dropout)
    top = _combined(element, keep_mask(random, (1, batch, config.units), config.dropout_output))
    return BatchMasks(embedding_rows, layer_inputs, recurrent_kernels, top)
