"""The network a corpus gets when the user names no sizes: small and untied for a few sentences,
tied with dropout for real text; the numpy engine's moving average and sampled softmax; whatever the user
names is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnngen.config import (
    AUTO_EMA_BOUNDS,
    AUTO_SAMPLED_SOFTMAX_DRAWS,
    AUTO_SAMPLED_SOFTMAX_MIN_VOCAB,
    REAL_TEXT,
    REAL_TEXT_MIN_TOKENS,
    SMALL_TEXT,
    ArchitectureConfig,
    EngineKind,
)
from rnngen.train.setup import resolve_architecture, resolve_ema, resolve_sampled_softmax
from tests.conftest import SEED_TEXT, rnngen


def settled(architecture: ArchitectureConfig) -> tuple[object, ...]:
    return (architecture.embedding_dim, architecture.units, architecture.dropout, architecture.tie_embeddings)


def test_a_few_sentences_get_the_small_network() -> None:
    chosen = resolve_architecture(ArchitectureConfig(), REAL_TEXT_MIN_TOKENS - 1)
    assert settled(chosen) == (SMALL_TEXT.embedding_dim, SMALL_TEXT.units, SMALL_TEXT.dropout, False)


def test_real_text_gets_the_tied_network_with_dropout() -> None:
    chosen = resolve_architecture(ArchitectureConfig(), REAL_TEXT_MIN_TOKENS)
    assert settled(chosen) == (REAL_TEXT.units, REAL_TEXT.units, REAL_TEXT.dropout, True)


def test_the_embedding_follows_the_units_when_tied() -> None:
    assert settled(resolve_architecture(ArchitectureConfig(units=256), 10**6))[:2] == (256, 256)
    bidirectional = resolve_architecture(ArchitectureConfig(units=32, bidirectional=True), 10**6)
    assert settled(bidirectional) == (64, 32, REAL_TEXT.dropout, True)
    assert settled(resolve_architecture(ArchitectureConfig(embedding_dim=96, tie_embeddings=True), 10))[:2] == (96, 96)


def test_what_the_user_names_is_kept() -> None:
    named = ArchitectureConfig(embedding_dim=32, units=64, dropout=0.0, tie_embeddings=False)
    assert settled(resolve_architecture(named, 10**6)) == (32, 64, 0.0, False)
    # An embedding of another width than the units cannot be tied, so auto leaves it untied.
    assert settled(resolve_architecture(ArchitectureConfig(embedding_dim=32), 10**6))[3] is False


def test_an_impossible_tie_is_refused_when_both_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        ArchitectureConfig(embedding_dim=32, units=64, tie_embeddings=True)


def test_the_numpy_engine_averages_the_weights_of_real_text_over_about_an_epoch() -> None:
    numpy, keras, real = EngineKind.numpy, EngineKind.keras, REAL_TEXT_MIN_TOKENS
    assert resolve_ema(None, 141, real, numpy) == round(1 - 1 / 141, 6)
    # Within its bounds: a few steps an epoch, or thousands.
    assert resolve_ema(None, 3, real, numpy) == AUTO_EMA_BOUNDS[0]
    assert resolve_ema(None, 50_000, real, numpy) == AUTO_EMA_BOUNDS[1]
    # Not for a few sentences learned by heart, not on the Keras engine, never over what the user names.
    assert resolve_ema(None, 141, real - 1, numpy) == 0.0
    assert resolve_ema(None, 141, real, keras) == 0.0
    assert resolve_ema(0.0, 141, real, numpy) == 0.0
    assert resolve_ema(0.9995, 141, 10, numpy) == 0.9995


def test_a_large_vocabulary_gets_a_sampled_softmax_on_the_numpy_engine() -> None:
    numpy, keras, real = EngineKind.numpy, EngineKind.keras, REAL_TEXT_MIN_TOKENS
    large = AUTO_SAMPLED_SOFTMAX_MIN_VOCAB
    assert resolve_sampled_softmax(None, large, real, numpy) == AUTO_SAMPLED_SOFTMAX_DRAWS
    assert resolve_sampled_softmax(None, large - 1, real, numpy) == 0
    assert resolve_sampled_softmax(None, large, real, keras) == 0
    assert resolve_sampled_softmax(0, large, real, numpy) == 0
    assert resolve_sampled_softmax(512, 100, real, numpy) == 512


def test_a_run_records_the_average_it_chose(tmp_path: Path) -> None:
    # 1,200 lines of five words: real text, 17 batches of up to 64 lines an epoch once a tenth is held out.
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "log"]
    lines = [" ".join(words[(line + step) % len(words)] for step in range(5)) for line in range(1_200)]
    (tmp_path / "real.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    for corpus in ("real.txt", "seed.txt"):
        result = rnngen("train", corpus, "--epochs", "1", "--units", "8", "--embedding-dim", "8", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    real = json.loads((tmp_path / "models" / "real" / "config.json").read_text(encoding="utf-8"))["training"]
    assert real["ema"] == round(1 - 1 / 17, 6) and real["sampled_softmax"] == 0
    seed = json.loads((tmp_path / "models" / "seed" / "config.json").read_text(encoding="utf-8"))["training"]
    assert seed["ema"] == 0.0 and seed["sampled_softmax"] == 0
