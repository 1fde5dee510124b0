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


class TrainingReporter(Protocol):
    """Receives progress; the core never prints, the command line decides how to show it."""

    def on_train_begin(self, epochs: int, steps_per_epoch: int, engine: str, may_stop_early: bool) -> None:
        """Training starts: ``engine`` says which engine computes the steps and why it was chosen;
        ``may_stop_early`` whether early stopping may end it before ``epochs``."""

    def on_data_read(self, report: DataReport) -> None:
        """What the run read (the corpus, the validation text) and what looks wrong in it; told right
        after ``on_train_begin``, before the first batch, so that the engine is named first."""

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...

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

    def __init__(self, targets: int, steps: int) -> None:
        self.targets = targets
        self.steps = steps
        self.started = time.monotonic()
        self.seconds = 0.0

    def with_rate(self, logs: dict[str, float], steps_done: int) -> dict[str, float]:
        """The logs with their perplexities and the words per second of the steps done so far.

        Batches hold similar numbers of targets on average, so the share of steps done is a fair
        share of the epoch's targets.
        """
        values = with_perplexities(logs)
        elapsed = self.seconds or time.monotonic() - self.started
        if elapsed > 0:
            values["words_per_second"] = self.targets * steps_done / self.steps / elapsed
        return values

    def stop(self) -> float:
        """End the timing (before validation); the seconds the epoch's steps took."""
        self.seconds = time.monotonic() - self.started
        return self.seconds


@dataclass
class RunClock:
    """Estimates a run's time left: the mean duration of the epochs timed so far (validation and
    checkpoint included) times the epochs still allowed, plus what is left of the current epoch.

    An epoch is timed from the end of the one before (or from the clock's start), so the estimate
    covers every second the run spends, not only its steps. Before any epoch has ended, the current
    epoch's pace so far stands in for the mean.
    """

    epochs: int  # the most epochs the run may train (its last index is epochs - 1)
    epoch_started: float = field(default_factory=time.monotonic)
    epoch_seconds: list[float] = field(default_factory=list)

    def epoch_end(self) -> float:
        """Close the current epoch; the seconds it took."""
        now = time.monotonic()
        seconds = now - self.epoch_started
        self.epoch_seconds.append(seconds)
        self.epoch_started = now
        return seconds

    def seconds_left(self, epoch: int, share_done: float = 0.0) -> float | None:
        """Seconds until the end of the last allowed epoch, with epoch ``epoch`` (0-based) under way
        and ``share_done`` of its steps done (``epoch`` past the last: none left); None while nothing
        has been timed yet."""
        if epoch >= self.epochs:
            return 0.0
        if self.epoch_seconds:
            seconds_per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds)
        elif share_done > 0:
            seconds_per_epoch = (time.monotonic() - self.epoch_started) / share_done
        else:
            return None
        return seconds_per_epoch * ((1.0 - share_done) + self.epochs - epoch - 1)
