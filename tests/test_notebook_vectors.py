"""The notebook's printed recurrent-layer values, reproduced by Keras and by the numpy engine."""

import numpy as np
import pytest

from rnngen.config import CellKind
from rnngen.network.forward import RecurrentCell, RecurrentLayer

TRAIN_X = np.array(
    [[[0.1, 4.2, 1.5, 1.1, 2.8], [1.0, 3.1, 2.5, 0.7, 1.1], [0.3, 2.1, 1.5, 2.1, 0.1], [2.2, 1.4, 0.5, 0.9, 1.1]]],
    dtype=np.float32,
)
FORWARD_H, FORWARD_C = 0.8583817, 2.7335248
BACKWARD_H, BACKWARD_C = 0.89662635, 2.8326864
SEQUENCE_ROWS = np.array(
    [
        [0.60378623] * 3 + [0.89662635] * 3,
        [0.8135507] * 3 + [0.86469495] * 3,
        [0.8438271] * 3 + [0.7678819] * 3,
        [0.8583817] * 3 + [0.53885394] * 3,
    ]
)


def constant_lstm_cell() -> RecurrentCell:
    """LSTM(3) with the notebook's initialisers: kernel 0.1, recurrent kernel 0.1, bias 1."""
    return RecurrentCell(
        kind=CellKind.lstm,
        kernel=np.full((5, 12), 0.1, dtype=np.float32),
        recurrent_kernel=np.full((3, 12), 0.1, dtype=np.float32),
        bias=np.ones(12, dtype=np.float32),
    )


def test_engine_reproduces_the_bidirectional_lstm_states() -> None:
    cell = constant_lstm_cell()
    _, (forward_h, forward_c) = cell.run(TRAIN_X)
    _, (backward_h, backward_c) = cell.run(TRAIN_X[:, ::-1])
    np.testing.assert_allclose(forward_h, [[FORWARD_H] * 3], atol=1e-5)
    np.testing.assert_allclose(forward_c, [[FORWARD_C] * 3], atol=1e-5)
    np.testing.assert_allclose(backward_h, [[BACKWARD_H] * 3], atol=1e-5)
    np.testing.assert_allclose(backward_c, [[BACKWARD_C] * 3], atol=1e-5)


def test_engine_reproduces_the_return_sequences_rows() -> None:
    layer = RecurrentLayer(forward=constant_lstm_cell(), backward=constant_lstm_cell())
    np.testing.assert_allclose(layer.run(TRAIN_X)[0], SEQUENCE_ROWS, atol=1e-5)


@pytest.fixture(scope="module")
def keras():  # type: ignore[no-untyped-def]
    from rnngen.train.keras_engine.backend import import_keras

    return import_keras()


def test_simple_rnn_on_2_by_10_has_42_parameters(keras) -> None:  # type: ignore[no-untyped-def]
    model = keras.Sequential([keras.Input(shape=(2, 10)), keras.layers.SimpleRNN(3)])
    assert model.count_params() == 42


def test_keras_reproduces_the_bidirectional_lstm_values(keras) -> None:  # type: ignore[no-untyped-def]
    def lstm() -> object:
        return keras.layers.LSTM(
            3,
            return_sequences=True,
            return_state=True,
            kernel_initializer=keras.initializers.Constant(0.1),
            recurrent_initializer=keras.initializers.Constant(0.1),
            bias_initializer=keras.initializers.Constant(1.0),
        )

    outputs, forward_h, forward_c, backward_h, backward_c = keras.layers.Bidirectional(lstm())(TRAIN_X)
    np.testing.assert_allclose(np.asarray(forward_h), [[FORWARD_H] * 3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(forward_c), [[FORWARD_C] * 3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(backward_h), [[BACKWARD_H] * 3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(backward_c), [[BACKWARD_C] * 3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(outputs)[0], SEQUENCE_ROWS, atol=1e-5)
