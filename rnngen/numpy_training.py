"""Trains a one-directional model with numpy alone (`--engine numpy`): backprop.py's gradients, Adam.

The same run as `training.py`'s Keras fit, step for step: the same batches in the same order, the
loss averaged over real targets, Adam with Keras 3's update and global-norm clipping, the learning
rate multiplied by --lr-decay at each epoch's start and halved on a plateau, early stopping that
keeps the best epoch's weights, a checkpoint after every epoch, a clean stop on SIGINT or SIGTERM.
It never imports TensorFlow or Keras, so a run starts in a fraction of a second instead of the
several seconds TensorFlow takes to load: on a small corpus that is most of the time.

What it leaves to the Keras engine: bidirectional models, GPUs, mixed precision, several devices,
and the folder's `model.keras` (writing one needs Keras; rnngen's own commands read `weights.npz`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.backprop import BatchScore, Weights, engine_weights, loss_and_gradients, score_batch, trainable_names
from rnngen.checkpoints import Checkpoint, checkpoint_folder, remove_checkpoint, save_checkpoint
from rnngen.config import (
    ArchitectureConfig,
    CellKind,
    DeviceKind,
    DistributeKind,
    EngineKind,
    ExecutionConfig,
    ModelConfig,
    PrecisionKind,
    TokenizerConfig,
    TrainingConfig,
    XlaKind,
)
from rnngen.errors import ModelFolderError, UsageError
from rnngen.interrupts import TrainingInterrupted, signals_caught
from rnngen.plots import write_training_curve
from rnngen.store import CURVE_FILE, check_destination, write_model_folder
from rnngen.training_setup import (
    Batches,
    PreparedRun,
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

# Keras 3's defaults for Adam and for the halving on a plateau.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7
PLATEAU_MIN_DELTA = 1e-4


def check_supported(architecture: ArchitectureConfig, execution: ExecutionConfig) -> None:
    """Usage errors for what the numpy engine does not do, before any data is read."""
    advice = "; use --engine keras"
    if architecture.bidirectional:
        raise UsageError("--engine numpy trains one-directional models (no --bidirectional)" + advice)
    if execution.device is DeviceKind.gpu:
        raise UsageError("--engine numpy trains on the CPU (no --device gpu)" + advice)
    if execution.precision is not PrecisionKind.float32:
        raise UsageError("--engine numpy computes in float32 (no --precision mixed)" + advice)
    if execution.distribute is not DistributeKind.none:
        raise UsageError("--engine numpy trains on one device (no --distribute)" + advice)
    if execution.xla is XlaKind.on:
        raise UsageError("--engine numpy does not compile with XLA (no --xla on)" + advice)


# -- initial weights: Keras's initialisers' distributions ---------------------------------------------


def _glorot_uniform(shape: tuple[int, int], random: np.random.Generator) -> np.ndarray:
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return random.uniform(-limit, limit, shape).astype(np.float32)


def _orthogonal(shape: tuple[int, int], random: np.random.Generator) -> np.ndarray:
    rows, columns = shape
    q, r = np.linalg.qr(random.normal(size=(max(rows, columns), min(rows, columns))))
    q *= np.sign(np.diag(r))
    return (q if rows >= columns else q.T).astype(np.float32)


def initial_weights(config: ModelConfig, seed: int) -> Weights:
    """Embedding uniform in ±0.05, kernels Glorot-uniform, recurrent kernels orthogonal, biases zero
    (an LSTM's forget gate 1), as Keras initialises the same layers."""
    random = np.random.default_rng([seed, 0])
    weights: Weights = {
        "embedding": random.uniform(-0.05, 0.05, (config.vocab_size, config.embedding_dim)).astype(np.float32)
    }
    gates = {CellKind.simple: 1, CellKind.gru: 3, CellKind.lstm: 4}[config.cell]
    width = config.embedding_dim
    for layer in range(config.layers):
        prefix = f"rnn{layer}.forward"
        weights[f"{prefix}.kernel"] = _glorot_uniform((width, gates * config.units), random)
        weights[f"{prefix}.recurrent_kernel"] = _orthogonal((config.units, gates * config.units), random)
        bias = np.zeros((2, 3 * config.units) if config.cell is CellKind.gru else gates * config.units, np.float32)
        if config.cell is CellKind.lstm:
            bias[config.units : 2 * config.units] = 1.0
        weights[f"{prefix}.bias"] = bias
        width = config.units
    if not config.tie_embeddings:
        weights["output.kernel"] = _glorot_uniform((width, config.vocab_size), random)
    weights["output.bias"] = np.zeros(config.vocab_size, np.float32)
    return weights


# -- the optimizer and the epoch-end controls ----------------------------------------------------------


class Adam:
    """Keras 3's Adam (epsilon 1e-7) with the gradients clipped to a global norm first."""

    def __init__(self, weights: Mapping[str, np.ndarray], learning_rate: float, clip_norm: float | None) -> None:
        self.learning_rate = learning_rate
        self.clip_norm = clip_norm
        self.iterations = 0
        self.first_moments = {name: np.zeros_like(array) for name, array in weights.items()}
        self.second_moments = {name: np.zeros_like(array) for name, array in weights.items()}

    def apply(self, weights: Weights, gradients: Mapping[str, np.ndarray]) -> None:
        """Update ``weights`` in place."""
        scale = 1.0
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float(np.vdot(gradient, gradient)) for gradient in gradients.values()))
            scale = self.clip_norm / max(norm, self.clip_norm)
        self.iterations += 1
        step_size = self.learning_rate * math.sqrt(1.0 - BETA_2**self.iterations) / (1.0 - BETA_1**self.iterations)
        for name, weight in weights.items():
            gradient = gradients[name]
            if scale != 1.0:
                gradient = gradient * np.float32(scale)
            first, second = self.first_moments[name], self.second_moments[name]
            # m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= step m / (sqrt(v) + eps)
            first += (gradient - first) * np.float32(1.0 - BETA_1)
            second += (np.square(gradient) - second) * np.float32(1.0 - BETA_2)
            update = np.sqrt(second)
            update += np.float32(EPSILON)
            np.divide(first, update, out=update)
            update *= np.float32(step_size)
            weight -= update

    def state(self, names: list[str]) -> list[np.ndarray]:
        return [
            np.array(self.iterations, np.int64),
            np.array(self.learning_rate, np.float64),
            *(self.first_moments[name] for name in names),
            *(self.second_moments[name] for name in names),
        ]

    def restore(self, names: list[str], arrays: list[np.ndarray]) -> None:
        self.iterations = int(arrays[0])
        self.learning_rate = float(arrays[1])
        for index, name in enumerate(names):
            self.first_moments[name] = arrays[2 + index].astype(np.float32)
            self.second_moments[name] = arrays[2 + len(names) + index].astype(np.float32)


@dataclass
class EarlyStopping:
    """Keras's EarlyStopping(mode="min", restore_best_weights=True): stop after ``patience`` epochs
    without a lower monitored value, and keep the best epoch's weights."""

    patience: int
    wait: int = 0
    best: float | None = None
    best_epoch: int = 0
    best_weights: Weights | None = None

    def epoch_end(self, epoch: int, value: float, weights: Mapping[str, np.ndarray]) -> bool:
        """Note an epoch's value; True when training should stop."""
        if self.best_weights is None:
            self.best_weights = {name: array.copy() for name, array in weights.items()}
            self.best_epoch = epoch
        self.wait += 1
        if self.best is None or value < self.best:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = {name: array.copy() for name, array in weights.items()}
            return False
        return self.wait >= self.patience and epoch > 0

    def state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch}


@dataclass
class PlateauHalving:
    """Keras's ReduceLROnPlateau(mode="min", min_delta=1e-4, cooldown=0): multiply the rate by
    ``factor`` after ``patience`` epochs without improvement."""

    patience: int
    factor: float
    wait: int = 0
    best: float | None = None

    def epoch_end(self, value: float, optimizer: Adam) -> None:
        if self.best is None or value < self.best - PLATEAU_MIN_DELTA:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and optimizer.learning_rate > 0.0:
            optimizer.learning_rate = float(np.float32(optimizer.learning_rate * self.factor))
            self.wait = 0

    def state(self) -> dict[str, Any]:
        # The Keras engine's checkpoint layout; no cooldown is used, so its counter is always 0.
        return {"wait": self.wait, "best": self.best, "cooldown_counter": 0}


# -- one epoch ------------------------------------------------------------------------------------------


@dataclass
class _Totals:
    """Sums over an epoch's batches."""

    cross_entropy: float = 0.0
    correct: int = 0
    targets: int = 0
    batch_losses: float = 0.0  # each batch's mean loss times its rows, as Keras averages its "loss"
    rows: int = 0

    def add(self, score: BatchScore, rows: int) -> None:
        self.cross_entropy += score.cross_entropy
        self.correct += score.correct
        self.targets += score.targets
        self.batch_losses += score.cross_entropy / score.targets * rows
        self.rows += rows

    def logs(self, prefix: str = "") -> dict[str, float]:
        targets = max(self.targets, 1)
        return {
            f"{prefix}loss": self.batch_losses / max(self.rows, 1),
            f"{prefix}cross_entropy": self.cross_entropy / targets,
            f"{prefix}accuracy": self.correct / targets,
        }


def _validation_logs(weights: Mapping[str, np.ndarray], config: ModelConfig, batches: Batches) -> dict[str, float]:
    totals = _Totals()
    for index in range(len(batches)):
        inputs, targets = batches.batch(index)
        totals.add(score_batch(weights, config, inputs, targets), len(inputs))
    return totals.logs("val_")


def _train_epoch(
    run: PreparedRun,
    weights: Weights,
    optimizer: Adam,
    epoch: int,
    on_batch_end: Callable[[int, dict[str, float]], None],
) -> dict[str, float]:
    config, batches = run.model_config, run.training_plan.batches
    batches.set_epoch(epoch)
    # Dropout's masks depend on (seed, epoch) alone, so a resumed run draws the same ones.
    random = np.random.default_rng([run.training.seed, epoch, 1]) if config.dropout > 0 else None
    totals = _Totals()
    for index in range(len(batches)):
        inputs, targets = batches.batch(index)
        score, gradients = loss_and_gradients(weights, config, inputs, targets, random)
        optimizer.apply(weights, gradients)
        totals.add(score, len(inputs))
        on_batch_end(index, totals.logs())
    return totals.logs()


# -- the run --------------------------------------------------------------------------------------------


@dataclass
class _TrainingState:
    """Everything that changes as training goes on, and so goes into a checkpoint."""

    names: list[str]  # the trainable arrays, in checkpoint order
    weights: Weights
    optimizer: Adam
    early_stopping: EarlyStopping | None
    plateau: PlateauHalving | None
    history: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fresh(cls, config: ModelConfig, training: TrainingConfig) -> _TrainingState:
        weights = initial_weights(config, training.seed)
        return cls(
            names=trainable_names(config),
            weights=weights,
            optimizer=Adam(weights, training.learning_rate, training.clip_norm),
            early_stopping=EarlyStopping(training.patience) if training.patience > 0 else None,
            plateau=(
                PlateauHalving(training.reduce_lr_patience, training.reduce_lr_factor)
                if training.reduce_lr_patience > 0
                else None
            ),
        )

    def end_epoch(self, epoch: int, logs: dict[str, float], monitored: str) -> bool:
        """Record the epoch (with its learning rate), let early stopping and the halving see the
        monitored value; True when training should stop."""
        logs["learning_rate"] = self.optimizer.learning_rate
        value = logs[monitored]
        stop = self.early_stopping is not None and self.early_stopping.epoch_end(epoch, value, self.weights)
        if self.plateau is not None:
            self.plateau.epoch_end(value, self.optimizer)
        for name, logged in logs.items():
            self.history.setdefault(name, []).append(float(logged))
        return stop

    def restore(self, checkpoint: Checkpoint) -> None:
        """Take up where ``checkpoint`` left off."""
        names = self.names
        fits = checkpoint.variable_paths == names and all(
            array.shape == self.weights[name].shape for name, array in zip(names, checkpoint.variables, strict=True)
        )
        if not fits or len(checkpoint.optimizer) != 2 + 2 * len(names):
            raise ModelFolderError("the checkpoint does not fit this model; train without --resume to start over")
        for name, array in zip(names, checkpoint.variables, strict=True):
            self.weights[name] = array.astype(np.float32)
        self.optimizer.restore(names, checkpoint.optimizer)
        saved = checkpoint.callbacks
        if self.early_stopping is not None and "early_stopping" in saved:
            self.early_stopping.wait = int(saved["early_stopping"]["wait"])
            self.early_stopping.best = saved["early_stopping"]["best"]
            self.early_stopping.best_epoch = int(saved["early_stopping"]["best_epoch"])
            if checkpoint.best is not None:
                self.early_stopping.best_weights = dict(zip(names, checkpoint.best, strict=True))
        if self.plateau is not None and "reduce_learning_rate" in saved:
            self.plateau.wait = int(saved["reduce_learning_rate"]["wait"])
            self.plateau.best = saved["reduce_learning_rate"]["best"]
        self.history = {name: list(values) for name, values in checkpoint.history.items()}

    def checkpoint(self, fingerprint: dict[str, Any], epochs_done: int, seconds: float) -> Checkpoint:
        callbacks: dict[str, dict[str, Any]] = {}
        best = None
        if self.early_stopping is not None:
            callbacks["early_stopping"] = self.early_stopping.state()
            if self.early_stopping.best_weights is not None:
                best = [self.early_stopping.best_weights[name] for name in self.names]
        if self.plateau is not None:
            callbacks["reduce_learning_rate"] = self.plateau.state()
        return Checkpoint(
            epochs_done=epochs_done,
            fingerprint=fingerprint,
            history=self.history,
            callbacks=callbacks,
            training_seconds=seconds,
            variable_paths=self.names,
            variables=[self.weights[name] for name in self.names],
            optimizer=self.optimizer.state(self.names),
            best=best,
        )

    def kept_weights(self) -> Weights:
        """The best epoch's weights when early stopping watched, else the last ones."""
        if self.early_stopping is not None and self.early_stopping.best_weights is not None:
            return self.early_stopping.best_weights
        return self.weights


# What config.json records under "execution": one CPU, float32, nothing compiled.
EXECUTION_RECORD: dict[str, Any] = {
    "engine": EngineKind.numpy.value,
    "distribute": DistributeKind.none.value,
    "device": "cpu",
    "precision": PrecisionKind.float32.value,
    "xla": XlaKind.off.value,
    "dtype_policy": "float32",
    "replicas": 1,
    "workers": 1,
}


def train_corpus_numpy(
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
    """`training.train_corpus` with the numpy engine: the same arguments, the same model folder
    (without `model.keras`), the same checkpoints and resumption."""
    tokenizer_config = tokenizer_config or TokenizerConfig()
    architecture = architecture or ArchitectureConfig()
    training = training or TrainingConfig()
    execution = execution or ExecutionConfig(engine=EngineKind.numpy)
    check_supported(architecture, execution)
    started = time.monotonic()
    checkpoint_path = checkpoint_folder(destination)
    with signals_caught() as caught:
        check_destination(destination)
        checkpoint = checkpoint_to_resume(checkpoint_path) if resume else None
        epochs_done = 0 if checkpoint is None else checkpoint.epochs_done
        run = prepare_run(source, tokenizer_config, architecture, training, validation_source, EngineKind.numpy)
        if checkpoint is not None:
            check_resumable(checkpoint.fingerprint, run.fingerprint)
        training, config = run.training, run.model_config
        state = _TrainingState.fresh(config, training)
        if checkpoint is not None:
            state.restore(checkpoint)
        earlier_seconds = 0.0 if checkpoint is None else checkpoint.training_seconds

        def stop_if_caught() -> None:
            if caught:
                raise TrainingInterrupted(stop_message(caught[0], epochs_done, checkpoint_path), caught[0])

        stop_if_caught()
        steps = len(run.training_plan.batches)
        fit_started = time.monotonic()
        if reporter is not None:
            reporter.on_train_begin(training.epochs, steps)
        try:
            for epoch in range(epochs_done, training.epochs):
                if training.lr_decay < 1.0 and epoch > 0:
                    state.optimizer.learning_rate = float(np.float32(state.optimizer.learning_rate * training.lr_decay))
                epoch_started = time.monotonic()

                def on_batch_end(
                    index: int, logs: dict[str, float], epoch: int = epoch, epoch_started: float = epoch_started
                ) -> None:
                    if reporter is not None:
                        values = with_perplexities(logs)
                        elapsed = time.monotonic() - epoch_started
                        if elapsed > 0:
                            done = run.training_plan.targets * (index + 1) / steps
                            values["words_per_second"] = done / elapsed
                        reporter.on_batch_end(epoch, index, values)
                    stop_if_caught()

                logs = _train_epoch(run, state.weights, state.optimizer, epoch, on_batch_end)
                seconds = time.monotonic() - epoch_started
                if run.validation_plan is not None:
                    logs.update(_validation_logs(state.weights, config, run.validation_plan.batches))
                stop = state.end_epoch(epoch, logs, run.monitored)
                epochs_done = epoch + 1
                seconds_so_far = earlier_seconds + time.monotonic() - started
                save_checkpoint(checkpoint_path, state.checkpoint(run.fingerprint, epochs_done, seconds_so_far))
                if reporter is not None:
                    values = with_perplexities(logs)
                    values["words_per_second"] = run.training_plan.targets / max(seconds, 1e-9)
                    reporter.on_epoch_end(epoch, values)
                if stop:
                    break
        finally:
            if reporter is not None:
                reporter.on_train_end()
        fit_seconds = time.monotonic() - fit_started
        training_seconds = earlier_seconds + time.monotonic() - started
        folder = folder_config(
            run,
            tokenizer_config,
            validation_source,
            state.history,
            checkpoint,
            training_seconds,
            fit_seconds,
            dict(EXECUTION_RECORD),
            package_versions(EngineKind.numpy.value),
        )
        write_model_folder(
            destination,
            folder,
            run.corpus.vocabulary,
            engine_weights(state.kept_weights(), config),
            write_extra=lambda staging: write_training_curve(state.history, staging / CURVE_FILE),
        )
        remove_checkpoint(checkpoint_path)
    return run.result(destination, folder, training_seconds)
