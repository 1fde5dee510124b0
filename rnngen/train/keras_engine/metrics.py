"""Per-token metrics for Keras: cross-entropy and accuracy over an epoch's real targets, the figures
`rnngen evaluate` and the numpy engine report."""

from __future__ import annotations

from typing import Any

from rnngen.train.keras_engine.backend import import_keras

keras = import_keras()


def target_weights(y_true: Any, sparse: bool, dtype: Any) -> Any:
    """1 for each real target, 0 for padding: id 0 in (batch, time) ids, or an all-zero one-hot row
    (the empty rows that pad a batch shared among replicas) in (batch, vocab) targets."""
    ops = keras.ops
    if sparse:
        return ops.cast(ops.not_equal(y_true, 0), dtype)
    return ops.sum(ops.cast(y_true, dtype), axis=-1)


class PerTargetMean(keras.metrics.Metric):  # type: ignore[name-defined]
    """A value per target, averaged over the real targets of a whole epoch: total / count.

    Keras's own loss and metrics average per-batch means, weighing each batch by its padded size;
    these sum over real targets only (not padding id 0, nor the empty rows that pad a batch shared
    among replicas), which makes them the figures `rnngen evaluate` reports.
    """

    def __init__(self, sparse: bool, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.sparse = sparse
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def per_target(self, y_true: Any, y_pred: Any) -> Any:
        """The value of each target: (batch, time) for ids, (batch,) for one-hot rows."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        values = self.per_target(y_true, y_pred)
        weights = target_weights(y_true, self.sparse, values.dtype)
        self.total.assign_add(keras.ops.sum(values * weights))
        self.count.assign_add(keras.ops.sum(weights))

    def result(self) -> Any:
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)


class TokenCrossEntropy(PerTargetMean):
    """Mean cross-entropy per predicted token: exp(result) is the perplexity `rnngen evaluate` reports."""

    def __init__(self, sparse: bool, name: str = "cross_entropy", **kwargs: Any) -> None:
        super().__init__(sparse, name=name, **kwargs)

    def per_target(self, y_true: Any, y_pred: Any) -> Any:
        if self.sparse:  # y_true (batch, time) ids, y_pred (batch, time, vocab) logits
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        # y_true (batch, vocab) one-hot rows, y_pred (batch, vocab) logits
        return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)


class TokenAccuracy(PerTargetMean):
    """Share of targets whose most likely token is right: `evaluate`'s top-1 accuracy."""

    def __init__(self, sparse: bool, name: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(sparse, name=name, **kwargs)

    def per_target(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        guesses = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        truth = ops.cast(y_true if self.sparse else ops.argmax(y_true, axis=-1), "int32")
        return ops.cast(ops.equal(guesses, truth), "float32")
