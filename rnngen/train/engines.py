"""The seam between the training run and the engines that compute its steps, and the choice of engine.

The run (run.py) owns everything between epochs and around them; an engine computes one epoch's steps
and the validation scores, and holds the model and optimizer state:

- ``open_engine(request, choice)`` imports only the chosen engine (numpy_engine or keras_engine) and
  lets it refuse what it cannot do (a usage error before any data is read) and decide where it runs
  (TensorFlow's devices and strategies must be chosen before anything runs on them).
- ``Engine.start(prepared_run)`` builds the model and its optimizer: a ``Session``.
- A session trains an epoch, calling back after every batch, which may end the epoch there (a
  budget spent, a signal caught); scores the validation batches; hands out and takes back its
  weights (early stopping's best epoch) and its whole state (checkpoints), and, where it can go on
  from the middle of an epoch (the numpy engine), where the epoch under way stands; and exports the
  weights in the model folder's layout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rnngen.config import (
    ArchitectureConfig,
    DeviceKind,
    DistributeKind,
    EngineKind,
    ExecutionConfig,
    PrecisionKind,
    TrainingConfig,
    XlaKind,
)
from rnngen.errors import UsageError
from rnngen.network.weights import Weights
from rnngen.train.checkpoints import EpochPosition
from rnngen.train.request import TrainingRequest

if TYPE_CHECKING:
    from rnngen.train.setup import PreparedRun

# Called after every training batch with its index in the epoch and the epoch's figures so far; True
# ends the epoch there.
BatchEnd = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class EngineState:
    """What a checkpoint keeps of a session: every variable (for people, with its path) and the
    optimizer's variables (step count, learning rate, moment estimates)."""

    variable_paths: list[str]
    variables: list[np.ndarray]
    optimizer: list[np.ndarray]


class Session(Protocol):
    """One engine's model, optimizer and batches for one run."""

    @property
    def learning_rate(self) -> float: ...

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    def train_epoch(self, epoch: int, batch_end: BatchEnd, start: EpochPosition | None = None) -> dict[str, float]:
        """Train on epoch ``epoch``'s batches (their order is the epoch's own), from the position
        ``start`` (a mid-epoch checkpoint's) or the first batch, until the last batch or until
        ``batch_end`` returns True; the ``loss``, ``cross_entropy`` (per real target) and ``accuracy``
        of the epoch's batches done, those before ``start`` included."""

    def epoch_position(self) -> EpochPosition | None:
        """Where the epoch under way (or the one just ended) stands, for a checkpoint to go on from
        exactly there; None from an engine that can go on from epoch ends only."""

    def validate(self) -> dict[str, float]:
        """The same figures on the validation batches, named ``val_...``."""

    def weights(self) -> list[np.ndarray]:
        """A copy of the weights, which ``set_weights`` takes back."""

    def set_weights(self, weights: list[np.ndarray]) -> None: ...

    def state(self) -> EngineState: ...

    def restore(self, state: EngineState) -> None:
        """Take back a checkpoint's state; ModelFolderError when it does not fit this model."""

    def export(self) -> Weights:
        """The weights as the model folder stores them (rnngen.network.weights)."""

    def write_extra(self, folder: Path) -> None:
        """Add the engine's own files to a model folder being written (the Keras model)."""

    def stop_signal(self, caught: list[int]) -> int | None:
        """The stop signal to act on after this batch: the first one caught, or, when several
        processes train together, one that any of them caught (all must stop after the same batch)."""


class Engine(Protocol):
    """A training engine, placed for one request."""

    kind: EngineKind
    backend: str  # what computes ("numpy", "tensorflow", "jax", ...), for the folder's versions
    chief: bool  # whether this process writes the model folder (all but one worker of a cluster do not)

    def execution_record(self) -> dict[str, Any]:
        """How and where the run computes, as the model folder's config.json records it."""

    def start(self, run: PreparedRun) -> Session: ...


@dataclass(frozen=True)
class EngineChoice:
    """The engine a request trains with, and why."""

    kind: EngineKind
    reason: str

    def describe(self) -> str:
        return f"{self.kind.value} engine ({self.reason})"


def numpy_engine_limit(architecture: ArchitectureConfig, execution: ExecutionConfig) -> tuple[str, str] | None:
    """The first option the numpy engine cannot train, with what it does instead; None if it can
    train them all."""
    if architecture.bidirectional:
        return "--bidirectional", "trains one-directional models"
    if execution.device is DeviceKind.gpu:
        return "--device gpu", "trains on the CPU"
    if execution.precision is not PrecisionKind.float32:
        return f"--precision {execution.precision.value}", "computes in float32"
    if execution.distribute is not DistributeKind.none:
        return f"--distribute {execution.distribute.value}", "trains on one device"
    if execution.xla is XlaKind.on:
        return "--xla on", "does not compile with XLA"
    return None


def keras_engine_limit(architecture: ArchitectureConfig, training: TrainingConfig) -> tuple[str, str] | None:
    """The first option the Keras engine cannot train, with what it is; None if it can train them all."""
    if architecture.weight_drop:
        return "--weight-drop", "DropConnect on the recurrent kernels"
    if architecture.activation_regularization or architecture.temporal_activation_regularization:
        return "--ar and --tar", "penalties on the activations"
    if training.ema:
        return "--ema", "a moving average of the weights"
    if training.sampled_softmax:
        return "--sampled-softmax", "a softmax over sampled words"
    if training.stateful:
        return "--stateful", "states carried from batch to batch"
    if training.unk_singletons:
        return "--unk-singletons", "words seen once read as <unk>"
    if training.networks is not None and training.networks > 1:
        return "--networks", "networks of several seeds merged into one"
    return None


def check_keras_engine(request: TrainingRequest) -> None:
    """A usage error, before Keras is loaded or any data read, for an option the Keras engine lacks."""
    limit = keras_engine_limit(request.architecture, request.training)
    if limit is not None:
        option, what = limit
        raise UsageError(f"--engine keras does not do {option} ({what}); use --engine numpy")


def choose_engine(request: TrainingRequest, resumed: EngineKind | None = None) -> EngineChoice:
    """The engine for a request: the one asked for; with ``auto`` the interrupted run's when resuming,
    else numpy when it can train the request on this machine (it starts at once and, on a CPU, steps
    faster) or when an option needs it, Keras when an option needs it or a GPU is there to use."""
    execution = request.execution
    if execution.engine is not EngineKind.auto:
        return EngineChoice(execution.engine, f"--engine {execution.engine.value}")
    if resumed is not None:
        return EngineChoice(resumed, "auto: the interrupted run's engine")
    limit = numpy_engine_limit(request.architecture, execution)
    keras_limit = keras_engine_limit(request.architecture, request.training)
    if limit is not None:
        if keras_limit is not None:
            raise UsageError(
                f"{limit[0]} needs the Keras engine, which does not do {keras_limit[0]} ({keras_limit[1]}); "
                "leave one of them out"
            )
        return EngineChoice(EngineKind.keras, f"auto: {limit[0]} needs Keras")
    if keras_limit is not None:
        return EngineChoice(EngineKind.numpy, f"auto: {keras_limit[0]} needs numpy")
    if execution.device is DeviceKind.auto and gpu_visible():
        return EngineChoice(EngineKind.keras, "auto: a GPU is visible")
    return EngineChoice(EngineKind.numpy, "auto: one direction, float32, on the CPU")


def check_budget(request: TrainingRequest, choice: EngineChoice) -> None:
    """Refuse the budgets an engine cannot keep, before it is loaded.

    Keras's fit starts every epoch with its metrics reset and its data at the first batch; going on
    from a batch would take Keras's internals, so its runs resume from epoch ends only. The workers
    of a cluster must all stop after the same batch, and their clocks would not agree on one.
    """
    budget = request.budget
    if budget.checkpoint_every is not None and choice.kind is not EngineKind.numpy:
        raise UsageError(f"--checkpoint-every needs the numpy engine; this run trains with the {choice.describe()}")
    if budget.max_time is not None and request.execution.distribute is DistributeKind.multiworker:
        raise UsageError("--max-time cannot stop the workers of a cluster after the same batch; use --max-steps")


def open_engine(request: TrainingRequest, choice: EngineChoice) -> Engine:
    """The chosen engine, placed for the request; only its module is imported (Keras's loads TensorFlow)."""
    if choice.kind is EngineKind.numpy:
        from rnngen.train.numpy_engine.engine import NumpyEngine

        return NumpyEngine(request)
    check_keras_engine(request)
    from rnngen.train.keras_engine.engine import KerasEngine

    return KerasEngine(request)


def gpu_visible() -> bool:
    """Whether Keras would train on a GPU here. Asking Keras's backend loads it (seconds, for
    TensorFlow), so it is asked only where the system shows a GPU device at all."""
    if not _gpu_device_present():
        return False
    from rnngen.train.keras_engine.devices import gpu_available

    return gpu_available()


def _gpu_device_present() -> bool:
    """An NVIDIA (or, under WSL, DirectX) device not hidden by CUDA_VISIBLE_DEVICES, an AMD ROCm
    device, or Apple's Metal plug-in for TensorFlow or JAX."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in {"", "-1"}
    devices = Path("/dev")
    nvidia = any(devices.glob("nvidia[0-9]*")) or (devices / "dxg").exists()
    if nvidia and not hidden:
        return True
    if (devices / "kfd").exists():
        return True
    return sys.platform == "darwin" and any(
        _installed(plugin) for plugin in ("tensorflow_metal", "jax_plugins.metal_plugin")
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose package is missing
        return False
