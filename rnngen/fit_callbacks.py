"""The Keras callbacks that make a training run resumable: stateful callbacks that can be restored,
a checkpoint at every epoch end, and a clean stop at the next batch when SIGINT or SIGTERM arrives."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rnngen.checkpoints import Checkpoint, save_checkpoint
from rnngen.interrupts import TrainingInterrupted
from rnngen.keras_backend import import_keras

keras = import_keras()


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[name-defined]
    """Keras's early stopping, whose counters and best weights can be saved and given back."""

    resumed: dict[str, Any] | None = None
    resumed_best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)  # resets everything, as for a fresh run
        if self.resumed is not None:
            self.wait = int(self.resumed["wait"])
            self.best = self.resumed["best"]
            self.best_epoch = int(self.resumed["best_epoch"])
            self.best_weights = self.resumed_best_weights

    def state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):  # type: ignore[name-defined]
    """Keras's halving on plateau, whose counters can be saved and given back."""

    resumed: dict[str, Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.resumed is not None:
            self.wait = int(self.resumed["wait"])
            self.best = self.resumed["best"]
            self.cooldown_counter = int(self.resumed["cooldown_counter"])

    def state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "cooldown_counter": int(self.cooldown_counter)}


def model_variables(model: Any) -> list[Any]:
    """Every variable a resumed run needs: weights and the dropout layers' random-generator states."""
    return list(model.variables)


class CheckpointCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Writes a checkpoint at every epoch end. Goes last in the callback list, so that early
    stopping and the halving on plateau have already taken the epoch into account."""

    def __init__(
        self,
        folder: Any,
        fingerprint: dict[str, Any],
        earlier_history: dict[str, list[float]],
        earlier_seconds: float,
        early_stopping: ResumableEarlyStopping | None,
        reduce_learning_rate: ResumableReduceLROnPlateau | None,
    ) -> None:
        super().__init__()
        self.folder = folder
        self.fingerprint = fingerprint
        self.history = {name: list(values) for name, values in earlier_history.items()}
        self.earlier_seconds = earlier_seconds
        self.early_stopping = early_stopping
        self.reduce_learning_rate = reduce_learning_rate
        self.started = time.monotonic()
        self.epochs_done = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        callbacks: dict[str, dict[str, Any]] = {}
        best = None
        if self.early_stopping is not None:
            callbacks["early_stopping"] = self.early_stopping.state()
            best = self.early_stopping.best_weights
        if self.reduce_learning_rate is not None:
            callbacks["reduce_learning_rate"] = self.reduce_learning_rate.state()
        variables = model_variables(self.model)
        self.epochs_done = epoch + 1
        save_checkpoint(
            self.folder,
            Checkpoint(
                epochs_done=epoch + 1,
                fingerprint=self.fingerprint,
                history=self.history,
                callbacks=callbacks,
                training_seconds=self.earlier_seconds + time.monotonic() - self.started,
                variable_paths=[variable.path for variable in variables],
                variables=[np.asarray(variable.numpy()) for variable in variables],
                optimizer=[np.asarray(variable.numpy()) for variable in self.model.optimizer.variables],
                best=None if best is None else [np.asarray(array) for array in best],
            ),
        )


class StopOnSignal(keras.callbacks.Callback):  # type: ignore[name-defined]
    """Ends training at the next batch end after SIGINT or SIGTERM (see ``signals_caught``)."""

    def __init__(self, caught: list[int], describe_stop: Callable[[int], str]) -> None:
        super().__init__()
        self.caught = caught
        self.describe_stop = describe_stop

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.caught:
            signal_number = self.caught[0]
            raise TrainingInterrupted(self.describe_stop(signal_number), signal_number)
