"""Evaluation numbers against a case worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import CellKind, ContextKind, ModelConfig
from rnngen.data.vocab import Vocabulary
from rnngen.inference.evaluation import evaluate_text
from rnngen.network.forward import NumpyLanguageModel
from rnngen.network.weights import expected_weight_shapes
from rnngen.store.folder import StoredModel, read_model_folder

from .conftest import SEED_TEXT, random_weights, saved_model, small_config

# ids: 0 padding, 1 "a", 2 "b", 3 <eol> (and 4 <unk> when the vocabulary has one)
PROBABILITIES = {False: [0.1, 0.4, 0.2, 0.3], True: [0.1, 0.3, 0.2, 0.3, 0.1]}
DISTINCT_CHARACTERS = 3
ESCAPE = 0.25  # the training text's share of words seen once


def constant_model(tmp_path: Path, has_unknown: bool) -> StoredModel:
    """A model whose next-word distribution ignores the context: zero weights, biases log p."""
    vocabulary = Vocabulary(("a", "b"), has_unknown=has_unknown)
    config = ModelConfig(
        vocab_size=vocabulary.size,
        max_len=4,
        cell=CellKind.simple,
        layers=1,
        bidirectional=False,
        embedding_dim=2,
        units=2,
        dropout=0.0,
    )
    weights = {name: np.zeros(shape, dtype=np.float32) for name, shape in expected_weight_shapes(config).items()}
    weights["output.bias"] = np.log(np.array(PROBABILITIES[has_unknown], dtype=np.float32))
    return saved_model(
        tmp_path / "model",
        vocabulary,
        config,
        weights,
        corpus={"distinct_characters": DISTINCT_CHARACTERS, "escape_probability": ESCAPE},
    )


def test_hand_computed_scores_without_an_unknown_word(tmp_path: Path) -> None:
    # Lines "a b" and "b c": predicted tokens a, b, <eol>, b, c (unknown), <eol>.
    result = evaluate_text(constant_model(tmp_path, has_unknown=False), "a b\nb c\n")
    scored = [0.4, 0.2, 0.3, 0.2, 0.3]  # c cannot be scored
    assert result.tokens == 6 and result.scored_tokens == 5 and result.unknown_tokens == 1 and result.lines == 2
    assert result.perplexity == pytest.approx(math.exp(-sum(map(math.log, scored)) / 5), rel=1e-6)
    assert result.top1_accuracy == pytest.approx(1 / 5)  # only "a" is the most likely word
    assert result.top5_accuracy == pytest.approx(1.0)
    assert result.oov_rate == pytest.approx(1 / 4)
    # "c" costs the escape, -log2 0.25 = 2 bits, and its spelling, (1 character + 1) x log2(3 distinct
    # characters + 1) = 4 bits; each of the five known tokens costs -log2 (1 - 0.25) on top of its own.
    bits = -sum(map(math.log2, scored)) + 2 + 4 - 5 * math.log2(1 - ESCAPE)
    assert result.characters == len("a b") + 1 + len("b c") + 1
    assert result.bits_per_char == pytest.approx(bits / 8, rel=1e-6)


def test_hand_computed_scores_with_an_unknown_word(tmp_path: Path) -> None:
    result = evaluate_text(constant_model(tmp_path, has_unknown=True), "a b\nb c\n")
    scored = [0.3, 0.2, 0.3, 0.2, 0.1, 0.3]  # c is read as <unk>
    assert result.scored_tokens == 6 and result.unknown_tokens == 1
    assert result.perplexity == pytest.approx(math.exp(-sum(map(math.log, scored)) / 6), rel=1e-6)
    # "a" and <eol> tie for the top; ties count as found. Top-1 hits: a, <eol>, <eol>.
    assert result.top1_accuracy == pytest.approx(3 / 6)
    assert result.bits_per_char == pytest.approx((-sum(map(math.log2, scored)) + 4) / 8, rel=1e-6)


def test_evaluation_follows_the_context(seed_model: Path) -> None:
    """On its own training text the seed model predicts every word after the first of a line."""
    stored = read_model_folder(seed_model)
    result = evaluate_text(stored, SEED_TEXT)
    # 18 predictions; the first word of each line is a three-way guess, the rest are learnt.
    assert result.tokens == 18 and result.oov_rate == 0.0
    assert result.top1_accuracy >= 16 / 18 - 1e-9
    assert result.top5_accuracy == 1.0
    assert 1.0 < result.perplexity < 1.5


def recurrent_model(tmp_path: Path) -> StoredModel:
    """A small model with random weights, whose predictions depend on everything read before."""
    vocabulary = Vocabulary(("a", "b", "c"))
    config = small_config(vocabulary.size, layers=2)
    weights = random_weights(config, seed=3, scale=0.8)
    return saved_model(tmp_path / "model", vocabulary, config, weights, corpus={"distinct_characters": 3})


def test_stream_context_carries_the_state_across_lines(tmp_path: Path) -> None:
    """In stream context the text is one sequence `<eol> a b <eol> c a <eol> b <eol>`, read once."""
    stored = recurrent_model(tmp_path)
    engine = NumpyLanguageModel(stored.model, stored.weights)
    end_of_line = stored.vocabulary.end_of_line_id
    sequence = [end_of_line, 1, 2, end_of_line, 3, 1, end_of_line, 2, end_of_line]
    outputs, _ = engine.read_stream(sequence[:-1], None)
    probabilities = engine.output_distribution(outputs)
    nats = -sum(math.log(probabilities[index, word_id]) for index, word_id in enumerate(sequence[1:]))
    stream = evaluate_text(stored, "a b\nc a\nb\n", ContextKind.stream)
    assert stream.tokens == 8 and stream.scored_tokens == 8
    assert stream.perplexity == pytest.approx(math.exp(nats / 8), rel=1e-5)
    # Line context reads each line from a fresh state: the same tokens, other probabilities.
    line = evaluate_text(stored, "a b\nc a\nb\n", ContextKind.line)
    assert line.tokens == 8 and abs(line.perplexity - stream.perplexity) > 1e-3
    assert evaluate_text(stored, "a b\nc a\nb\n").perplexity == line.perplexity  # trained in line context


def test_stream_context_splits_the_text_where_it_likes(tmp_path: Path) -> None:
    """Reading the stream in pieces with the state carried gives what one pass gives."""
    stored = recurrent_model(tmp_path)
    engine = NumpyLanguageModel(stored.model, stored.weights)
    ids = [4, 1, 2, 3, 4, 2, 2, 1, 4]
    whole, whole_states = engine.read_stream(ids, None)
    first, states = engine.read_stream(ids[:4], None)
    second, states = engine.read_stream(ids[4:], states)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-6, atol=1e-6)
    for state, whole_state in zip(states, whole_states, strict=True):
        np.testing.assert_allclose(state[0], whole_state[0], rtol=1e-6, atol=1e-6)
