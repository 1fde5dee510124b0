"""The one home of the weight layout: the name and shape of every array a model holds.

The model folder's ``weights.npz`` holds these arrays under these names; the numpy forward pass reads
them, the numpy engine trains them, and the Keras engine exports its layers' weights into them:

    embedding                                       (vocab_size, embedding_dim)
    rnn{layer}.{forward|backward}.kernel            (inputs, gates * units)
    rnn{layer}.{forward|backward}.recurrent_kernel  (units, gates * units)
    rnn{layer}.{forward|backward}.bias              (gates * units,), or (2, gates * units) for GRU
    output.kernel                                   (last layer width, vocab_size)
    output.bias                                     (vocab_size,)

Gates come in Keras 3's order: LSTM input, forget, candidate, output; GRU update, reset, candidate
(reset_after, so a GRU's bias has an input row and a recurrent row).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngen.config import CellKind, ModelConfig

Weights = dict[str, np.ndarray]

EMBEDDING = "embedding"
OUTPUT_KERNEL = "output.kernel"
OUTPUT_BIAS = "output.bias"
GATES = {CellKind.simple: 1, CellKind.lstm: 4, CellKind.gru: 3}
DIRECTIONS = ("forward", "backward")


def recurrent_layer_name(layer: int) -> str:
    """The name of recurrent layer ``layer`` (from 0), in the Keras model and in the arrays' names."""
    return f"rnn{layer}"


def cell_weight_names(layer: int, direction: str = "forward") -> tuple[str, str, str]:
    """The names of one direction's kernel, recurrent kernel and bias in layer ``layer``."""
    prefix = f"{recurrent_layer_name(layer)}.{direction}"
    return f"{prefix}.kernel", f"{prefix}.recurrent_kernel", f"{prefix}.bias"


def model_directions(config: ModelConfig) -> tuple[str, ...]:
    return DIRECTIONS if config.bidirectional else DIRECTIONS[:1]


def expected_weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every array a model of this configuration needs, by name, with its shape, in a fixed order."""
    gates = GATES[config.cell] * config.units
    directions = model_directions(config)
    width = config.units * len(directions)
    shapes: dict[str, tuple[int, ...]] = {EMBEDDING: (config.vocab_size, config.embedding_dim)}
    for layer in range(config.layers):
        inputs = config.embedding_dim if layer == 0 else width
        for direction in directions:
            kernel, recurrent_kernel, bias = cell_weight_names(layer, direction)
            shapes[kernel] = (inputs, gates)
            shapes[recurrent_kernel] = (config.units, gates)
            shapes[bias] = (2, gates) if config.cell is CellKind.gru else (gates,)
    shapes[OUTPUT_KERNEL] = (width, config.vocab_size)
    shapes[OUTPUT_BIAS] = (config.vocab_size,)
    return shapes


def trainable_names(config: ModelConfig) -> list[str]:
    """The arrays training updates, in the order of ``expected_weight_shapes``: all of them, but a tied
    model's output kernel, which is the embedding's transpose."""
    return [name for name in expected_weight_shapes(config) if not (config.tie_embeddings and name == OUTPUT_KERNEL)]


def output_kernel(weights: Mapping[str, np.ndarray], config: ModelConfig) -> np.ndarray:
    """(width, vocab): the output layer's kernel, shared with the embedding when tied."""
    return weights[EMBEDDING].T if config.tie_embeddings else weights[OUTPUT_KERNEL]


def stored_weights(weights: Mapping[str, np.ndarray], config: ModelConfig) -> Weights:
    """The arrays the model folder stores: float32, contiguous, a tied output kernel spelled out (the
    forward pass needs no notion of tying)."""
    stored = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in weights.items()}
    if config.tie_embeddings:
        stored[OUTPUT_KERNEL] = np.ascontiguousarray(weights[EMBEDDING].T, dtype=np.float32)
    return {name: stored[name] for name in expected_weight_shapes(config)}
