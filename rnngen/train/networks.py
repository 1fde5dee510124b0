"""The networks of a run (--networks): each trained over the same lines from its own seed, one after
another, then merged into one network whose logits are the mean of theirs (rnngen.network.merged).

The first network trains as a run of one does, with the run's checkpoint. When a network has finished,
its kept weights are written into the run's checkpoint folder (``network-N.npz``), and each later
network checkpoints in a folder of its own inside it (``network-N``). A resumed run takes up the first
network from the run's checkpoint, skips the networks that have finished and goes on with the one under
way, so an interrupted run loses at most the batches since its last checkpoint. A budget (--max-steps,
--max-time) counts the updates and time of all the networks; when it ends training, the model folder gets
the networks finished so far, merged, or the first network's best weights so far when none has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import ModelConfig
from rnngen.errors import ModelFolderError
from rnngen.network.merged import merged_weights
from rnngen.network.weights import Weights, expected_weight_shapes
from rnngen.store.folder import read_arrays
from rnngen.train.budget import BudgetStop, BudgetWatch
from rnngen.train.checkpoints import STATE_FILE, load_checkpoint, read_checkpoint_state
from rnngen.train.engines import Engine
from rnngen.train.loop import Ending, EpochLoop
from rnngen.train.reporting import TrainingReporter
from rnngen.train.setup import STEPS_ENTRY, PreparedRun, kept_metrics, member_run


def kept_network_path(checkpoint_folder: Path, member: int) -> Path:
    """Where a finished network's kept weights wait for the others (``member`` from 0)."""
    return checkpoint_folder / f"network-{member + 1}.npz"


def member_checkpoint_folder(checkpoint_folder: Path, member: int) -> Path:
    """Where network ``member`` (from 1: the first uses the run's own folder) writes its checkpoints."""
    return checkpoint_folder / f"network-{member + 1}"


def save_kept_network(checkpoint_folder: Path, member: int, weights: Weights) -> None:
    """Write a finished network's weights beside its checkpoint, whole or not at all."""
    path = kept_network_path(checkpoint_folder, member)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        arrays: dict[str, Any] = dict(weights)  # np.savez's keywords, typed as its stub wants
        with partial.open("wb") as file:
            np.savez(file, **arrays)
        os.replace(partial, path)
    except OSError as error:
        raise ModelFolderError(f"{path}: cannot write the finished network ({error.strerror})") from None
    finally:
        partial.unlink(missing_ok=True)


def load_kept_network(checkpoint_folder: Path, member: int, config: ModelConfig) -> Weights | None:
    """A finished network's weights, or None when it has not finished; ModelFolderError if damaged."""
    path = kept_network_path(checkpoint_folder, member)
    if not path.is_file():
        return None
    arrays = read_arrays(path)
    shapes = expected_weight_shapes(config)
    if {name: tuple(array.shape) for name, array in arrays.items()} != shapes:
        raise ModelFolderError(f"{path}: the checkpoint's finished network is damaged; train without --resume")
    return {name: arrays[name] for name in shapes}


@dataclass
class NetworkRecord:
    """What config.json says of one finished network: its seed, the epochs it ran, and its kept epoch's
    figures (with the epoch's number)."""

    seed: int
    epochs_run: int
    metrics: dict[str, float]


@dataclass
class TrainedNetworks:
    """The run's networks after training: how training ended, the weights to save and their shape, and a
    record per finished network (the first one's loop, which the caller holds, has the run's history)."""

    ending: Ending
    weights: Weights
    model_config: ModelConfig
    earlier_seconds: float  # training time before this command, as the last loop knew it
    steps_run: int  # the updates of all the networks
    records: list[NetworkRecord] = field(default_factory=list)
    cut_member: int | None = None  # the network a budget stopped, when not the first


def train_networks(
    run: PreparedRun,
    engine: Engine,
    first_loop: EpochLoop,
    engine_description: str,
    resume: bool,
    caught: list[int],
    started: float,
    reporter: TrainingReporter | None,
) -> TrainedNetworks:
    """Train the run's networks (the first one through ``first_loop``, already set up) and merge them."""
    checkpoint_folder = first_loop.checkpoint_path
    count = run.training.networks or 1
    session = first_loop.session
    finished: list[Weights] = []
    records: list[NetworkRecord] = []
    first_kept = load_kept_network(checkpoint_folder, 0, run.model_config) if resume and count > 1 else None
    first_description = engine_description + (f", network 1 of {count}" if count > 1 else "")
    ending = Ending() if first_kept is not None else first_loop.train(first_description)
    if first_kept is None and first_loop.controls.best_weights is not None:
        session.set_weights(first_loop.controls.best_weights)
    first = first_kept if first_kept is not None else session.export()
    earlier_seconds = first_loop.earlier_seconds
    steps_so_far = int(sum(first_loop.history.get(STEPS_ENTRY, [])))
    cut_member = None
    if ending.finished:
        finished.append(first)
        history = first_loop.history
        records.append(NetworkRecord(run.training.seed, len(history["loss"]), kept_metrics(history, run.monitored)))
        if count > 1 and first_kept is None:
            save_kept_network(checkpoint_folder, 0, first)
    for member in range(1, count):
        if not ending.finished:
            break
        network_run = member_run(run, member)
        folder = member_checkpoint_folder(checkpoint_folder, member)
        kept = load_kept_network(checkpoint_folder, member, run.model_config) if resume else None
        if kept is not None:
            state = read_checkpoint_state(folder)
            earlier_seconds = float(state["training_seconds"])
            history = state["history"]
        else:
            spent = BudgetWatch(run.request.budget, steps_so_far, started).spent()
            if spent is not None:
                ending, cut_member = Ending(budget_stop=BudgetStop(spent, 0, 0, 0)), member
                break
            checkpoint = load_checkpoint(folder) if resume and (folder / STATE_FILE).is_file() else None
            network_session = engine.start(network_run)
            loop = EpochLoop(
                network_run,
                network_session,
                checkpoint,
                folder,
                caught,
                started,
                reporter,
                earlier_steps=steps_so_far,
                earlier_seconds=earlier_seconds,
                network=member + 1,
            )
            ending = loop.train(f"{engine_description}, network {member + 1} of {count}", report_data=False)
            earlier_seconds, history = loop.earlier_seconds, loop.history
            if not ending.finished:
                steps_so_far += int(sum(history.get(STEPS_ENTRY, [])))
                cut_member = member
                break
            if loop.controls.best_weights is not None:
                network_session.set_weights(loop.controls.best_weights)
            kept = network_session.export()
            save_kept_network(checkpoint_folder, member, kept)
        steps_so_far += int(sum(history.get(STEPS_ENTRY, [])))
        finished.append(kept)
        metrics = kept_metrics(history, network_run.monitored)
        records.append(NetworkRecord(network_run.training.seed, len(history["loss"]), metrics))
    model_config, weights = run.model_config, first
    if len(finished) > 1:
        model_config, weights = merged_weights(run.model_config, finished)
    return TrainedNetworks(ending, weights, model_config, earlier_seconds, steps_so_far, records, cut_member)
