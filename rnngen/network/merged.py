"""Networks of one shape merged into a single network whose logits are the mean of theirs.

Networks trained on the same text from different seeds make different errors, and one softmax of their
mean logits scores held-out text better than either alone (benchmarks/RESULTS.md). That mean is what an
ordinary network of the same kind computes when each layer holds the members' layers side by side:

- the embedding's columns are the members' embeddings, one block each;
- each recurrent layer's units come in member blocks, gate by gate, and a member's units read only its own
  block of the layer below and of their own previous state (block-diagonal kernels), so each block computes
  exactly what that member computes;
- the output kernel stacks the members' output kernels, each divided by the count, and the output bias is
  the mean of theirs.

The merged network is an untied network with the members' units and embedding width times their count,
stored, read and generated from as any other: nothing downstream needs to know it was merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from rnngen.config import ModelConfig
from rnngen.network.weights import (
    EMBEDDING,
    GATES,
    OUTPUT_BIAS,
    OUTPUT_KERNEL,
    Weights,
    cell_weight_names,
    expected_weight_shapes,
    model_directions,
    stored_weights,
)


def merged_config(config: ModelConfig, count: int) -> ModelConfig:
    """The shape of ``count`` networks of shape ``config`` merged (untied: the output kernel is no longer
    the embedding's transpose once divided by the count)."""
    return replace(config, embedding_dim=config.embedding_dim * count, units=config.units * count, tie_embeddings=False)


def member_columns(width: int, count: int, member: int, blocks: int) -> np.ndarray:
    """Where one member's ``blocks`` runs of ``width`` features sit among the merged features, whose
    blocks each hold the ``count`` members' runs one after another (gates, or a layer's directions)."""
    return np.concatenate([block * width * count + member * width + np.arange(width) for block in range(blocks)])


def merged_weights(config: ModelConfig, members: Sequence[Mapping[str, np.ndarray]]) -> tuple[ModelConfig, Weights]:
    """The configuration and weights of one network that computes the mean of the members' logits (the
    module's docstring); every member has shape ``config``."""
    if not members:
        raise ValueError("at least one network is needed")
    count = len(members)
    merged = merged_config(config, count)
    weights = {name: np.zeros(shape, dtype=np.float64) for name, shape in expected_weight_shapes(merged).items()}
    directions = len(model_directions(config))
    gates = GATES[config.cell]
    for member, member_weights in enumerate(members):
        arrays = stored_weights(member_weights, config)  # a tied output kernel spelled out
        # The features of the layer below as the merged network lays them out: the embedding's first.
        inputs = member_columns(config.embedding_dim, count, member, 1)
        weights[EMBEDDING][:, inputs] = arrays[EMBEDDING]
        units = member_columns(config.units, count, member, 1)
        gate_columns = member_columns(config.units, count, member, gates)
        for layer in range(config.layers):
            for direction in model_directions(config):
                kernel, recurrent_kernel, bias = cell_weight_names(layer, direction)
                weights[kernel][np.ix_(inputs, gate_columns)] = arrays[kernel]
                weights[recurrent_kernel][np.ix_(units, gate_columns)] = arrays[recurrent_kernel]
                weights[bias][..., gate_columns] = arrays[bias]
            # A layer's output is its directions' units one after another.
            inputs = member_columns(config.units, count, member, directions)
        weights[OUTPUT_KERNEL][inputs] = arrays[OUTPUT_KERNEL] / count
        weights[OUTPUT_BIAS] += arrays[OUTPUT_BIAS].astype(np.float64) / count
    return merged, {name: array.astype(np.float32) for name, array in weights.items()}
