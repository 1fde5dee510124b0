"""The controls a run applies between epochs, the same whichever engine computes the steps: the learning
rate's decay, its halving on a plateau, and early stopping that keeps the best epoch's weights.
(Within an epoch the engines scale the epoch's rate by rnngen.train.schedule's warm-up or schedule.)

They behave as Keras's LearningRateScheduler, ReduceLROnPlateau(min_delta=1e-4, cooldown=0) and
EarlyStopping(restore_best_weights=True) do, but for the halving's patience, which also counts updates
(PLATEAU_MIN_STEPS); their state goes into every checkpoint (under the names those callbacks had, so
checkpoints written by earlier versions resume too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngen.config import PLATEAU_MIN_STEPS, ScheduleKind, TrainingConfig

# Keras's ReduceLROnPlateau default: smaller gains than this do not count as improvement.
PLATEAU_MIN_DELTA = 1e-4

WeightSnapshot = list[np.ndarray]


def as_float32(value: float) -> float:
    """The value an optimizer keeps in its float32 learning-rate variable."""
    return float(np.float32(value))


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a lower monitored value, keeping the best epoch's weights."""

    patience: int
    wait: int = 0
    best: float | None = None
    best_epoch: int = 0
    best_weights: WeightSnapshot | None = None

    def epoch_end(self, epoch: int, value: float, snapshot: Callable[[], WeightSnapshot]) -> bool:
        """Note an epoch's value; True when training should stop. ``snapshot`` copies the weights."""
        self.wait += 1
        if self.best is None or value < self.best:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = snapshot()
            return False
        if self.best_weights is None:  # resumed from a checkpoint that kept none: these stand in
            self.best_weights, self.best_epoch = snapshot(), epoch
        return self.wait >= self.patience and epoch > 0

    def state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch}

    def restore(self, state: dict[str, Any], best_weights: WeightSnapshot | None) -> None:
        self.wait = int(state["wait"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.best_weights = best_weights


@dataclass
class PlateauHalving:
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    patience: int
    factor: float
    wait: int = 0
    best: float | None = None

    def epoch_end(self, value: float) -> bool:
        """Note an epoch's value; True when the rate is to be multiplied by the factor now."""
        reference = np.inf if self.best is None else self.best - PLATEAU_MIN_DELTA
        if value < reference:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.wait = 0
        return True

    def state(self) -> dict[str, Any]:
        # No cooldown is used, so its counter (kept in the checkpoint's layout) is always 0.
        return {"wait": self.wait, "best": self.best, "cooldown_counter": 0}

    def restore(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.best = None if state["best"] is None else float(state["best"])


@dataclass
class EpochControls:
    """The learning rate a run trains each epoch with, and whether it should stop."""

    learning_rate: float
    decay: float
    early_stopping: EarlyStopping | None
    plateau: PlateauHalving | None

    @classmethod
    def for_training(cls, training: TrainingConfig, steps_per_epoch: int) -> EpochControls:
        plateau = None
        # A cosine or linear schedule takes the rate to zero on its own course: no halving on top.
        if training.reduce_lr_patience > 0 and training.schedule is ScheduleKind.decay:
            # Epochs of at least PLATEAU_MIN_STEPS updates in all (see config.py).
            patience = max(training.reduce_lr_patience, math.ceil(PLATEAU_MIN_STEPS / steps_per_epoch))
            plateau = PlateauHalving(patience, training.reduce_lr_factor)
        return cls(
            learning_rate=as_float32(training.learning_rate),
            decay=training.lr_decay,
            early_stopping=EarlyStopping(training.patience) if training.patience > 0 else None,
            plateau=plateau,
        )

    def epoch_begin(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch``: the last one, decayed after the first epoch."""
        if epoch > 0 and self.decay < 1.0:
            self.learning_rate = as_float32(self.learning_rate * self.decay)
        return self.learning_rate

    def epoch_end(self, epoch: int, value: float, snapshot: Callable[[], WeightSnapshot]) -> bool:
        """Let early stopping and the halving see the epoch's monitored value (the halving changes
        ``learning_rate`` at once); True when training should stop."""
        stop = self.early_stopping is not None and self.early_stopping.epoch_end(epoch, value, snapshot)
        if self.plateau is not None and self.plateau.epoch_end(value) and self.learning_rate > 0.0:
            self.learning_rate = as_float32(self.learning_rate * self.plateau.factor)
        return stop

    @property
    def best_weights(self) -> WeightSnapshot | None:
        """The best epoch's weights, when early stopping watches; None otherwise."""
        return None if self.early_stopping is None else self.early_stopping.best_weights

    def state(self) -> dict[str, dict[str, Any]]:
        """The counters to checkpoint, by the names of the Keras callbacks that once kept them."""
        state: dict[str, dict[str, Any]] = {}
        if self.early_stopping is not None:
            state["early_stopping"] = self.early_stopping.state()
        if self.plateau is not None:
            state["reduce_learning_rate"] = self.plateau.state()
        return state

    def restore(self, state: dict[str, Any], best_weights: WeightSnapshot | None, learning_rate: float) -> None:
        """Take up where a checkpoint left off, at the learning rate its optimizer kept."""
        self.learning_rate = learning_rate
        if self.early_stopping is not None and "early_stopping" in state:
            self.early_stopping.restore(state["early_stopping"], best_weights)
        if self.plateau is not None and "reduce_learning_rate" in state:
            self.plateau.restore(state["reduce_learning_rate"])
