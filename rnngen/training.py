"""Compiles and fits a model on a corpus, reporting progress through a callback, and saves it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.checkpoints import Checkpoint, checkpoint_folder, remove_checkpoint
from rnngen.config import (
    ArchitectureConfig,
    ContextKind,
    EngineKind,
    ExecutionConfig,
    ModelConfig,
    TokenizerConfig,
    TrainingConfig,
    XlaKind,
)
from rnngen.devices import dtype_policy
from rnngen.distribution import (
    AgreedStopOnSignal,
    Placement,
    ShardedCrossEntropy,
    SummedGradientClippingAdam,
    adapt_to_strategy,
    distributed_batches,
    place_training,
    writable_destination,
)
from rnngen.errors import ModelFolderError, UsageError
from rnngen.fit_callbacks import (
    CheckpointCallback,
    ResumableEarlyStopping,
    ResumableReduceLROnPlateau,
    StopOnSignal,
    model_variables,
)
from rnngen.interrupts import TrainingInterrupted, signals_caught
from rnngen.keras_backend import import_keras
from rnngen.model import build_model, export_weights, logits_model
from rnngen.plots import write_training_curve
from rnngen.sequences import WindowBatches
from rnngen.shapes import pad_to_bucket
from rnngen.store import CURVE_FILE, KERAS_FILE, check_destination, write_model_folder
from rnngen.training_setup import (
    Batches,
    DataPlan,
    TrainingReporter,
    TrainingResult,
    check_resumable,
    checkpoint_to_resume,
    folder_config,
    package_versions,
    prepare_run,
    stop_message,
    with_perplexities,
)

keras = import_keras()


class _KerasBatches(keras.utils.PyDataset):  # type: ignore[name-defined]
    """Hands prefix or window batches to ``model.fit``, in the order of the epoch set by _EpochOrder.

    ``fit`` must be called with ``shuffle=False``: the batches are already in the epoch's order, and
    Keras's own shuffling draws from the global random state, which a resumed run cannot replay.
    """

    def __init__(self, batches: Batches) -> None:
        super().__init__()
        self.batches = batches
        # JAX compiles a step per batch shape: window batches are padded to a few (see shapes.py).
        self.bucketed = keras.backend.backend() == "jax" and isinstance(batches, WindowBatches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets = self.batches.batch(index)
        if self.bucketed:
            assert isinstance(self.batches, WindowBatches)
            return pad_to_bucket(inputs, targets, self.batches.batch_size, self.batches.max_positions)
        return inputs, targets


class _EpochOrder(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Gives the batches the order of each epoch as it begins, by its number (which counts on from
    the checkpoint in a resumed run), so a run resumed at any epoch sees the same batches."""

    def __init__(self, batches: Batches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.set_epoch(epoch)


class _ReporterCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Forwards Keras's events to a TrainingReporter, adding perplexity and words per second."""

    def __init__(self, reporter: TrainingReporter, epochs: int, steps_per_epoch: int, targets: int) -> None:
        super().__init__()
        self.reporter = reporter
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.targets = targets
        self.epoch = 0
        self.epoch_started = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_train_begin(self.epochs, self.steps_per_epoch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        self.epoch_started = time.monotonic()

    def _with_rates(self, logs: dict[str, Any] | None, steps_done: int) -> dict[str, float]:
        values = with_perplexities(_floats(logs))
        elapsed = time.monotonic() - self.epoch_started
        if elapsed > 0:
            # Batches hold similar numbers of targets on average, so the share of steps done is a
            # fair share of the epoch's targets.
            values["words_per_second"] = self.targets * steps_done / self.steps_per_epoch / elapsed
        return values

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_batch_end(self.epoch, batch, self._with_rates(logs, batch + 1))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_epoch_end(epoch, self._with_rates(logs, self.steps_per_epoch))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_train_end()


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (logs or {}).items()}


def _target_weights(y_true: Any, sparse: bool, dtype: Any) -> Any:
    """1 for each real target, 0 for padding: id 0 in (batch, time) ids, or an all-zero one-hot row
    (the empty rows that pad a batch shared among replicas) in (batch, vocab) targets."""
    ops = keras.ops
    if sparse:
        return ops.cast(ops.not_equal(y_true, 0), dtype)
    return ops.sum(ops.cast(y_true, dtype), axis=-1)


class _PerTargetMean(keras.metrics.Metric):  # type: ignore[name-defined]
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
        weights = _target_weights(y_true, self.sparse, values.dtype)
        self.total.assign_add(keras.ops.sum(values * weights))
        self.count.assign_add(keras.ops.sum(weights))

    def result(self) -> Any:
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)


class _TokenCrossEntropy(_PerTargetMean):
    """Mean cross-entropy per predicted token: exp(result) is the perplexity `rnngen evaluate` reports."""

    def __init__(self, sparse: bool, name: str = "cross_entropy", **kwargs: Any) -> None:
        super().__init__(sparse, name=name, **kwargs)

    def per_target(self, y_true: Any, y_pred: Any) -> Any:
        if self.sparse:  # y_true (batch, time) ids, y_pred (batch, time, vocab) logits
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        # y_true (batch, vocab) one-hot rows, y_pred (batch, vocab) logits
        return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)


class _TokenAccuracy(_PerTargetMean):
    """Share of targets whose most likely token is right: `evaluate`'s top-1 accuracy."""

    def __init__(self, sparse: bool, name: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(sparse, name=name, **kwargs)

    def per_target(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        guesses = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        truth = ops.cast(y_true if self.sparse else ops.argmax(y_true, axis=-1), "int32")
        return ops.cast(ops.equal(guesses, truth), "float32")


# XLA fuses the recurrent cells' many small operations (a few per time step, each a dispatch of its
# own in a TensorFlow graph) into a few compiled loops: on this project's 2-core CPU it trained PTB's
# stream windows 1.46x as fast (benchmarks/RESULTS.md). It compiles one program per batch shape, a few
# seconds each, so by default it is used where the shapes are few, as stream windows (all of one
# width), and the steps many. Keras leaves XLA off on a CPU, and on a GPU chooses for itself.
XLA_MIN_STEPS_PER_EPOCH = 100


def _jit_compile(
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


def _compile(
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
    metrics = [_TokenAccuracy(sparse=sparse), _TokenCrossEntropy(sparse=sparse)]
    if distributed:
        # Under a strategy each replica holds a shard of the batch: the loss and the clipping must
        # be those of the whole batch (see rnngen/distribution.py).
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


def _fit_inputs(
    model: Any, placement: Placement, training_plan: DataPlan, validation_plan: DataPlan | None, first_epoch: int
) -> dict[str, Any]:
    """What ``fit`` reads: the batches as a PyDataset on one device; under a strategy, each replica's
    shard of them from tf.data, endless, with the steps of an epoch counted out."""
    if placement.strategy is None:
        return {
            "x": _KerasBatches(training_plan.batches),
            "validation_data": None if validation_plan is None else _KerasBatches(validation_plan.batches),
        }
    adapt_to_strategy(model, placement.strategy, training_plan.batches.batch(0))
    inputs: dict[str, Any] = {
        "x": distributed_batches(placement.strategy, training_plan.batches, first_epoch),
        "steps_per_epoch": len(training_plan.batches),
    }
    if validation_plan is not None:
        inputs["validation_data"] = distributed_batches(placement.strategy, validation_plan.batches, 0)
        inputs["validation_steps"] = len(validation_plan.batches)
    return inputs


def train_corpus(
    source: str | Path,
    destination: Path,
    tokenizer_config: TokenizerConfig | None = None,
    architecture: ArchitectureConfig | None = None,
    training: TrainingConfig | None = None,
    reporter: TrainingReporter | None = None,
    validation_source: str | Path | None = None,
    resume: bool = False,
    execution: ExecutionConfig | None = None,
) -> TrainingResult:
    """Train a model on a corpus ('-' for standard input, or a folder of .txt files) and save it.

    Validation lines come from ``validation_source`` when given, else from a share of the corpus.
    A checkpoint is kept beside ``destination`` after every epoch; ``resume`` goes on from it (with
    the same corpus and settings; only the number of epochs and the patience may change). SIGINT or
    SIGTERM stops training at the next batch end with TrainingInterrupted. ``execution`` chooses the
    device, the precision and the distribution strategy; in a multi-worker run only the chief saves
    (and every worker resumes from the chief's checkpoint, which it must be able to read).
    """
    execution = execution or ExecutionConfig()
    if execution.engine is not EngineKind.keras:
        # One place chooses the engine: rnngen.trainer, which imports only the chosen one.
        raise UsageError("this is the Keras engine's train_corpus; rnngen.train_corpus chooses by execution.engine")
    tokenizer_config = tokenizer_config or TokenizerConfig()
    architecture = architecture or ArchitectureConfig()
    training = training or TrainingConfig()
    started = time.monotonic()
    if architecture.bidirectional and training.context is ContextKind.stream:
        raise UsageError("a bidirectional model reads each line on its own: --context stream needs one direction")
    placement = place_training(execution)
    shared_checkpoint = checkpoint_folder(destination)  # the chief's, which a resumed run reads

    with writable_destination(destination, placement.chief) as own_destination, signals_caught() as caught:
        check_destination(own_destination)
        checkpoint_path = checkpoint_folder(own_destination)
        checkpoint = checkpoint_to_resume(shared_checkpoint) if resume else None
        epochs_done = 0 if checkpoint is None else checkpoint.epochs_done

        def stop_if_caught() -> None:
            if caught:
                raise TrainingInterrupted(stop_message(caught[0], epochs_done, shared_checkpoint), caught[0])

        run = prepare_run(source, tokenizer_config, architecture, training, validation_source)
        training, model_config = run.training, run.model_config
        training_plan, validation_plan = run.training_plan, run.validation_plan
        if checkpoint is not None:
            check_resumable(checkpoint.fingerprint, run.fingerprint)
        stop_if_caught()

        keras.utils.set_random_seed(training.seed)
        with placement.scope(), dtype_policy(placement.dtype_policy):
            model = build_model(model_config, sequence_output=not model_config.bidirectional)
            trained = logits_model(model)
            _compile(
                trained,
                model_config,
                training,
                distributed=placement.strategy is not None,
                jit_compile=_jit_compile(execution, placement, training, training_plan),
            )
        monitored = run.monitored
        early_stopping = reduce_learning_rate = None
        callbacks: list[Any] = []
        if training.patience > 0:
            early_stopping = ResumableEarlyStopping(
                monitor=monitored, mode="min", patience=training.patience, restore_best_weights=True
            )
            callbacks.append(early_stopping)
        if training.reduce_lr_patience > 0:
            reduce_learning_rate = ResumableReduceLROnPlateau(
                monitor=monitored,
                mode="min",
                factor=training.reduce_lr_factor,
                patience=training.reduce_lr_patience,
                verbose=0,
            )
            callbacks.append(reduce_learning_rate)
        if training.lr_decay < 1.0:
            # Multiplies whatever rate the epoch ended with, so it composes with the plateau halving.
            callbacks.append(
                keras.callbacks.LearningRateScheduler(
                    lambda epoch, rate: rate * training.lr_decay if epoch > 0 else rate, verbose=0
                )
            )
        if checkpoint is not None:
            with placement.scope():
                _restore(trained, checkpoint, early_stopping, reduce_learning_rate)
        if reporter is not None:
            callbacks.append(
                _ReporterCallback(reporter, training.epochs, len(training_plan.batches), training_plan.targets)
            )
        checkpointer = CheckpointCallback(
            checkpoint_path,
            run.fingerprint,
            earlier_history={} if checkpoint is None else checkpoint.history,
            earlier_seconds=0.0 if checkpoint is None else checkpoint.training_seconds,
            early_stopping=early_stopping,
            reduce_learning_rate=reduce_learning_rate,
        )

        def describe_stop(signal_number: int) -> str:
            return stop_message(signal_number, checkpointer.epochs_done, shared_checkpoint)

        checkpointer.epochs_done = epochs_done
        if placement.strategy is None:  # under a strategy the input pipeline orders its epochs itself
            callbacks.append(_EpochOrder(training_plan.batches))
        stop_on_signal = (
            StopOnSignal(caught, describe_stop)
            if placement.workers == 1
            else AgreedStopOnSignal(caught, describe_stop, placement.strategy)
        )
        callbacks += [checkpointer, stop_on_signal]
        stop_if_caught()
        fit_started = time.monotonic()
        try:
            trained.fit(
                **_fit_inputs(trained, placement, training_plan, validation_plan, epochs_done),
                epochs=training.epochs,
                initial_epoch=epochs_done,
                shuffle=False,
                callbacks=callbacks,
                verbose=0,
            )
        finally:
            if reporter is not None:
                reporter.on_train_end()
        fit_seconds = time.monotonic() - fit_started
        history = checkpointer.history
        earlier_seconds = 0.0 if checkpoint is None else checkpoint.training_seconds
        training_seconds = earlier_seconds + time.monotonic() - started
        config = folder_config(
            run,
            tokenizer_config,
            validation_source,
            history,
            checkpoint,
            training_seconds,
            fit_seconds,
            placement.to_json(execution),
            package_versions(keras.backend.backend()),
        )

        def write_keras_model_and_curve(folder: Path) -> None:
            model.save(folder / KERAS_FILE)
            write_training_curve(history, folder / CURVE_FILE)

        write_model_folder(
            own_destination,
            config,
            run.corpus.vocabulary,
            export_weights(model, model_config),
            write_extra=write_keras_model_and_curve,
        )
        remove_checkpoint(checkpoint_path)
    return run.result(destination, config, training_seconds, chief=placement.chief)


def _restore(
    trained: Any,
    checkpoint: Checkpoint,
    early_stopping: ResumableEarlyStopping | None,
    reduce_learning_rate: ResumableReduceLROnPlateau | None,
) -> None:
    """Put the model, the optimizer and the stateful callbacks back as they were after the checkpoint's epoch."""
    variables = model_variables(trained)
    trained.optimizer.build(trained.trainable_variables)
    optimizer_variables = trained.optimizer.variables
    # Shapes, not paths, are compared: Keras numbers its random generators per process
    # ("seed_generator_3"), so the same model gets other paths in another run.
    fits = (
        len(variables) == len(checkpoint.variables)
        and all(tuple(v.shape) == a.shape for v, a in zip(variables, checkpoint.variables, strict=True))
        and len(optimizer_variables) == len(checkpoint.optimizer)
        and all(tuple(v.shape) == a.shape for v, a in zip(optimizer_variables, checkpoint.optimizer, strict=True))
    )
    if not fits:
        raise ModelFolderError("the checkpoint does not fit this model; train without --resume to start over")
    for variable, array in zip(variables, checkpoint.variables, strict=True):
        variable.assign(array)
    for variable, array in zip(optimizer_variables, checkpoint.optimizer, strict=True):
        variable.assign(array)
    if early_stopping is not None and "early_stopping" in checkpoint.callbacks:
        early_stopping.resumed = checkpoint.callbacks["early_stopping"]
        early_stopping.resumed_best_weights = checkpoint.best
    if reduce_learning_rate is not None and "reduce_learning_rate" in checkpoint.callbacks:
        reduce_learning_rate.resumed = checkpoint.callbacks["reduce_learning_rate"]
