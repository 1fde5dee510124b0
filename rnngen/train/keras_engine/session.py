"""A Keras engine session: the model built and compiled, one ``fit`` per epoch, ``evaluate`` for the
validation batches, and the weights and optimizer state handed to the run and back.

The run's controls (learning rate, early stopping, checkpoints, stopping on a signal) act between the
epochs and through one callback at each batch end, never inside Keras's own callbacks. That callback
may end an epoch after any batch (``stop_training``), but a run goes on from epoch ends only: ``fit``
starts each epoch at its first batch with its metrics reset (see engines.check_budget).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import ContextKind, ExecutionConfig, ModelConfig, TrainingConfig, XlaKind
from rnngen.data.batches import Batches, WindowBatches
from rnngen.data.block_batches import BlockBatches
from rnngen.errors import ModelFolderError
from rnngen.network.weights import Weights
from rnngen.store.folder import KERAS_FILE
from rnngen.train.checkpoints import EpochPosition
from rnngen.train.engines import BatchEnd, EngineState
from rnngen.train.keras_engine.backend import import_keras
from rnngen.train.keras_engine.devices import dtype_policy
from rnngen.train.keras_engine.distribution import (
    Placement,
    ShardedCrossEntropy,
    SummedGradientClippingAdam,
    adapt_to_strategy,
    agreed_stop_signal,
    distributed_batches,
)
from rnngen.train.keras_engine.metrics import TokenAccuracy, TokenCrossEntropy
from rnngen.train.keras_engine.model import build_model, export_weights, logits_model, set_output_bias
from rnngen.train.keras_engine.shapes import pad_to_bucket
from rnngen.train.schedule import StepSchedule
from rnngen.train.setup import DataPlan, PreparedRun

keras = import_keras()


class KerasBatches(keras.utils.PyDataset):  # type: ignore[name-defined]
    """Hands prefix or window batches to ``model.fit`` in the order of the epoch set on them.

    ``fit`` must be called with ``shuffle=False``: the batches are already in the epoch's order, and
    Keras's own shuffling draws from the global random state, which a resumed run cannot replay.
    """

    def __init__(self, batches: Batches) -> None:
        super().__init__()
        self.batches = batches
        # JAX compiles a step per batch shape: window batches are padded to a few (see shapes.py).
        windowed = isinstance(batches, WindowBatches) or (isinstance(batches, BlockBatches) and batches.windowed)
        self.bucketed = keras.backend.backend() == "jax" and windowed

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets = self.batches.batch(index)
        if self.bucketed:
            assert isinstance(self.batches, (WindowBatches, BlockBatches))
            return pad_to_bucket(inputs, targets, self.batches.batch_size, self.batches.max_positions)
        return inputs, targets


# XLA fuses the recurrent cells' many small operations (a few per time step, each a dispatch of its
# own in a TensorFlow graph) into a few compiled loops: on this project's 2-core CPU it trained PTB's
# stream windows 1.46x as fast (benchmarks/RESULTS.md). It compiles one program per batch shape, a few
# seconds each, so by default it is used where the shapes are few, as stream windows (all of one
# width), and the steps many. Keras leaves XLA off on a CPU, and on a GPU chooses for itself.
XLA_MIN_STEPS_PER_EPOCH = 100


def jit_compile_setting(
    execution: ExecutionConfig, placement: Placement, training: TrainingConfig, training_plan: DataPlan
) -> bool | str:
    """Keras's jit_compile for this run. ``--xla on|off`` decides; with auto, True for many stream-window
    steps with TensorFlow on one CPU, otherwise Keras's own choice ("auto": XLA on a GPU, never under a
    strategy; JAX always compiles)."""
    if execution.xla is not XlaKind.auto:
        return execution.xla is XlaKind.on
    if keras.backend.backend() != "tensorflow" or placement.strategy is not None or placement.device != "cpu":
        return "auto"
    return training.context is ContextKind.stream and len(training_plan.batches) >= XLA_MIN_STEPS_PER_EPOCH


def compile_model(
    model: Any,
    model_config: ModelConfig,
    training: TrainingConfig,
    distributed: bool = False,
    jit_compile: bool | str = "auto",
) -> None:
    # The prefix form feeds one-hot rows to categorical cross-entropy, as the notebook does. The
    # window form predicts at every position, where one-hot rows would be (batch, time, vocabulary)
    # floats; sparse categorical cross-entropy is the same loss computed from the target ids.
    sparse = not model_config.bidirectional
    metrics = [TokenAccuracy(sparse=sparse), TokenCrossEntropy(sparse=sparse)]
    if distributed:
        # Under a strategy each replica holds a shard of the batch: the loss and the clipping must
        # be those of the whole batch (see distribution.py).
        model.compile(
            loss=ShardedCrossEntropy(sparse=sparse),
            optimizer=SummedGradientClippingAdam(
                learning_rate=training.learning_rate, global_clipnorm=training.clip_norm
            ),
            metrics=metrics,
        )
        return
    if model_config.bidirectional:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        loss=loss,
        optimizer=keras.optimizers.Adam(learning_rate=training.learning_rate, global_clipnorm=training.clip_norm),
        metrics=metrics,
        jit_compile=jit_compile,
    )


class _BatchEnd(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Calls the run back at every batch end, ending the epoch there when it asks, and keeps the
    epoch's figures (those of the batches done when it ends early)."""

    def __init__(self, batch_end: BatchEnd) -> None:
        super().__init__()
        self.batch_end = batch_end
        self.epoch_logs: dict[str, float] = {}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.batch_end(batch, _floats(logs)):
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_logs = _floats(logs)


class _ScheduledRate(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Sets each step's learning rate, the epoch's times the schedule's factor at the optimizer's step
    count, before the step, as the numpy engine does (rnngen.train.schedule)."""

    def __init__(self, schedule: StepSchedule, epoch_rate: float, set_rate: Callable[[float], None]) -> None:
        super().__init__()
        self.schedule = schedule
        self.epoch_rate = epoch_rate
        self.set_rate = set_rate

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.set_rate(self.epoch_rate * self.schedule.factor(step))


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (logs or {}).items()}


class KerasSession:
    """One run's Keras model and optimizer, placed on the devices the engine chose."""

    def __init__(self, run: PreparedRun, placement: Placement, execution: ExecutionConfig) -> None:
        self.run = run
        self.placement = placement
        config, training = run.model_config, run.training
        keras.utils.set_random_seed(training.seed)
        with placement.scope(), dtype_policy(placement.dtype_policy):
            self.model = build_model(config, sequence_output=not config.bidirectional)
            # The network before its softmax, sharing the model's layers: what training fits.
            self.trained = logits_model(self.model)
            set_output_bias(self.model, config, run.initial_output_bias())
            compile_model(
                self.trained,
                config,
                training,
                distributed=placement.strategy is not None,
                jit_compile=jit_compile_setting(execution, placement, training, run.training_plan),
            )
        if placement.strategy is not None:
            adapt_to_strategy(self.trained, placement.strategy, run.training_plan.batches.batch(0))
        self.schedule = StepSchedule.for_training(training, len(run.training_plan.batches))

    @property
    def learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.trained.optimizer.learning_rate))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._set_learning_rate(value)

    def _set_learning_rate(self, value: float) -> None:
        with self.placement.scope():
            self.trained.optimizer.learning_rate = value

    def _inputs(self, batches: Batches, epoch: int, steps_name: str) -> dict[str, Any]:
        """What ``fit`` or ``evaluate`` reads of epoch ``epoch``'s batches: a PyDataset on one device;
        under a strategy, each replica's shard of them from tf.data, with the number of steps."""
        if self.placement.strategy is None:
            batches.set_epoch(epoch)
            return {"x": KerasBatches(batches)}
        return {"x": distributed_batches(self.placement.strategy, batches, epoch), steps_name: len(batches)}

    def train_epoch(self, epoch: int, batch_end: BatchEnd, start: EpochPosition | None = None) -> dict[str, float]:
        if start is not None:
            raise ValueError("the Keras engine starts epochs at their first batch")
        callback = _BatchEnd(batch_end)
        callbacks: list[Any] = [callback]
        epoch_rate = self.learning_rate
        if not self.schedule.is_constant:
            callbacks.insert(0, _ScheduledRate(self.schedule, epoch_rate, self._set_learning_rate))
        # shuffle=False: the batches come in the epoch's own order; Keras's shuffling would draw
        # from the global random state, which a resumed run cannot replay.
        try:
            self.trained.fit(
                **self._inputs(self.run.training_plan.batches, epoch, "steps_per_epoch"),
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=False,
                callbacks=callbacks,
                verbose=0,
            )
        finally:
            if not self.schedule.is_constant:
                # The optimizer keeps the epoch's rate between epochs: the one checkpoints hold.
                self.learning_rate = epoch_rate
        return callback.epoch_logs

    def epoch_position(self) -> EpochPosition | None:
        return None  # runs go on from epoch ends only

    def validate(self) -> dict[str, float]:
        assert self.run.validation_plan is not None
        # Validation batches keep one order (they are not shuffled), whatever the epoch.
        scores = self.trained.evaluate(
            **self._inputs(self.run.validation_plan.batches, 0, "steps"), verbose=0, return_dict=True
        )
        return {f"val_{name}": value for name, value in _floats(scores).items()}

    def weights(self) -> list[np.ndarray]:
        return [np.array(array) for array in self.trained.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        with self.placement.scope():
            self.trained.set_weights(weights)

    def state(self) -> EngineState:
        # Every variable: the weights and the dropout layers' random-generator states.
        variables = list(self.trained.variables)
        return EngineState(
            variable_paths=[variable.path for variable in variables],
            variables=[np.asarray(variable.numpy()) for variable in variables],
            optimizer=[np.asarray(variable.numpy()) for variable in self.trained.optimizer.variables],
        )

    def restore(self, state: EngineState) -> None:
        with self.placement.scope():
            variables = list(self.trained.variables)
            self.trained.optimizer.build(self.trained.trainable_variables)
            optimizer_variables = self.trained.optimizer.variables
            # Shapes, not paths, are compared: Keras numbers its random generators per process
            # ("seed_generator_3"), so the same model gets other paths in another run.
            fits = (
                len(variables) == len(state.variables)
                and all(tuple(v.shape) == a.shape for v, a in zip(variables, state.variables, strict=True))
                and len(optimizer_variables) == len(state.optimizer)
                and all(tuple(v.shape) == a.shape for v, a in zip(optimizer_variables, state.optimizer, strict=True))
            )
            if not fits:
                raise ModelFolderError("the checkpoint does not fit this model; train without --resume to start over")
            for variable, array in zip(variables, state.variables, strict=True):
                variable.assign(array)
            for variable, array in zip(optimizer_variables, state.optimizer, strict=True):
                variable.assign(array)

    def export(self) -> Weights:
        return export_weights(self.model, self.run.model_config)

    def write_extra(self, folder: Path) -> None:
        self.model.save(folder / KERAS_FILE)

    def stop_signal(self, caught: list[int]) -> int | None:
        if self.placement.workers == 1:
            return caught[0] if caught else None
        return agreed_stop_signal(self.placement.strategy, caught)
