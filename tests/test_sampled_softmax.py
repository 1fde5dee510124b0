"""The sampled softmax (--sampled-softmax N) of the numpy engine: its candidates and their chances, its
loss and gradients against a softmax written out by hand and against finite differences, the full
softmax it becomes when every word is a candidate, and runs that train, resume exactly and refuse Keras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, EngineKind, ExecutionConfig, ModelConfig, TrainingConfig
from rnngen.data import batches
from rnngen.network.weights import trainable_names
from rnngen.train import TrainingRequest
from rnngen.train.numpy_engine import backprop
from rnngen.train.numpy_engine.row_gradient import Gradients, RowGradient
from rnngen.train.numpy_engine.sampled_softmax import Candidates, CandidateSampler
from rnngen.train.setup import prepare_run

from .conftest import rnngen
from .test_numpy_engine import numeric_gradients, tiny_batch, tiny_config, tiny_weights
from .test_regularisers import assert_resumes_exactly, saved_weights

COUNTS = np.array([0, 50, 20, 10, 5, 3, 1], dtype=np.int64)  # id 0 is padding: never a target


def test_the_candidates_are_the_draws_and_the_targets_with_their_chances() -> None:
    sampler = CandidateSampler.from_counts(COUNTS, draws=3)
    shares = (COUNTS + 1.0) ** 0.75
    shares[0] = 0.0
    shares /= shares.sum()
    np.testing.assert_allclose(np.exp(sampler.log_inclusion[1:]), 1 - (1 - shares[1:]) ** 3, rtol=1e-6)
    assert sampler.log_inclusion[0] == -np.inf  # padding is never drawn

    random = np.random.default_rng(4)
    candidates = sampler.candidates(np.array([6, 6, 2]), random)
    replay = np.random.default_rng(4)
    drawn = np.searchsorted(sampler.cumulative, replay.random(3), side="right")
    assert candidates.ids.tolist() == sorted({*drawn.tolist(), 6, 2})
    for position, word in enumerate(candidates.ids):
        expected = 0.0 if word in (6, 2) else sampler.log_inclusion[word]
        assert candidates.log_inclusion[position] == pytest.approx(expected)
    assert candidates.positions(np.array([2, 6])).tolist() == [candidates.ids.tolist().index(w) for w in (2, 6)]


def test_draws_follow_the_smoothed_frequencies() -> None:
    sampler = CandidateSampler.from_counts(COUNTS, draws=1)
    random = np.random.default_rng(0)
    seen = np.bincount(np.searchsorted(sampler.cumulative, random.random(200_000), side="right"), minlength=len(COUNTS))
    shares = (COUNTS + 1.0) ** 0.75
    shares[0] = 0.0
    np.testing.assert_allclose(seen / seen.sum(), shares / shares.sum(), atol=0.005)


def sampled_loss_by_hand(
    weights: dict[str, np.ndarray], config: ModelConfig, inputs: np.ndarray, targets: np.ndarray, candidates: Candidates
) -> float:
    """The mean over real targets of -log of the target's share of the candidates' corrected exponentials,
    from the full softmax's logits (backprop's own forward gives those)."""
    masks = backprop.draw_masks(config, inputs.shape[1], inputs.shape[0], None)
    _, top = backprop._forward(weights, config, inputs, masks)
    real = targets.T.ravel() != 0
    top_real = top.reshape(-1, top.shape[-1])[real]
    kernel = weights["embedding"].T if config.tie_embeddings else weights["output.kernel"]
    logits = top_real @ kernel + weights["output.bias"]
    corrected = logits[:, candidates.ids] - candidates.log_inclusion
    chosen = corrected[np.arange(len(top_real)), candidates.positions(targets.T.ravel()[real])]
    log_sum = np.log(np.exp(corrected).sum(axis=1))
    return float(np.mean(log_sum - chosen))


@pytest.mark.parametrize("tie", [False, True])
def test_the_gradients_of_the_sampled_loss_match_finite_differences(tie: bool) -> None:
    config = tiny_config("lstm", layers=1, tie=tie, vocab=12)
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)
    counts = np.arange(config.vocab_size) * 3
    real_targets = targets[targets != 0]
    candidates = CandidateSampler.from_counts(counts, draws=3).candidates(real_targets, np.random.default_rng(3))
    assert candidates.ids.size < config.vocab_size - 1  # some words are left out
    assert (candidates.log_inclusion < 0).any()  # and some candidates are corrected

    score, row_gradients = backprop.loss_and_gradients(weights, config, inputs, targets, None, candidates)
    assert score.cross_entropy / score.targets == pytest.approx(
        sampled_loss_by_hand(weights, config, inputs, targets, candidates), rel=1e-9
    )
    # The embedding's gradient comes as the rows of the words read and, tied, of the candidates.
    embedding = row_gradients["embedding"]
    assert isinstance(embedding, RowGradient)
    expected_rows = np.union1d(inputs, candidates.ids) if tie else np.unique(inputs)
    assert embedding.rows.tolist() == expected_rows.tolist()
    gradients = whole(row_gradients, weights)
    numeric = numeric_gradients(weights, config, inputs, targets, None, candidates)
    for name in trainable_names(config):
        np.testing.assert_allclose(gradients[name], numeric[name], atol=1e-7, rtol=1e-5, err_msg=name)
    # Words that were not candidates get no gradient from the output layer.
    left_out = np.setdiff1d(np.arange(config.vocab_size), candidates.ids)
    assert not gradients["output.bias"][left_out].any()
    if not tie:
        assert not gradients["output.kernel"][:, left_out].any()


def whole(gradients: Gradients, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The gradients as whole arrays, RowGradients spread over zeros."""
    return {
        name: gradient.dense(weights[name].shape) if isinstance(gradient, RowGradient) else gradient
        for name, gradient in gradients.items()
    }


def test_with_every_word_a_sure_candidate_it_is_the_full_softmax() -> None:
    config = tiny_config("gru", layers=2, tie=True, dropout=0.3, vocab=9)
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)
    everything = Candidates(np.arange(config.vocab_size), np.zeros(config.vocab_size, dtype=np.float32))
    full_score, full = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5))
    score, row_sampled = backprop.loss_and_gradients(
        weights, config, inputs, targets, np.random.default_rng(5), everything
    )
    sampled = whole(row_sampled, weights)
    assert score == full_score
    for name in full:
        np.testing.assert_allclose(sampled[name], full[name], rtol=1e-12, atol=1e-15, err_msg=name)


OPTIONS = ["--embedding-dim", "8", "--units", "8", "--batch-size", "16", "--epochs", "3", "--quiet"]


def test_a_run_with_a_sampled_softmax_trains_resumes_exactly_and_saves_a_full_model(tmp_path: Path) -> None:
    assert_resumes_exactly(tmp_path, 300, [*OPTIONS, "--sampled-softmax", "4"], max_steps=7)
    expected = saved_weights(tmp_path / "straight")
    full = rnngen("train", "corpus.txt", "-o", "full", *OPTIONS, cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert not np.array_equal(saved_weights(tmp_path / "full")["output.bias"], expected["output.bias"])
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["training"]["sampled_softmax"] == 4
    # Validation scores every word: its loss is the full softmax's, which evaluate reproduces.
    info = json.loads(rnngen("info", "-m", "straight", "--json", cwd=tmp_path).stdout)
    assert info["training"]["sampled_softmax"] == 4
    generated = rnngen("generate", "the cat", "-m", "straight", "-n", "3", cwd=tmp_path)
    assert generated.returncode == 0 and generated.stdout.startswith("the cat ")


def test_sampled_batches_may_hold_more_positions_than_full_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's positions are capped so that its logits stay bounded: by the vocabulary for the full
    softmax (validation), by the words a sampled step scores for training with --sampled-softmax."""
    monkeypatch.setattr(batches, "MAX_LOGITS_PER_BATCH", 4_000)
    words = [f"w{index}" for index in range(150)]
    lines = [" ".join(words[(line * 7 + step) % 150] for step in range(12)) for line in range(400)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def plans(draws: int) -> tuple[int, int]:
        request = TrainingRequest(
            corpus=tmp_path / "corpus.txt",
            destination=tmp_path / "model",
            architecture=ArchitectureConfig(embedding_dim=8, units=8),
            training=TrainingConfig(sampled_softmax=draws, val_split=0.1),
            execution=ExecutionConfig(engine=EngineKind.numpy),
        )
        run = prepare_run(request, EngineKind.numpy)
        assert run.validation_plan is not None
        return run.training_plan.batches.max_positions, run.validation_plan.batches.max_positions  # type: ignore[attr-defined]

    vocabulary = 150 + 2  # the words, padding and the end of line
    assert plans(0) == (4_000 // vocabulary, 4_000 // vocabulary)
    assert plans(10) == (4_000 // 20, 4_000 // vocabulary)
