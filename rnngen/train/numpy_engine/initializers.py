"""A new model's weights, drawn from the distributions Keras's initialisers use for the same layers."""

from __future__ import annotations

import math

import numpy as np

from rnngen.config import CellKind, ModelConfig
from rnngen.network import weights as layout


def _glorot_uniform(shape: tuple[int, ...], random: np.random.Generator) -> np.ndarray:
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return random.uniform(-limit, limit, shape).astype(np.float32)


def _orthogonal(shape: tuple[int, ...], random: np.random.Generator) -> np.ndarray:
    rows, columns = shape
    q, r = np.linalg.qr(random.normal(size=(max(rows, columns), min(rows, columns))))
    q *= np.sign(np.diag(r))
    return (q if rows >= columns else q.T).astype(np.float32)


def initial_weights(config: ModelConfig, seed: int, output_bias: np.ndarray) -> layout.Weights:
    """Embedding uniform in ±0.05, kernels Glorot-uniform, recurrent kernels orthogonal, recurrent
    biases zero (an LSTM's forget gate 1), as Keras initialises the same layers, and the output bias
    given; drawn in the layout's order, so the same seed gives the same weights. A tied model gets no
    output kernel of its own."""
    random = np.random.default_rng([seed, 0])
    recurrent_kernels = {layout.cell_weight_names(layer)[1] for layer in range(config.layers)}
    biases = {layout.cell_weight_names(layer)[2] for layer in range(config.layers)}
    weights: layout.Weights = {}
    for name, shape in layout.expected_weight_shapes(config).items():
        if name == layout.EMBEDDING:
            weights[name] = random.uniform(-0.05, 0.05, shape).astype(np.float32)
        elif name in recurrent_kernels:
            weights[name] = _orthogonal(shape, random)
        elif name == layout.OUTPUT_BIAS:
            weights[name] = np.array(output_bias, np.float32).reshape(shape)
        elif name in biases:
            weights[name] = np.zeros(shape, np.float32)
            if config.cell is CellKind.lstm:
                weights[name][config.units : 2 * config.units] = 1.0  # the forget gate
        elif name == layout.OUTPUT_KERNEL and config.tie_embeddings:
            continue  # the embedding's transpose
        else:
            weights[name] = _glorot_uniform(shape, random)  # the layers' kernels and the output kernel
    return weights
