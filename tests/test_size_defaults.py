"""The network a corpus gets when the user names no sizes: small and untied for a few sentences,
tied with dropout for real text; whatever the user names is kept."""

from __future__ import annotations

import pytest

from rnngen.config import REAL_TEXT, REAL_TEXT_MIN_TOKENS, SMALL_TEXT, ArchitectureConfig
from rnngen.train.setup import resolve_architecture


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
