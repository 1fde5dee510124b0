"""The training run, written once for every engine: choose and place the engine, read the corpus, take
up a checkpoint, train the epochs (loop.py), and finally save the model folder.

Training ends after the epochs --epochs allows, by early stopping, or when a budget (--max-steps,
--max-time) is spent, in the middle of an epoch if need be: the folder then holds the best weights so
far and the checkpoint stays, for --resume to go on. SIGINT or SIGTERM stops training at the next batch
end with TrainingInterrupted, after which the same request with ``resume`` goes on from the
checkpoint; on a CPU it ends with the weights an uninterrupted run would have ended with, because
batches, dropout's draws and the controls' state depend on the seed, the epoch and the checkpoint alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rnngen.config import to_json_dict
from rnngen.inference.evaluation import evaluate_lines
from rnngen.store.folder import CURVE_FILE, MIXTURE_ENTRY, StoredModel, check_destination, write_model_folder
from rnngen.train.calibration import calibrate
from rnngen.train.checkpoints import checkpoint_folder, checkpoint_to_resume, engine_of, remove_checkpoint
from rnngen.train.engines import check_budget, choose_engine, open_engine
from rnngen.train.interrupts import signals_caught
from rnngen.train.loop import Ending, EpochLoop
from rnngen.train.mixture import MixedModel, mix
from rnngen.train.networks import train_networks
from rnngen.train.plots import curve_title, write_training_curve
from rnngen.train.reporting import TrainingReporter
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
    check_budget(request, choice)
    engine = open_engine(request, choice)

    with writable_destination(request.destination, engine.chief) as destination, signals_caught() as caught:
        check_destination(destination, replace=request.replace or request.resume)
        own_checkpoint = checkpoint_folder(destination)
        run = prepare_run(request, choice.kind)
        if checkpoint is not None:
            check_resumable(checkpoint.fingerprint, run.fingerprint)
        session = engine.start(run)
        loop = EpochLoop(run, session, checkpoint, own_checkpoint, caught, started, reporter)
        fit_started = time.monotonic()
        networks = train_networks(
            run, engine, loop, choice.describe(), checkpoint is not None, caught, started, reporter
        )
        ending = networks.ending
        fit_seconds = time.monotonic() - fit_started
        # The first network's history is the run's: its curve, its kept epoch and figures.
        history = loop.history
        training_seconds = networks.earlier_seconds + time.monotonic() - started
        config = folder_config(
            run,
            history,
            checkpoint,
            training_seconds,
            fit_seconds,
            engine.execution_record(),
            package_versions(engine.backend),
        )
        # The reason of the network trained last: why the run ended.
        epochs_run = networks.records[-1].epochs_run if networks.records else len(history["loss"])
        config["stop_reason"] = stop_reason(run, ending, epochs_run, networks.cut_member)
        if len(networks.records) > 1 or run.training.networks != 1:
            # The networks merged into the saved one; config["model"] is the merged network's shape.
            config["model"] = to_json_dict(networks.model_config)
            config["networks"] = [to_json_dict(record) for record in networks.records]
        config["steps_run"] = networks.steps_run
        config["resumed_at_step"] = None if checkpoint is None else loop.resumed_at_step
        config["budget"] = to_json_dict(request.budget)
        kept = StoredModel(
            destination, config, run.request.tokenizer, networks.model_config, run.corpus.vocabulary, networks.weights
        )
        calibrated = calibrate(run, kept)
        mixed = MixedModel(calibrated.scored, calibrated.saved, None)
        if calibrated.calibration is not None:
            config["calibration"] = to_json_dict(calibrated.calibration)
            # The vocabulary's held-out words, and a tied output layer saved untied once scaled.
            config["model"] = to_json_dict(calibrated.saved.model)
            mixed = mix(run, calibrated.scored, calibrated.saved)
        if mixed.record is not None:
            config[MIXTURE_ENTRY] = to_json_dict(mixed.record)
        config["metrics"].update(text_scores(run, mixed.scored))

        def write_extra(staging: Path) -> None:
            session.write_extra(staging)
            title = curve_title(run.corpus.source, run.model_config)
            kept_epoch = int(config["metrics"]["epoch"])
            write_training_curve(history, staging / CURVE_FILE, title, kept_epoch, loop.steps)

        saved = mixed.saved
        trigram = None if saved.mixture is None else saved.mixture.trigram.to_arrays()
        write_model_folder(
            destination, config, saved.vocabulary, saved.weights, write_extra=write_extra, trigram=trigram
        )
        if ending.finished:
            remove_checkpoint(own_checkpoint)
        # A budget's end leaves the checkpoint for --resume (none yet when it came in the first epoch
        # of an engine that checkpoints at epoch ends only).
        resumable = not ending.finished and own_checkpoint.exists()
    result = run.result(request.destination, config, training_seconds, chief=engine.chief)
    return dataclasses.replace(result, checkpoint=request.checkpoint if resumable else None)


def stop_reason(run: PreparedRun, ending: Ending, epochs_run: int, cut_member: int | None = None) -> str:
    """Why training ended, in words for the summary: early stopping, a budget, or the last epoch allowed;
    ``cut_member``: the network (from 0) a budget stopped, when not the first of several."""
    if ending.budget_stop is not None:
        if cut_member is not None:
            count = run.training.networks
            if ending.budget_stop.steps_per_epoch == 0:  # spent before the network began
                return f"{ending.budget_stop.budget} was reached before network {cut_member + 1} of {count} began"
            return f"{ending.budget_stop.reason()} of network {cut_member + 1} of {count}"
        return ending.budget_stop.reason()
    if ending.stopped_early:
        monitored = "the training loss" if run.validation_plan is None else "the validation loss"
        return f"{monitored} had not improved for {run.training.patience} epochs"
    return f"all {epochs_run} epochs --epochs allows were run"


def text_scores(run: PreparedRun, stored: StoredModel) -> dict[str, float]:
    """Bits per character of the kept model on the held-out lines (``val_bits_per_char``), or on the
    training lines when none are held out (``bits_per_char``), scored as `rnngen evaluate` scores a text."""
    if run.corpus.validation_lines is not None:
        return {"val_bits_per_char": evaluate_lines(stored, run.corpus.validation_lines).bits_per_char}
    return {"bits_per_char": evaluate_lines(stored, run.corpus.training_lines).bits_per_char}


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
