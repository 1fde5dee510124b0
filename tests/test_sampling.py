"""Choosing words: argmax, temperature, top-k, top-p, per-row random generators."""

from __future__ import annotations

import numpy as np
import pytest

from rnngen.config import GenerationConfig
from rnngen.inference import sampling
from rnngen.inference.sampling import allowed_probabilities, choose, nucleus, shape_distribution

# ids: 0 padding, then four words
PROBABILITIES = np.array([[0.30, 0.10, 0.35, 0.05, 0.20]])


def test_argmax_never_picks_padding_or_banned_ids() -> None:
    generators = [np.random.default_rng(0)]
    assert choose(PROBABILITIES, GenerationConfig(), generators).tolist() == [2]
    assert choose(PROBABILITIES, GenerationConfig(), generators, banned_ids=[2]).tolist() == [4]
    assert allowed_probabilities(PROBABILITIES)[0, 0] == 0.0


def test_top_k_keeps_the_k_most_likely() -> None:
    shaped = shape_distribution(allowed_probabilities(PROBABILITIES), GenerationConfig(top_k=2))
    np.testing.assert_allclose(shaped, [[0, 0, 0.35 / 0.55, 0, 0.20 / 0.55]])


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    allowed = allowed_probabilities(PROBABILITIES)  # words: 0.10, 0.35, 0.05, 0.20 of 0.70
    shaped = shape_distribution(allowed, GenerationConfig(top_p=0.6))
    # 0.35/0.7 = 0.5 < 0.6, so the next word (0.2/0.7) is needed too, and nothing after it.
    np.testing.assert_allclose(shaped, [[0, 0, 0.35 / 0.55, 0, 0.20 / 0.55]])
    np.testing.assert_allclose(shape_distribution(allowed, GenerationConfig(top_p=0.4)), [[0, 0, 1, 0, 0]])


def test_temperature_sharpens_and_flattens() -> None:
    allowed = allowed_probabilities(PROBABILITIES)
    cold = shape_distribution(allowed, GenerationConfig(temperature=0.5))
    hot = shape_distribution(allowed, GenerationConfig(temperature=2.0))
    expected_cold = np.array([0, 0.01, 0.1225, 0.0025, 0.04]) / 0.175
    np.testing.assert_allclose(cold[0], expected_cold, rtol=1e-9)
    assert hot[0, 2] < allowed[0, 2] / allowed.sum() < cold[0, 2]
    assert hot[0, 0] == cold[0, 0] == 0.0


def test_sampling_follows_the_distribution_and_the_seed() -> None:
    settings = GenerationConfig(temperature=1.0)
    draws = [int(choose(PROBABILITIES, settings, [np.random.default_rng([7, i])])[0]) for i in range(4000)]
    counts = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(counts, [0, 1 / 7, 0.5, 1 / 14, 2 / 7], atol=0.03)
    first = [choose(PROBABILITIES, settings, [np.random.default_rng([1, 0])])[0] for _ in range(3)]
    assert len(set(first)) == 1


@pytest.mark.parametrize(
    "arguments",
    [{"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"beam": 0}, {"beam": 2, "top_k": 3}],
)
def test_impossible_settings_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GenerationConfig(**arguments)  # type: ignore[arg-type]


def nucleus_by_full_sort(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """Top-p's words the plain way: every row sorted whole (stable, so ties go by id)."""
    order = np.argsort(-probabilities, axis=1, kind="stable")
    sorted_probabilities = np.take_along_axis(probabilities, order, axis=1)
    before = np.cumsum(sorted_probabilities, axis=1) - sorted_probabilities
    keep = np.zeros(probabilities.shape, dtype=bool)
    np.put_along_axis(keep, order, before < top_p, axis=1)
    return keep


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.75, 0.9, 0.99, 0.999999])
def test_top_p_keeps_the_words_a_full_sort_keeps(top_p: float) -> None:
    rng = np.random.default_rng(3)
    vocabulary = 5_000
    peaked = rng.dirichlet(np.full(vocabulary, 0.02), size=40)  # a few dozen words hold most of it
    flat = rng.dirichlet(np.full(vocabulary, 5.0), size=40)  # the nucleus runs into the thousands
    # Ties where a partial sort could cut among them: a few values shared by many words.
    tied = rng.choice([1.0, 2.0, 3.0], size=(40, vocabulary)) * (rng.random((40, vocabulary)) < 0.05)
    tied[:, 0] += 1.0
    after_top_k = shape_distribution(allowed_probabilities(peaked), GenerationConfig(top_k=40))
    # Totals that meet top_p exactly (0.5, 0.75): the sums' order decides, so these rows are sorted whole.
    exact = np.tile([0.5, 0.25, 0.125, 0.0625, 0.0625], (3, 1))
    for rows in (peaked, flat, tied / tied.sum(axis=1, keepdims=True), after_top_k, peaked[:, :30] / 2, exact):
        np.testing.assert_array_equal(nucleus(rows, top_p), nucleus_by_full_sort(rows, top_p))


def test_top_p_sorts_a_row_whole_only_when_its_totals_meet_top_p(monkeypatch: pytest.MonkeyPatch) -> None:
    sorted_whole: list[int] = []
    full_sort = sampling._nucleus_by_full_sort

    def counting(probabilities: np.ndarray, top_p: float) -> np.ndarray:
        sorted_whole.append(len(probabilities))
        return full_sort(probabilities, top_p)

    monkeypatch.setattr(sampling, "_nucleus_by_full_sort", counting)
    rows = np.random.default_rng(4).dirichlet(np.full(2_000, 0.1), size=30)
    nucleus(rows, 0.9)
    assert sorted_whole == []
    nucleus(np.array([[0.5, 0.25, 0.25], [0.6, 0.3, 0.1]]), 0.75)
    assert sorted_whole == [1]
