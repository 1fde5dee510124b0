"""The fast training form is the notebook's: one pass over a line scores every prefix of it.

For a one-directional model whose padding is masked, the probability of the word after a pre-padded
prefix equals the probability at that position of one many-to-many pass over the whole line. And
Keras's masked loss over a padded batch of lines is the mean over real positions only.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnngen.config import CellKind, ModelConfig
from rnngen.data.batches import PrefixBatches, TokenStream, WindowBatches, context_windows, line_windows, prefix_samples

LINES = [[3, 4, 5, 6], [7, 3], [8, 9, 10, 11, 12, 4], [5]]
BOUNDARY = 13


@pytest.fixture(scope="module")
def modelling():  # type: ignore[no-untyped-def]
    from rnngen.train.keras_engine import model

    return model


@pytest.mark.parametrize("cell", list(CellKind), ids=lambda cell: cell.value)
def test_window_pass_scores_equal_prefix_scores(modelling, cell: CellKind) -> None:  # type: ignore[no-untyped-def]
    config = ModelConfig(
        vocab_size=14, max_len=8, cell=cell, layers=2, bidirectional=False, embedding_dim=6, units=5, dropout=0.0
    )
    modelling.keras.utils.set_random_seed(3)
    last_step = modelling.build_model(config)
    every_step = modelling.build_model(config, sequence_output=True)
    every_step.set_weights(last_step.get_weights())
    stream = TokenStream.from_lines(LINES).with_boundaries(BOUNDARY)

    samples = prefix_samples(stream)
    contexts, targets = context_windows(stream, samples, config.context_len)
    prefix_probabilities = np.asarray(last_step(contexts))[np.arange(len(targets)), targets]

    batches = WindowBatches(stream, line_windows(stream, config.context_len), batch_size=8, seed=0, shuffle=False)
    inputs, window_targets = batches.batch(0)
    outputs = np.asarray(every_step(inputs))  # (lines, time, vocab)
    real = inputs != 0
    window_probabilities = np.take_along_axis(outputs, window_targets[..., None], axis=-1)[..., 0][real]

    # Same targets, each scored once in both forms.
    assert sorted(targets.tolist()) == sorted(window_targets[real].tolist())
    assert len(targets) == sum(len(line) + 1 for line in LINES)
    np.testing.assert_allclose(np.sort(window_probabilities), np.sort(prefix_probabilities), atol=1e-6)

    # Keras's loss on the padded batch is the mean over real positions, padding masked out.
    every_step.compile(loss="sparse_categorical_crossentropy")
    keras_loss = every_step.evaluate(inputs, window_targets, verbose=0)
    np.testing.assert_allclose(keras_loss, -np.log(prefix_probabilities).mean(), rtol=1e-5)

    # The notebook's one-hot categorical cross-entropy over the prefixes gives the same number.
    last_step.compile(loss="categorical_crossentropy")
    prefix_batches = PrefixBatches(stream, samples, config.context_len, config.vocab_size, 64, seed=0, shuffle=False)
    prefix_inputs, one_hot_targets = prefix_batches.batch(0)
    np.testing.assert_allclose(last_step.evaluate(prefix_inputs, one_hot_targets, verbose=0), keras_loss, rtol=1e-5)


def test_long_lines_are_cut_into_windows() -> None:
    stream = TokenStream.from_lines([[1, 2, 3, 4, 5, 6, 7]]).with_boundaries(9)  # 9 ids, 8 pairs
    windows = line_windows(stream, 3)
    assert windows.length.tolist() == [3, 3, 2] and windows.targets == 8
    batches = WindowBatches(stream, windows, batch_size=3, seed=0, shuffle=False)
    inputs, targets = batches.batch(0)
    assert inputs.tolist() == [[6, 7, 0], [9, 1, 2], [3, 4, 5]]
    assert targets.tolist() == [[7, 9, 0], [1, 2, 3], [4, 5, 6]]
