"""Networks merged into one (rnngen.network.merged): the merged network's logits are the mean of the members'."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnngen.config import CellKind, ModelConfig
from rnngen.network.forward import NumpyLanguageModel
from rnngen.network.merged import merged_weights
from rnngen.network.weights import stored_weights
from tests.conftest import random_weights, small_config

CONTEXTS = [[3, 1, 4], [5], [2, 6, 5, 3, 5], [0, 0, 7, 1]]


def _logits(config: ModelConfig, weights: dict[str, np.ndarray]) -> np.ndarray:
    model = NumpyLanguageModel(config, stored_weights(weights, config))
    return model.output_logits(model.top_outputs(CONTEXTS)).astype(np.float64)


@pytest.mark.parametrize("cell", list(CellKind))
@pytest.mark.parametrize(("layers", "bidirectional", "tied"), [(1, False, False), (2, False, True), (2, True, False)])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_merged_logits_are_the_members_mean(
    cell: CellKind, layers: int, bidirectional: bool, tied: bool, count: int
) -> None:
    config = dataclasses.replace(
        small_config(9, cell, layers, embedding_dim=5, units=5), bidirectional=bidirectional, tie_embeddings=tied
    )
    members = [random_weights(config, seed, scale=0.5) for seed in range(count)]
    merged, weights = merged_weights(config, members)
    assert (merged.units, merged.embedding_dim, merged.tie_embeddings) == (5 * count, 5 * count, False)
    mean = np.mean([_logits(config, member) for member in members], axis=0)
    np.testing.assert_allclose(_logits(merged, weights), mean, rtol=1e-5, atol=1e-5)


def test_one_member_is_the_network_itself() -> None:
    config = small_config(9)
    member = random_weights(config, 0)
    merged, weights = merged_weights(config, [member])
    assert merged == config
    for name, array in stored_weights(member, config).items():
        np.testing.assert_array_equal(weights[name], array)


def test_no_member_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merged_weights(small_config(9), [])
