"""A run's epochs, the same for every engine: train each from where the run stands, validate, apply
the epoch controls, keep the history, checkpoint and report, until the last epoch allowed, early
stopping, a spent budget or a stop signal.

Where training can stop:
- after the last epoch --epochs allows, or when early stopping says so: the run is finished;
- when a budget (--max-steps, --max-time) is spent, after the batch under way: an epoch cut short is
  validated and judged like a whole one (the history records the batches it had), so the model
  folder gets the best weights so far; the checkpoint stays, for --resume to go on;
- on SIGINT or SIGTERM, after the batch under way, with TrainingInterrupted.

Checkpoints are written at every epoch's end and, with an engine that can go on from the middle of an
epoch (the numpy engine), at the batch where a budget or a signal stopped training and whenever
--checkpoint-every's time has passed. A checkpoint in the middle of an epoch holds the controls and
the history as they were when the epoch began, so a run resumed from it, finishing the epoch, ends
exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rnngen.errors import ModelFolderError
from rnngen.train.budget import BudgetStop, BudgetWatch
from rnngen.train.checkpoints import Checkpoint, EpochPosition, save_checkpoint
from rnngen.train.controls import EpochControls
from rnngen.train.engines import EngineState, Session
from rnngen.train.interrupts import TrainingInterrupted
from rnngen.train.reporting import EpochClock, RunOutline, TrainingReporter
from rnngen.train.schedule import StepSchedule
from rnngen.train.setup import STEPS_ENTRY, PreparedRun


@dataclass(frozen=True)
class Ending:
    """How training ended: early stopping, a budget (with where), or else the last epoch allowed."""

    stopped_early: bool = False
    budget_stop: BudgetStop | None = None

    @property
    def finished(self) -> bool:
        """Whether the run is done, with nothing left for --resume (a budget leaves epochs to go)."""
        return self.budget_stop is None


class EpochLoop:
    """One run's epochs over a session, from the start or from a checkpoint."""

    def __init__(
        self,
        run: PreparedRun,
        session: Session,
        checkpoint: Checkpoint | None,
        checkpoint_path: Path,
        caught: list[int],
        started: float,
        reporter: TrainingReporter | None,
        earlier_steps: int = 0,
        earlier_seconds: float = 0.0,
        network: int | None = None,
    ) -> None:
        """``checkpoint_path``: where this process writes checkpoints; ``caught``: the stop signals
        caught so far (interrupts.signals_caught); ``started``: when the command began (time.monotonic);
        ``earlier_steps`` and ``earlier_seconds``: the updates and the training time before this
        command of the run's networks trained before this one (rnngen.train.networks), which its budget
        and its checkpoints count too; ``network``: which of them this one is (from 2), for the
        messages."""
        self.run = run
        self.session = session
        self.checkpoint_path = checkpoint_path
        self.caught = caught
        self.started = started
        self.reporter = reporter
        self.steps = len(run.training_plan.batches)
        self.controls = EpochControls.for_training(run.training, self.steps)
        # The engines step with the same schedule (rnngen.train.schedule); the history records its rates.
        self.schedule = StepSchedule.for_training(run.training, self.steps)
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self.position: EpochPosition | None = None  # where the first epoch starts, for a mid-epoch checkpoint
        self.earlier_seconds = earlier_seconds
        self.earlier_steps = earlier_steps
        self.network = network
        if checkpoint is not None:
            self._take_up(checkpoint)
        steps_done = self.epochs_done * self.steps + (0 if self.position is None else self.position.steps_done)
        self.resumed_at_step = steps_done
        self.watch = BudgetWatch(run.request.budget, earlier_steps + steps_done, started)
        self.watch.check_start()
        # What the epoch under way has done, as its batch ends report it.
        self.epoch_steps = 0
        self.stop_signal: int | None = None
        self.spent: str | None = None

    def _take_up(self, checkpoint: Checkpoint) -> None:
        session, controls = self.session, self.controls
        session.restore(EngineState(checkpoint.variable_paths, checkpoint.variables, checkpoint.optimizer))
        controls.restore(checkpoint.callbacks, checkpoint.best, session.learning_rate)
        self.history = {name: list(values) for name, values in checkpoint.history.items()}
        # Checkpoints written before the batches were recorded hold whole epochs only.
        self.history.setdefault(STEPS_ENTRY, [float(self.steps)] * len(self.history.get("loss", [])))
        self.epochs_done = checkpoint.epochs_done
        self.position = checkpoint.epoch_position
        if self.position is not None and self.position.steps_done > self.steps:
            raise ModelFolderError("the checkpoint's epoch position does not fit this run; train without --resume")
        self.earlier_seconds = checkpoint.training_seconds

    def outline(self, engine: str) -> RunOutline:
        budget = self.run.request.budget
        return RunOutline(
            epochs=self.run.training.planned_epochs,
            steps_per_epoch=self.steps,
            engine=engine,
            may_stop_early=self.controls.early_stopping is not None,
            steps_done=self.resumed_at_step,
            max_steps=None if budget.max_steps is None else budget.max_steps - self.earlier_steps,
            max_time=budget.max_time,
        )

    def train(self, engine: str, report_data: bool = True) -> Ending:
        """Train epoch after epoch until the run ends; ``engine`` describes the engine for the reporter,
        which hears what the run read too unless ``report_data`` is False (a run's later networks)."""
        self._stop_if_caught()
        if self.reporter is not None:
            self.reporter.on_train_begin(self.outline(engine))
            if report_data:
                self.reporter.on_data_read(self.run.data_report)
        try:
            for epoch in range(self.epochs_done, self.run.training.planned_epochs):
                ending = self._epoch(epoch)
                if ending is not None:
                    return ending
            return Ending()
        finally:
            if self.reporter is not None:
                self.reporter.on_train_end()

    def _epoch(self, epoch: int) -> Ending | None:
        """Train, judge and checkpoint one epoch; how training ended, if it did."""
        run, session, controls = self.run, self.session, self.controls
        start, self.position = self.position, None
        # An epoch resumed in its middle already has its learning rate (the checkpoint's optimizer holds it).
        session.learning_rate = controls.epoch_begin(epoch) if start is None else controls.learning_rate
        self.epoch_steps = 0 if start is None else start.steps_done
        self.stop_signal, self.spent = None, None
        clock = EpochClock(run.training_plan.targets, self.steps, self.epoch_steps)

        def batch_end(step: int, logs: dict[str, float]) -> bool:
            return self._batch_end(epoch, step, logs, clock)

        logs = session.train_epoch(epoch, batch_end, start)
        clock.stop()
        whole = self.epoch_steps == self.steps
        if not whole:
            # Before the cut epoch is judged: a run going on from here must find the controls and the
            # history as they were when the epoch began.
            self._save_mid_epoch_checkpoint()
            if self.stop_signal is not None:
                self._interrupt(self.stop_signal)
        if run.validation_plan is not None:
            logs.update(session.validate())
        # The rate this epoch trained with; under a warm-up or a schedule, the rate of its last step.
        logs["learning_rate"] = controls.learning_rate
        if not self.schedule.is_constant:
            logs["learning_rate"] *= self.schedule.factor(self.watch.steps_done - self.earlier_steps - 1)
        logs[STEPS_ENTRY] = float(self.epoch_steps)
        stop = controls.epoch_end(epoch, logs[run.monitored], session.weights)
        # A halving takes effect now, so that the checkpoint's optimizer holds the rate to go on with.
        session.learning_rate = controls.learning_rate
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        if whole:
            self.epochs_done = epoch + 1
            self._save_checkpoint(None)
        if self.reporter is not None:
            self.reporter.on_epoch_end(epoch, clock.with_rate(logs, self.epoch_steps))
        if self.stop_signal is not None:
            self._interrupt(self.stop_signal)
        if not whole:
            assert self.spent is not None  # only a budget or a signal cuts an epoch short
            return Ending(budget_stop=BudgetStop(self.spent, epoch, self.epoch_steps, self.steps))
        if stop:
            return Ending(stopped_early=True)
        # A time budget may also run out while the epoch is validated and checkpointed.
        spent = self.spent or self.watch.spent()
        if spent is not None and epoch + 1 < run.training.planned_epochs:
            return Ending(budget_stop=BudgetStop(spent, epoch, self.steps, self.steps))
        return None

    def _batch_end(self, epoch: int, step: int, logs: dict[str, float], clock: EpochClock) -> bool:
        """Report the batch, then say whether to end the epoch here: on a stop signal or a spent
        budget; checkpoint in the epoch's middle when --checkpoint-every's time has come."""
        self.epoch_steps = step + 1
        self.watch.batch_done()
        if self.reporter is not None:
            self.reporter.on_batch_end(epoch, step, clock.with_rate(logs, step + 1))
        self.stop_signal = self.session.stop_signal(self.caught)
        if self.stop_signal is not None:
            return True
        self.spent = self.watch.spent()
        if self.spent is not None:
            return True
        if step + 1 < self.steps and self.watch.checkpoint_due():
            self._save_mid_epoch_checkpoint()
        return False

    def _save_mid_epoch_checkpoint(self) -> None:
        """A checkpoint at the batch the epoch under way has reached, where the engine can go on from
        one; otherwise the last epoch end's checkpoint stays."""
        position = self.session.epoch_position()
        if position is not None:
            self._save_checkpoint(position)

    def _save_checkpoint(self, position: EpochPosition | None) -> None:
        """Everything a resumed run needs: at the end of ``epochs_done`` epochs, or, with a position,
        in the middle of the next one."""
        state = self.session.state()
        seconds = self.earlier_seconds + time.monotonic() - self.started
        checkpoint = Checkpoint(
            epochs_done=self.epochs_done,
            fingerprint=self.run.fingerprint,
            history=self.history,
            callbacks=self.controls.state(),
            training_seconds=seconds,
            variable_paths=state.variable_paths,
            variables=state.variables,
            optimizer=state.optimizer,
            best=self.controls.best_weights,
            settings=self.run.request.settings(),
            epoch_position=position,
        )
        save_checkpoint(self.checkpoint_path, checkpoint)
        self.watch.checkpoint_written()

    def _stop_if_caught(self) -> None:
        signal_number = self.session.stop_signal(self.caught)
        if signal_number is not None:
            self._interrupt(signal_number)

    def _interrupt(self, signal_number: int) -> None:
        """Stop with the message that says what the checkpoint keeps."""
        kept_steps = None if self.position is None else self.position.steps_done
        if self.epoch_steps < self.steps and self.session.epoch_position() is not None:
            kept_steps = self.epoch_steps
        message = stop_message(
            signal_number, self.epochs_done, kept_steps, self.steps, self.run.request.checkpoint, self.network
        )
        raise TrainingInterrupted(message, signal_number)


def stop_message(
    signal_number: int,
    epochs_done: int,
    kept_steps: int | None,
    steps_per_epoch: int,
    checkpoint_path: Path,
    network: int | None = None,
) -> str:
    """What a stop signal left: ``epochs_done`` finished epochs and ``kept_steps`` batches of the next
    one (None: none kept) in the checkpoint at ``checkpoint_path``; with ``network`` (from 2, of a run
    of several: rnngen.train.networks), of that network, the networks before it finished and kept too."""
    name = signal.Signals(signal_number).name
    of_network = "" if network is None else f" of network {network}"
    kept = [] if network is None else ["the finished networks"]
    if epochs_done:
        kept.append(f"{epochs_done} finished epoch(s){of_network}")
    if kept_steps:
        kept.append(f"{kept_steps:,} of {steps_per_epoch:,} batches of epoch {epochs_done + 1}{of_network}")
    if not kept:
        return f"training stopped by {name} before its first epoch ended; nothing was saved"
    return (
        f"training stopped by {name}; {' and '.join(kept)} are kept in {checkpoint_path}: "
        "run the same command with --resume to go on"
    )
