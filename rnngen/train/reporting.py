"""What a training run tells its reporter, the same for every engine: the figures of each batch and
epoch, the perplexities derived from the per-token cross-entropy, and words per second, measured one
way (the targets of the steps done over the time spent on them, validation not included)."""

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

    def on_train_begin(self, epochs: int, steps_per_epoch: int, engine: str) -> None:
        """Training starts: ``engine`` says which engine computes the steps and why it was chosen."""

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
