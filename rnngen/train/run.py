"""The training run, written once for every engine: choose and place the engine, read the corpus, take
up a checkpoint, then epoch after epoch train, validate, apply the epoch controls, checkpoint and
report, and finally save the model folder.

SIGINT or SIGTERM stops training at the next batch end with TrainingInterrupted, after which the same
request with ``resume`` goes on from the last finished epoch; on a CPU it ends with the weights an
uninterrupted run would have ended with, because batches, dropout's draws and the controls' state
depend on the seed, the epoch and the checkpoint alone.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.inference.evaluation import evaluate_lines
from rnngen.store.folder import CURVE_FILE, StoredModel, check_destination, write_model_folder
from rnngen.train.checkpoints import (
    Checkpoint,
    checkpoint_folder,
    checkpoint_to_resume,
    engine_of,
    remove_checkpoint,
    save_checkpoint,
)
from rnngen.train.controls import EpochControls
from rnngen.train.engines import EngineState, Session, choose_engine, open_engine
from rnngen.train.interrupts import TrainingInterrupted, signals_caught
from rnngen.train.plots import curve_title, write_training_curve
from rnngen.train.reporting import EpochClock, TrainingReporter
from rnngen.train.request import TrainingRequest
from rnngen.train.setup import (
    PreparedRun,
    TrainingResult,
    check_resumable,
    folder_config,
    package_versions,
    prepare_run,
)


def run_training(request: TrainingRequest, reporter: TrainingReporter | None = None) -> TrainingResult:
    """Train the model a request describes and save it; see the module's docstring."""
    started = time.monotonic()
    # In a multi-worker run every worker resumes from the chief's checkpoint, which it must be able to read.
    checkpoint = checkpoint_to_resume(request.checkpoint) if request.resume else None
    choice = choose_engine(request, None if checkpoint is None else engine_of(checkpoint.fingerprint))
    engine = open_engine(request, choice)

    with writable_destination(request.destination, engine.chief) as destination, signals_caught() as caught:
        check_destination(destination, replace=request.replace or request.resume)
        own_checkpoint = checkpoint_folder(destination)
        run = prepare_run(request, choice.kind)
        if checkpoint is not None:
            check_resumable(checkpoint.fingerprint, run.fingerprint)
        epochs_done = 0 if checkpoint is None else checkpoint.epochs_done
        session = engine.start(run)
        steps = len(run.training_plan.batches)
        controls = EpochControls.for_training(run.training, steps)
        history: dict[str, list[float]] = {}
        if checkpoint is not None:
            session.restore(EngineState(checkpoint.variable_paths, checkpoint.variables, checkpoint.optimizer))
            controls.restore(checkpoint.callbacks, checkpoint.best, session.learning_rate)
            history = {name: list(values) for name, values in checkpoint.history.items()}

        def stop_if_caught() -> None:
            signal_number = session.stop_signal(caught)
            if signal_number is not None:
                raise TrainingInterrupted(stop_message(signal_number, epochs_done, request.checkpoint), signal_number)

        stop_if_caught()
        earlier_seconds = 0.0 if checkpoint is None else checkpoint.training_seconds
        fit_started = time.monotonic()
        if reporter is not None:
            may_stop_early = controls.early_stopping is not None
            reporter.on_train_begin(run.training.epochs, steps, choice.describe(), may_stop_early)
            reporter.on_data_read(run.data_report)
        stopped_early = False
        try:
            for epoch in range(epochs_done, run.training.epochs):
                session.learning_rate = controls.epoch_begin(epoch)
                clock = EpochClock(run.training_plan.targets, steps)

                def batch_end(step: int, logs: dict[str, float], epoch: int = epoch, clock: EpochClock = clock) -> None:
                    if reporter is not None:
                        reporter.on_batch_end(epoch, step, clock.with_rate(logs, step + 1))
                    stop_if_caught()

                logs = session.train_epoch(epoch, batch_end)
                clock.stop()
                if run.validation_plan is not None:
                    logs.update(session.validate())
                logs["learning_rate"] = controls.learning_rate  # the rate this epoch trained with
                stop = controls.epoch_end(epoch, logs[run.monitored], session.weights)
                # A halving takes effect now, so that the checkpoint's optimizer holds the rate to go on with.
                session.learning_rate = controls.learning_rate
                for name, value in logs.items():
                    history.setdefault(name, []).append(float(value))
                epochs_done = epoch + 1
                seconds = earlier_seconds + time.monotonic() - started
                save_checkpoint(own_checkpoint, _checkpoint(run, session, controls, history, epochs_done, seconds))
                if reporter is not None:
                    reporter.on_epoch_end(epoch, clock.with_rate(logs, steps))
                if stop:
                    stopped_early = True
                    break
        finally:
            if reporter is not None:
                reporter.on_train_end()
        fit_seconds = time.monotonic() - fit_started
        if controls.best_weights is not None:
            session.set_weights(controls.best_weights)
        training_seconds = earlier_seconds + time.monotonic() - started
        config = folder_config(
            run,
            history,
            checkpoint,
            training_seconds,
            fit_seconds,
            engine.execution_record(),
            package_versions(engine.backend),
        )
        config["stop_reason"] = stop_reason(run, stopped_early, len(history["loss"]))
        weights = session.export()
        config["metrics"].update(text_scores(run, config, weights, destination))

        def write_extra(staging: Path) -> None:
            session.write_extra(staging)
            title = curve_title(run.corpus.source, run.model_config)
            write_training_curve(history, staging / CURVE_FILE, title, kept_epoch=int(config["metrics"]["epoch"]))

        write_model_folder(destination, config, run.corpus.vocabulary, weights, write_extra=write_extra)
        remove_checkpoint(own_checkpoint)
    return run.result(request.destination, config, training_seconds, chief=engine.chief)


def stop_reason(run: PreparedRun, stopped_early: bool, epochs_run: int) -> str:
    """Why training ended, in words for the summary: early stopping, or the last epoch allowed."""
    if stopped_early:
        monitored = "the training loss" if run.validation_plan is None else "the validation loss"
        return f"{monitored} had not improved for {run.training.patience} epochs"
    return f"all {epochs_run} epochs --epochs allows were run"


def text_scores(
    run: PreparedRun, config: dict[str, Any], weights: dict[str, np.ndarray], folder: Path
) -> dict[str, float]:
    """Bits per character of the kept model on the held-out lines (``val_bits_per_char``), or on the
    training lines when none are held out (``bits_per_char``), scored as `rnngen evaluate` scores a text."""
    stored = StoredModel(folder, config, run.request.tokenizer, run.model_config, run.corpus.vocabulary, weights)
    if run.corpus.validation_lines is not None:
        return {"val_bits_per_char": evaluate_lines(stored, run.corpus.validation_lines).bits_per_char}
    return {"bits_per_char": evaluate_lines(stored, run.corpus.training_lines).bits_per_char}


def _checkpoint(
    run: PreparedRun,
    session: Session,
    controls: EpochControls,
    history: dict[str, list[float]],
    epochs_done: int,
    seconds: float,
) -> Checkpoint:
    """Everything a resumed run needs after ``epochs_done`` epochs."""
    state = session.state()
    return Checkpoint(
        epochs_done=epochs_done,
        fingerprint=run.fingerprint,
        history=history,
        callbacks=controls.state(),
        training_seconds=seconds,
        variable_paths=state.variable_paths,
        variables=state.variables,
        optimizer=state.optimizer,
        best=controls.best_weights,
        settings=run.request.settings(),
    )


def stop_message(signal_number: int, epochs_done: int, checkpoint_path: Path) -> str:
    name = signal.Signals(signal_number).name
    if epochs_done == 0:
        return f"training stopped by {name} before its first epoch ended; nothing was saved"
    return (
        f"training stopped by {name}; {epochs_done} finished epoch(s) are kept in {checkpoint_path}: "
        "run the same command with --resume to go on"
    )


@contextlib.contextmanager
def writable_destination(destination: Path, chief: bool) -> Iterator[Path]:
    """Where this process writes its model folder and checkpoints: the destination for the chief; for
    the other workers of a cluster a temporary folder, removed afterwards, so they go through the same
    saving steps (which may need every worker) and leave nothing behind, as TensorFlow's multi-worker
    guide prescribes."""
    if chief:
        yield destination
        return
    scratch = Path(tempfile.mkdtemp(prefix="rnngen-worker-"))
    try:
        yield scratch / destination.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
