"""A numpy engine session: the weights, Keras 3's Adam, and the epoch's steps through backprop.py.

The same steps as the Keras engine's fit: the same batches in the same order, the loss averaged over
real targets, Adam with Keras 3's update and global-norm clipping, inverted dropout; and what only it
does: weight drop, the moving average of the weights (--ema), which it validates and saves, and the
sampled softmax (--sampled-softmax), under which the embedding's rows step alone (row_gradient.py). It
never imports TensorFlow or Keras, so a run starts in a fraction of a second instead of the several
seconds TensorFlow takes to load: on a small corpus that is most of the time.

It can go on from the middle of an epoch exactly: an epoch's batches come in an order fixed by
(seed, epoch), so the position it hands out holds only the batches done, the epoch's running sums, the
state of the dropout's random generator and, in a stateful run (--stateful), the states the last batch
ended in, which the next one starts from.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.data.batches import Batches
from rnngen.data.vocab import PADDING_ID
from rnngen.errors import ModelFolderError
from rnngen.network.forward import State
from rnngen.network.weights import EMBEDDING, Weights, stored_weights, trainable_names
from rnngen.train.checkpoints import EpochPosition
from rnngen.train.engines import BatchEnd, EngineState
from rnngen.train.numpy_engine.adam import Adam
from rnngen.train.numpy_engine.backprop import BatchScore, loss_and_gradients, score_batch
from rnngen.train.numpy_engine.initializers import initial_weights
from rnngen.train.numpy_engine.row_gradient import Gradients, RowGradient, catch_up
from rnngen.train.numpy_engine.sampled_softmax import Candidates, CandidateSampler
from rnngen.train.schedule import StepSchedule
from rnngen.train.setup import PreparedRun

# Where a checkpoint's variables hold the averaged weights (--ema), after the raw ones.
AVERAGE_PREFIX = "average/"
# Where they hold the step each row of a row-stepped weight's average was last brought up to.
AVERAGE_STEPS_PREFIX = "average_steps/"


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


@dataclass
class _EpochUnderWay:
    """The epoch being trained: how far it has got, its sums, and the generator of its dropout masks."""

    steps_done: int
    totals: _Totals
    dropout_random: np.random.Generator | None
    carried: list[State] | None = None  # a stateful run's states after the last batch done

    def position(self) -> EpochPosition:
        random_state = None if self.dropout_random is None else self.dropout_random.bit_generator.state
        state: dict[str, Any] = {"totals": asdict(self.totals), "dropout_random": random_state}
        if self.carried is not None:
            state["carried_states"] = _encoded_states(self.carried)
        return EpochPosition(self.steps_done, state)


def _stepped_rows(gradients: Gradients, name: str) -> np.ndarray:
    """The rows a step moved of a weight whose gradient comes as a RowGradient (under a sampled softmax)."""
    gradient = gradients[name]
    assert isinstance(gradient, RowGradient), f"{name}'s gradient is not kept by rows"
    return gradient.rows


def _encoded_states(states: list[State]) -> list[list[dict[str, Any]]]:
    """Carried states as JSON values that give back the very same floats (a checkpoint's position)."""
    return [
        [
            {"shape": list(array.shape), "float32": base64.b64encode(array.astype(np.float32).tobytes()).decode()}
            for array in layer
        ]
        for layer in states
    ]


def _decoded_states(encoded: list[list[dict[str, Any]]]) -> list[State]:
    return [
        tuple(
            np.frombuffer(base64.b64decode(array["float32"]), dtype=np.float32).reshape(array["shape"]).copy()
            for array in layer
        )
        for layer in encoded
    ]


class NumpySession:
    """One run's model and optimizer in numpy."""

    def __init__(self, run: PreparedRun) -> None:
        self.run = run
        self.config = run.model_config
        self.names = trainable_names(self.config)  # the trainable arrays, in checkpoint order
        self.model_weights: Weights = initial_weights(self.config, run.training.seed, run.initial_output_bias())
        self.optimizer = Adam(self.model_weights, run.training.learning_rate, run.training.clip_norm)
        self.schedule = StepSchedule.for_training(run.training, len(run.training_plan.batches))
        # The exponential moving average of the weights (--ema): what is validated and saved; None when off.
        # The prepared run's settings are resolved: None (chosen by the corpus) never reaches an engine.
        self.ema = run.training.ema or 0.0
        self.average: Weights | None = self._copy(self.model_weights) if self.ema > 0 else None
        # Under a sampled softmax the embedding's rows step alone (its gradient is a RowGradient); with an
        # average, the step each of its rows' average was last brought up to (row_gradient.catch_up).
        self.average_steps: dict[str, np.ndarray] = {}
        if self.average is not None and run.training.sampled_softmax:
            self.average_steps[EMBEDDING] = np.ones(self.config.vocab_size, np.int64)
        self.under_way: _EpochUnderWay | None = None
        # The candidates' sampler of a sampled softmax (--sampled-softmax); None: every step scores all words.
        self.sampler: CandidateSampler | None = None
        if run.training.sampled_softmax:
            self.sampler = CandidateSampler.from_counts(run.target_counts, run.training.sampled_softmax)
        # Words seen once read as unknown in training (--unk-singletons); None when none are.
        self.unknown_singletons = run.unknown_singletons

    @staticmethod
    def _copy(weights: Weights) -> Weights:
        return {name: array.copy() for name, array in weights.items()}

    @property
    def evaluated_weights(self) -> Weights:
        """The weights validation, early stopping and the saved model use: the average, when kept (its
        rows that waited for a step brought up to date first)."""
        if self.average is None:
            return self.model_weights
        for name, steps in self.average_steps.items():
            every_row = np.arange(len(steps))
            catch_up(
                self.average[name], self.model_weights[name], steps, every_row, self.optimizer.iterations, self.ema
            )
        return self.average

    def _catch_up_average(self, gradients: Gradients) -> None:
        """Before a step: bring the average of the rows it will move up to the step before it."""
        if self.average is None or self.optimizer.iterations == 0:
            return
        for name, steps in self.average_steps.items():
            rows = _stepped_rows(gradients, name)
            catch_up(self.average[name], self.model_weights[name], steps, rows, self.optimizer.iterations, self.ema)

    def _update_average(self, gradients: Gradients) -> None:
        """average += (1 - decay)(weights - average); the first step's weights start it, as Keras's
        optimizers start their use_ema average, so the random initial weights weigh nothing. Of a
        row-stepped weight, the rows the step moved alone (the others catch up when read)."""
        if self.average is None:
            return
        if self.optimizer.iterations == 1:
            self.average = self._copy(self.model_weights)
            return
        share = np.float32(1.0 - self.ema)
        for name, average in self.average.items():
            if name in self.average_steps:
                rows = _stepped_rows(gradients, name)
                average[rows] += (self.model_weights[name][rows] - average[rows]) * share
                self.average_steps[name][rows] = self.optimizer.iterations
            else:
                average += (self.model_weights[name] - average) * share

    @property
    def learning_rate(self) -> float:
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate = value

    def train_epoch(self, epoch: int, batch_end: BatchEnd, start: EpochPosition | None = None) -> dict[str, float]:
        batches = self.run.training_plan.batches
        batches.set_epoch(epoch)
        self.under_way = under_way = self._epoch_from(epoch, start)
        for index in range(under_way.steps_done, len(batches)):
            inputs, targets = batches.batch(index)
            if self.unknown_singletons is not None:
                inputs, targets = self.unknown_singletons.batch(inputs, targets, epoch, index)
            score, gradients = loss_and_gradients(
                self.model_weights,
                self.config,
                inputs,
                targets,
                under_way.dropout_random,
                self._candidates(epoch, index, targets),
                self._initial_states(batches, index, under_way.carried),
            )
            self._catch_up_average(gradients)
            self.optimizer.apply(self.model_weights, gradients, self.schedule.factor(self.optimizer.iterations))
            self._update_average(gradients)
            under_way.totals.add(score, len(inputs))
            if self.run.training.stateful:
                under_way.carried = score.end_states
            under_way.steps_done = index + 1
            if batch_end(index, under_way.totals.logs()):
                break
        return under_way.totals.logs()

    def _initial_states(self, batches: Batches, index: int, carried: list[State] | None) -> list[State] | None:
        """What batch ``index`` starts from: the states the batch before it ended in, when it goes on from
        that batch (stateful batches, track_batches.py); else zeros (None)."""
        return carried if carried is not None and batches.continues(index) else None

    def _candidates(self, epoch: int, index: int, targets: np.ndarray) -> Candidates | None:
        """Batch ``index``'s candidates for the sampled softmax, None without one. They are drawn from
        (seed, epoch, batch) alone, so a run resumed mid-epoch draws the same ones."""
        if self.sampler is None:
            return None
        random = np.random.default_rng([self.run.training.seed, epoch, 2, index])
        return self.sampler.candidates(targets[targets != PADDING_ID], random)

    def _epoch_from(self, epoch: int, start: EpochPosition | None) -> _EpochUnderWay:
        """Epoch ``epoch`` at its first batch, or where a checkpoint's position left it."""
        # Dropout's masks depend on (seed, epoch) alone, so a resumed run draws the same ones.
        random = np.random.default_rng([self.run.training.seed, epoch, 1]) if self.config.draws_masks else None
        if start is None:
            return _EpochUnderWay(0, _Totals(), random)
        state: dict[str, Any] = start.engine_state
        try:
            totals = _Totals(**state["totals"])
            saved_random = state["dropout_random"]
            if (random is None) != (saved_random is None):
                raise ValueError("dropout's generator does not fit this run")
            if random is not None:
                random.bit_generator.state = saved_random
            carried = None
            if self.run.training.stateful and start.steps_done > 0:
                carried = _decoded_states(state["carried_states"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise ModelFolderError(
                "the checkpoint's epoch position is damaged; train without --resume to start over"
            ) from None
        return _EpochUnderWay(start.steps_done, totals, random, carried)

    def epoch_position(self) -> EpochPosition | None:
        return None if self.under_way is None else self.under_way.position()

    def validate(self) -> dict[str, float]:
        assert self.run.validation_plan is not None
        return self._score(self.run.validation_plan.batches).logs("val_")

    def _score(self, batches: Batches) -> _Totals:
        totals = _Totals()
        carried: list[State] | None = None
        # Read once: reading the average brings its waiting rows up to date, a pass over the vocabulary.
        weights = self.evaluated_weights
        for index in range(len(batches)):
            inputs, targets = batches.batch(index)
            initial = self._initial_states(batches, index, carried)
            score = score_batch(weights, self.config, inputs, targets, initial)
            totals.add(score, len(inputs))
            carried = score.end_states
        return totals

    def weights(self) -> list[np.ndarray]:
        """A copy of the evaluated weights (the average, with --ema)."""
        return [self.evaluated_weights[name].copy() for name in self.names]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Take back weights that ``weights`` gave (early stopping's best), to export them."""
        self.model_weights = {name: array.astype(np.float32) for name, array in zip(self.names, weights, strict=True)}
        if self.average is not None:
            self.average = self._copy(self.model_weights)
            for steps in self.average_steps.values():
                steps[:] = self.optimizer.iterations

    def _variable_paths(self) -> list[str]:
        averages = [] if self.average is None else [AVERAGE_PREFIX + name for name in self.names]
        return [*self.names, *averages]

    def _steps_paths(self) -> list[str]:
        return [AVERAGE_STEPS_PREFIX + name for name in self.average_steps]

    def state(self) -> EngineState:
        # The average as it stands, rows behind and all, with the steps they are at: bringing them up to
        # date here would round differently from the uninterrupted run, which a resumed run must match.
        averages = [] if self.average is None else [self.average[name] for name in self.names]
        return EngineState(
            variable_paths=[*self._variable_paths(), *self._steps_paths()],
            variables=[
                *(self.model_weights[name] for name in self.names),
                *averages,
                *self.average_steps.values(),
            ],
            optimizer=self.optimizer.state(self.names),
        )

    def restore(self, state: EngineState) -> None:
        names, count = self.names, len(self.names)
        paths, variables = state.variable_paths, state.variables
        # A checkpoint written before rows were stepped alone has no steps: its average is up to date.
        steps: dict[str, np.ndarray] = {}
        stepped = len(self.average_steps)
        if stepped and paths[-stepped:] == self._steps_paths():
            steps = dict(zip(paths[-stepped:], variables[-stepped:], strict=True))
            paths, variables = paths[:-stepped], variables[:-stepped]
        fits = paths == self._variable_paths() and all(
            array.shape == self.model_weights[path.removeprefix(AVERAGE_PREFIX)].shape
            for path, array in zip(paths, variables, strict=True)
        )
        if not fits or len(state.optimizer) != 2 + 2 * count:
            raise ModelFolderError("the checkpoint does not fit this model; train without --resume to start over")
        self.model_weights = {
            name: array.astype(np.float32) for name, array in zip(names, variables[:count], strict=True)
        }
        if self.average is not None:
            self.average = {
                name: array.astype(np.float32) for name, array in zip(names, variables[count:], strict=True)
            }
        self.optimizer.restore(names, state.optimizer)
        for name in self.average_steps:
            saved = steps.get(AVERAGE_STEPS_PREFIX + name)
            self.average_steps[name] = (
                np.full(self.config.vocab_size, self.optimizer.iterations, np.int64)
                if saved is None
                else saved.astype(np.int64)
            )

    def export(self) -> Weights:
        return stored_weights(self.evaluated_weights, self.config)

    def write_extra(self, folder: Path) -> None:
        """Nothing: writing a Keras model needs Keras (`rnngen export --keras` writes one on demand)."""

    def stop_signal(self, caught: list[int]) -> int | None:
        return caught[0] if caught else None
