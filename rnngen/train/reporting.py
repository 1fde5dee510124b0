"""What a training run tells its reporter, the same for every engine: the figures of each batch and
epoch, the perplexities derived from the per-token cross-entropy, words per second, measured one
way (the targets of the steps done over the time spent on them, validation not included), and the
run's time left, estimated one way."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class DataReport:
    """What a run read before training: a line per text (which, how many files, lines and tokens), and
    what looks wrong in the data."""

    read: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunOutline:
    """What a run sets out to do, as its reporter hears it when training starts."""

    epochs: int  # the most epochs --epochs allows
    steps_per_epoch: int
    engine: str  # which engine computes the steps, and why it was chosen
    may_stop_early: bool  # whether early stopping may end the run before ``epochs``
    steps_done: int = 0  # updates the interrupted run this one goes on from had made
    max_steps: int | None = None  # --max-steps: the updates the run may make in all
    max_time: float | None = None  # --max-time: the seconds this command may train

    @property
    def length(self) -> float:
        """How many epochs the run may train: ``epochs``, or fewer (a fraction of one too) when
        --max-steps ends it sooner."""
        if self.max_steps is None:
            return float(self.epochs)
        return min(float(self.epochs), self.max_steps / max(self.steps_per_epoch, 1))


class TrainingReporter(Protocol):
    """Receives progress; the core never prints, the command line decides how to show it."""

    def on_train_begin(self, outline: RunOutline) -> None: ...

    def on_data_read(self, report: DataReport) -> None:
        """What the run read (the corpus, the validation text) and what looks wrong in it; told right
        after ``on_train_begin``, before the first batch, so that the engine is named first."""

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """An epoch ended: after all its batches, or after some when a budget ended training."""

    def on_train_end(self) -> None: ...


# Perplexity comes from the per-token cross-entropy (summed over real targets, then divided by their
# count), not from the loss averaged over batches.
PERPLEXITY_OF = {"cross_entropy": "perplexity", "val_cross_entropy": "val_perplexity"}
# exp(50) is already far beyond any useful perplexity; larger cross-entropies would overflow.
LARGEST_CROSS_ENTROPY = 50.0


def perplexity(cross_entropy: float) -> float:
    """exp of the mean cross-entropy per token, in nats."""
    return math.exp(min(cross_entropy, LARGEST_CROSS_ENTROPY))


def with_perplexities(values: dict[str, float]) -> dict[str, float]:
    """The values plus the training and validation perplexities, where their cross-entropies are present."""
    extended = dict(values)
    for source, name in PERPLEXITY_OF.items():
        if source in values:
            extended[name] = perplexity(values[source])
    return extended


class EpochClock:
    """Times one epoch's training steps and turns them into words (targets) per second."""

    def __init__(self, targets: int, steps: int, first_step: int = 0) -> None:
        """``first_step``: the batch this process starts the epoch at (a resumed epoch's)."""
        self.targets = targets
        self.steps = steps
        self.first_step = first_step
        self.started = time.monotonic()
        self.seconds = 0.0

    def with_rate(self, logs: dict[str, float], steps_done: int) -> dict[str, float]:
        """The logs with their perplexities and the words per second of the steps done so far (in
        this process: a resumed epoch's earlier steps took no time here).

        Batches hold similar numbers of targets on average, so the share of steps done is a fair
        share of the epoch's targets.
        """
        values = with_perplexities(logs)
        elapsed = self.seconds or time.monotonic() - self.started
        if elapsed > 0:
            values["words_per_second"] = self.targets * (steps_done - self.first_step) / self.steps / elapsed
        return values

    def stop(self) -> float:
        """End the timing (before validation); the seconds the epoch's steps took."""
        self.seconds = time.monotonic() - self.started
        return self.seconds


@dataclass
class RunClock:
    """Estimates the time left of a run and of its epoch under way.

    The run's: the mean duration of the epochs timed so far (validation and checkpoint included)
    times the epochs still to train; before any epoch has ended, the current epoch's pace so far
    stands in for the mean. The epoch's: its own pace so far times the share of its batches left.
    Neither goes beyond the --max-time deadline, and the run's last epoch ends where --max-steps
    ends it (``epochs`` is then a fraction).

    An epoch is timed from the end of the one before (or from the clock's start), so the estimate
    covers every second the run spends, not only its steps.
    """

    epochs: float  # the epochs the run may train (the last one's index is below this)
    epoch_started: float = field(default_factory=time.monotonic)
    epoch_seconds: list[float] = field(default_factory=list)
    deadline: float | None = None  # when --max-time ends the run, by time.monotonic
    # The share of the epoch under way done before it was timed: a resumed epoch's batches done before.
    start_share: float = 0.0

    def epoch_end(self) -> float:
        """Close the current epoch; the seconds it took."""
        now = time.monotonic()
        seconds = now - self.epoch_started
        # A resumed epoch was timed for its rest only; the mean is of whole epochs.
        self.epoch_seconds.append(seconds / max(1.0 - self.start_share, 1e-9))
        self.epoch_started = now
        self.start_share = 0.0
        return seconds

    def seconds_left(self, epoch: int, share_done: float = 0.0) -> float | None:
        """Seconds until the run ends, with epoch ``epoch`` (0-based) under way and ``share_done``
        of its steps done (``epoch`` at or past the run's end: none left); None while nothing has
        been timed yet."""
        per_epoch = self._mean_epoch_seconds() or self._epoch_pace(share_done)
        return self._capped(per_epoch, self.epochs - epoch - share_done)

    def epoch_seconds_left(self, epoch: int, share_done: float) -> float | None:
        """Seconds until the epoch under way ends (or the run, when it ends within the epoch)."""
        per_epoch = self._epoch_pace(share_done) or self._mean_epoch_seconds()
        return self._capped(per_epoch, min(1.0, self.epochs - epoch) - share_done)

    def _mean_epoch_seconds(self) -> float | None:
        return sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds else None

    def _epoch_pace(self, share_done: float) -> float | None:
        """The seconds a whole epoch takes at the current epoch's pace so far."""
        timed = share_done - self.start_share
        return (time.monotonic() - self.epoch_started) / timed if timed > 0 else None

    def _capped(self, seconds_per_epoch: float | None, epochs_left: float) -> float | None:
        if epochs_left <= 0:
            return 0.0
        if seconds_per_epoch is None:
            return None
        seconds = seconds_per_epoch * epochs_left
        if self.deadline is not None:
            seconds = min(seconds, max(self.deadline - time.monotonic(), 0.0))
        return seconds
