"""Builds the Keras model a ModelConfig describes, and lays its weights out for the numpy engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnngen.config import CellKind, ModelConfig
from rnngen.engine import DIRECTIONS, expected_weight_shapes
from rnngen.keras_backend import import_keras

keras = import_keras()

CELL_LAYERS = {
    CellKind.simple: keras.layers.SimpleRNN,
    CellKind.lstm: keras.layers.LSTM,
    CellKind.gru: keras.layers.GRU,
}


def recurrent_layer_name(layer: int) -> str:
    return f"rnn{layer}"


@keras.saving.register_keras_serializable(package="rnngen")
class ReversibleEmbedding(keras.layers.Embedding):  # type: ignore[name-defined]
    """An embedding whose matrix also turns hidden states back into vocabulary logits (tied weights).

    Called on word ids it looks them up; called with ``reverse=True`` on hidden states (..., dim) it
    returns ``states @ embeddings.T + output_bias`` (..., vocab). One matrix serves both ends, which
    regularises small models and saves vocab x dim parameters.
    """

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.input_dim,), initializer="zeros")

    def call(self, inputs: Any, reverse: bool = False) -> Any:
        if reverse:
            return keras.ops.matmul(inputs, keras.ops.transpose(self.embeddings)) + self.output_bias
        return super().call(inputs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        # Word ids are masked where they are padding; hidden states keep the mask they came with.
        if "int" in str(inputs.dtype):
            return super().compute_mask(inputs, mask)
        return mask

    # Embedding saves only its matrix; the output bias is saved beside it.
    def save_own_variables(self, store: Any) -> None:
        if self.built:
            store["0"] = self.embeddings
            store["1"] = self.output_bias

    def load_own_variables(self, store: Any) -> None:
        if self.built:
            self.embeddings.assign(store["0"])
            self.output_bias.assign(store["1"])

    def compute_output_spec(self, inputs: Any, reverse: bool = False) -> Any:
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype=self.compute_dtype)
        return super().compute_output_spec(inputs)


def build_model(config: ModelConfig, sequence_output: bool = False) -> Any:
    """Embedding (padding masked) -> recurrent layers -> Dense softmax over the vocabulary.

    Padding is masked so a pre-padded prefix reads exactly like the bare prefix: the state starts at
    zero on the first real word, which is also what the numpy engine assumes. With
    ``sequence_output`` the model predicts the next word after every position (batch, time, vocab)
    rather than after the last one only (batch, vocab); the weights are the same either way.
    """
    context = keras.Input(shape=(None,), dtype="int32", name="context")  # (batch, time)
    # Under mixed precision the layers compute in 16 bits, but the logits, the softmax and so the
    # loss stay float32: a 16-bit logit has about three significant digits, too few for a softmax
    # over thousands of words. Layers given "float32" ignore the global policy (with the default
    # policy this changes nothing). A tied embedding computes the logits too, so it is float32 whole.
    output_dtype = "float32"
    embedding_class = ReversibleEmbedding if config.tie_embeddings else keras.layers.Embedding
    embedding = embedding_class(
        config.vocab_size,
        config.embedding_dim,
        mask_zero=True,
        name="embedding",
        dtype=output_dtype if config.tie_embeddings else None,
    )
    hidden = embedding(context)  # (batch, time, embedding_dim)
    for layer in range(config.layers):
        if config.dropout:
            hidden = keras.layers.Dropout(config.dropout, name=f"dropout{layer}")(hidden)
        last = layer == config.layers - 1
        recurrent = CELL_LAYERS[config.cell](
            config.units, return_sequences=sequence_output or not last, name=recurrent_layer_name(layer)
        )
        if config.bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=recurrent_layer_name(layer))
        hidden = recurrent(hidden)  # (batch, time, width), or (batch, width) after the last layer
    if config.dropout:
        hidden = keras.layers.Dropout(config.dropout, name="dropout_output")(hidden)
    if config.tie_embeddings:
        logits = embedding(hidden, reverse=True)
    else:
        logits = keras.layers.Dense(config.vocab_size, name="output", dtype=output_dtype)(hidden)
    probabilities = keras.layers.Activation("softmax", name="softmax", dtype=output_dtype)(logits)
    return keras.Model(context, probabilities, name="rnngen")


def logits_model(model: Any) -> Any:
    """The same network, stopping before the softmax: what training fits.

    Cross-entropy from logits is one fused operation; from probabilities it needs the softmax, its
    logarithm and their gradients as separate (batch, time, vocabulary) arrays, several hundred
    megabytes a batch for a 10,000-word vocabulary. The layers (and so the weights) are shared.
    """
    return keras.Model(model.inputs, model.get_layer("softmax").input, name="rnngen_logits")


def export_weights(model: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    """The model's weights under the numpy engine's names, checked against the expected shapes."""
    embedding = model.get_layer("embedding")
    weights: dict[str, np.ndarray] = {"embedding": keras.ops.convert_to_numpy(embedding.embeddings)}
    for layer in range(config.layers):
        keras_layer = model.get_layer(recurrent_layer_name(layer))
        if config.bidirectional:
            directions = dict(zip(DIRECTIONS, (keras_layer.forward_layer, keras_layer.backward_layer), strict=True))
        else:
            directions = {"forward": keras_layer}
        for direction, recurrent in directions.items():
            kernel, recurrent_kernel, bias = recurrent.get_weights()
            prefix = f"rnn{layer}.{direction}"
            weights[f"{prefix}.kernel"] = kernel
            weights[f"{prefix}.recurrent_kernel"] = recurrent_kernel
            weights[f"{prefix}.bias"] = bias
    if config.tie_embeddings:
        # The engine needs no notion of tying: it gets the shared matrix as its output kernel.
        weights["output.kernel"] = weights["embedding"].T.copy()
        weights["output.bias"] = keras.ops.convert_to_numpy(embedding.output_bias)
    else:
        output_kernel, output_bias = model.get_layer("output").get_weights()
        weights["output.kernel"] = output_kernel
        weights["output.bias"] = output_bias
    for name, shape in expected_weight_shapes(config).items():
        if weights[name].shape != shape:
            raise AssertionError(f"{name}: Keras gave {weights[name].shape}, engine expects {shape}")
    return {name: np.asarray(array, dtype=np.float32) for name, array in weights.items()}
