"""The numpy engine against the Keras model it replays, for every cell option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnngen.config import CellKind, ModelConfig
from rnngen.network.forward import NumpyLanguageModel

# (cell, layers, bidirectional, tied embeddings)
CASES = [(*case, False) for case in itertools.product(CellKind, (1, 2), (False, True))] + [
    (CellKind.lstm, 1, False, True),
    (CellKind.gru, 2, True, True),
]


@pytest.fixture(scope="module")
def keras_model_module():  # type: ignore[no-untyped-def]
    from rnngen.train.keras_engine import model

    return model


def random_contexts(rng: np.random.Generator, vocab_size: int, count: int, width: int) -> np.ndarray:
    """Pre-padded contexts of every length from 0 to ``width``."""
    contexts = rng.integers(1, vocab_size, size=(count, width))
    for row in range(count):
        contexts[row, : width - (row % (width + 1))] = 0
    return contexts


@pytest.mark.parametrize(
    ("cell", "layers", "bidirectional", "tied"), CASES, ids=lambda value: str(getattr(value, "value", value))
)
def test_engine_matches_keras(keras_model_module, cell: CellKind, layers: int, bidirectional: bool, tied: bool) -> None:  # type: ignore[no-untyped-def]
    units = 5
    config = ModelConfig(
        vocab_size=23,
        max_len=8,
        cell=cell,
        layers=layers,
        bidirectional=bidirectional,
        embedding_dim=units * (2 if bidirectional else 1) if tied else 6,
        units=units,
        dropout=0.25,
        tie_embeddings=tied,
    )
    keras_model_module.keras.utils.set_random_seed(7)
    model = keras_model_module.build_model(config)
    rng = np.random.default_rng(11)
    # Random non-zero biases too, so every weight's layout is exercised.
    model.set_weights([weight + rng.normal(0, 0.3, weight.shape).astype(np.float32) for weight in model.get_weights()])
    contexts = random_contexts(rng, config.vocab_size, count=10, width=config.context_len)
    expected = np.asarray(model(contexts, training=False))

    engine = NumpyLanguageModel(config, keras_model_module.export_weights(model, config))
    np.testing.assert_allclose(engine.probabilities_of_contexts(contexts.tolist()), expected, atol=1e-5)

    # Reading word by word with the state carried, all rows stepped together, gives the same
    # distributions; so does reading each row's words in one go.
    readings = engine.new_readings(len(contexts))
    for column in contexts.T:
        # Padding is skipped: rows still in their padding read nothing this step.
        readings.feed_each([[word_id] for word_id in column.tolist()])
    np.testing.assert_allclose(readings.probabilities(), expected, atol=1e-5)
    at_once = engine.new_readings(len(contexts))
    at_once.feed_each(contexts.tolist())
    np.testing.assert_allclose(at_once.probabilities(), expected, atol=1e-5)
    # Rows without padding can be stepped as one batch.
    full = contexts[(contexts != 0).all(axis=1)]
    if len(full):
        stepped = engine.new_readings(len(full))
        for column in full.T:
            stepped.feed(column)
        np.testing.assert_allclose(stepped.probabilities(), expected[(contexts != 0).all(axis=1)], atol=1e-5)
        reordered = stepped.select([len(full) - 1, 0])
        np.testing.assert_allclose(reordered.probabilities(), expected[(contexts != 0).all(axis=1)][[-1, 0]], atol=1e-5)


def test_engine_rejects_weights_of_the_wrong_shape() -> None:
    config = ModelConfig(
        vocab_size=5,
        max_len=3,
        cell=CellKind.simple,
        layers=1,
        bidirectional=False,
        embedding_dim=2,
        units=3,
        dropout=0.0,
    )
    weights = {
        "embedding": np.zeros((5, 2)),
        "rnn0.forward.kernel": np.zeros((2, 3)),
        "rnn0.forward.recurrent_kernel": np.zeros((3, 3)),
        "rnn0.forward.bias": np.zeros(3),
        "output.kernel": np.zeros((3, 5)),
        "output.bias": np.zeros(5),
    }
    NumpyLanguageModel(config, weights)
    with pytest.raises(ValueError, match="shape"):
        NumpyLanguageModel(config, {**weights, "output.bias": np.zeros(4)})
    with pytest.raises(ValueError, match="missing"):
        NumpyLanguageModel(config, {name: array for name, array in weights.items() if name != "embedding"})
