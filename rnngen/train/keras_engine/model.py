"""Builds the Keras model a ModelConfig describes, and moves its weights to and from the model folder's layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngen.config import CellKind, ModelConfig
from rnngen.network.weights import (
    DIRECTIONS,
    EMBEDDING,
    OUTPUT_BIAS,
    OUTPUT_KERNEL,
    Weights,
    cell_weight_names,
    expected_weight_shapes,
    recurrent_layer_name,
    stored_weights,
)
from rnngen.train.keras_engine.backend import import_keras

keras = import_keras()

CELL_LAYERS = {
    CellKind.simple: keras.layers.SimpleRNN,
    CellKind.lstm: keras.layers.LSTM,
    CellKind.gru: keras.layers.GRU,
}


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


def set_output_bias(model: Any, config: ModelConfig, bias: np.ndarray) -> None:
    """Start the output layer's bias (vocab_size,) at the given values."""
    layer = model.get_layer("embedding") if config.tie_embeddings else model.get_layer("output")
    (layer.output_bias if config.tie_embeddings else layer.bias).assign(bias)


def export_weights(model: Any, config: ModelConfig) -> Weights:
    """The model's weights under the names of rnngen.network.weights, checked against their shapes."""
    embedding = model.get_layer("embedding")
    weights: Weights = {EMBEDDING: keras.ops.convert_to_numpy(embedding.embeddings)}
    for layer in range(config.layers):
        for direction, recurrent in _recurrent_directions(model, config, layer).items():
            for name, array in zip(cell_weight_names(layer, direction), recurrent.get_weights(), strict=True):
                weights[name] = array
    if config.tie_embeddings:
        weights[OUTPUT_BIAS] = keras.ops.convert_to_numpy(embedding.output_bias)
    else:
        weights[OUTPUT_KERNEL], weights[OUTPUT_BIAS] = model.get_layer("output").get_weights()
    stored = stored_weights(weights, config)
    for name, shape in expected_weight_shapes(config).items():
        if stored[name].shape != shape:
            raise AssertionError(f"{name}: Keras gave {stored[name].shape}, the folder expects {shape}")
    return stored


def import_weights(model: Any, config: ModelConfig, weights: Mapping[str, np.ndarray]) -> None:
    """Set the model's weights from arrays named as rnngen.network.weights names them (a model folder's)."""
    embedding = model.get_layer("embedding")
    if config.tie_embeddings:
        # The folder spells the tied output kernel out; the layer holds only the embedding it is made of.
        embedding.set_weights([weights[EMBEDDING], weights[OUTPUT_BIAS]])
    else:
        embedding.set_weights([weights[EMBEDDING]])
        model.get_layer("output").set_weights([weights[OUTPUT_KERNEL], weights[OUTPUT_BIAS]])
    for layer in range(config.layers):
        for direction, recurrent in _recurrent_directions(model, config, layer).items():
            recurrent.set_weights([weights[name] for name in cell_weight_names(layer, direction)])


def _recurrent_directions(model: Any, config: ModelConfig, layer: int) -> dict[str, Any]:
    """The Keras layer of each direction of recurrent layer ``layer``, by direction name."""
    keras_layer = model.get_layer(recurrent_layer_name(layer))
    if not config.bidirectional:
        return {DIRECTIONS[0]: keras_layer}
    return dict(zip(DIRECTIONS, (keras_layer.forward_layer, keras_layer.backward_layer), strict=True))
