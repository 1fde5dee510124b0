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
class WordDroppingEmbedding(keras.layers.Embedding):  # type: ignore[name-defined]
    """An embedding that, in training, drops whole words (AWD-LSTM's embedding dropout, dropoute):
    each row of the matrix is kept for the whole batch with probability 1 - ``word_dropout`` and scaled
    by 1 / (1 - word_dropout), or dropped wherever its word occurs. Looked up in inference as it is."""

    def __init__(self, *args: Any, word_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.word_dropout = word_dropout
        self.word_seed = keras.random.SeedGenerator() if word_dropout > 0 else None

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        embedded = super().call(inputs)
        if not training or self.word_seed is None:
            return embedded
        keep = keras.random.uniform((self.input_dim,), seed=self.word_seed) >= self.word_dropout  # (vocab,)
        scale = keras.ops.cast(keep, embedded.dtype) / (1.0 - self.word_dropout)
        return embedded * keras.ops.expand_dims(keras.ops.take(scale, inputs), -1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "word_dropout": self.word_dropout}


@keras.saving.register_keras_serializable(package="rnngen")
class ReversibleEmbedding(WordDroppingEmbedding):
    """An embedding whose matrix also turns hidden states back into vocabulary logits (tied weights).

    Called on word ids it looks them up; called with ``reverse=True`` on hidden states (..., dim) it
    returns ``states @ embeddings.T + output_bias`` (..., vocab). One matrix serves both ends, which
    regularises small models and saves vocab x dim parameters.
    """

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.input_dim,), initializer="zeros")

    def call(self, inputs: Any, training: bool | None = None, reverse: bool = False) -> Any:
        if reverse:
            # The output layer uses the matrix undropped, as AWD-LSTM's tied decoder does.
            return keras.ops.matmul(inputs, keras.ops.transpose(self.embeddings)) + self.output_bias
        return super().call(inputs, training=training)

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
    """Embedding (padding masked) -> recurrent layers -> Dense softmax over the vocabulary, with the
    dropouts that are on (training only): word dropout in the embedding, the plain dropout and the
    locked one before each recurrent layer and after the last (DropConnect is the numpy engine's alone).

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
    # Keras's own layer where it serves, so that model.keras loads in Keras without rnngen.
    embedding_class: Any = keras.layers.Embedding
    if config.tie_embeddings:
        embedding_class = ReversibleEmbedding
    elif config.dropout_embedding:
        embedding_class = WordDroppingEmbedding
    embedding = embedding_class(
        config.vocab_size,
        config.embedding_dim,
        mask_zero=True,
        name="embedding",
        dtype=output_dtype if config.tie_embeddings else None,
        **({"word_dropout": config.dropout_embedding} if embedding_class is not keras.layers.Embedding else {}),
    )
    hidden = embedding(context)  # (batch, time, embedding_dim)
    for layer in range(config.layers):
        if config.dropout:
            hidden = keras.layers.Dropout(config.dropout, name=f"dropout{layer}")(hidden)
        locked_rate = config.dropout_input if layer == 0 else config.dropout_hidden
        if locked_rate:
            name = "locked_dropout_input" if layer == 0 else f"locked_dropout{layer}"
            hidden = locked_dropout(locked_rate, name)(hidden)
        last = layer == config.layers - 1
        recurrent = CELL_LAYERS[config.cell](
            config.units, return_sequences=sequence_output or not last, name=recurrent_layer_name(layer)
        )
        if config.bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=recurrent_layer_name(layer))
        hidden = recurrent(hidden)  # (batch, time, width), or (batch, width) after the last layer
    if config.dropout:
        hidden = keras.layers.Dropout(config.dropout, name="dropout_output")(hidden)
    if config.dropout_output:
        # After a last layer that returns its final state alone (batch, width) there is no time to lock over.
        hidden = locked_dropout(config.dropout_output, "locked_dropout_output", over_time=len(hidden.shape) == 3)(
            hidden
        )
    if config.tie_embeddings:
        logits = embedding(hidden, reverse=True)
    else:
        logits = keras.layers.Dense(config.vocab_size, name="output", dtype=output_dtype)(hidden)
    probabilities = keras.layers.Activation("softmax", name="softmax", dtype=output_dtype)(logits)
    return keras.Model(context, probabilities, name="rnngen")


def locked_dropout(rate: float, name: str, over_time: bool = True) -> Any:
    """Variational (locked) dropout on (batch, time, features): one mask per row, the same at every step."""
    return keras.layers.Dropout(rate, noise_shape=(None, 1, None) if over_time else None, name=name)


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
