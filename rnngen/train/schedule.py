"""The learning rate at each step: a linear warm-up, then the epoch's rate (``--lr-schedule decay``)
or a cosine or straight line from the full rate down to zero at the run's last step.

The factor depends on the number of updates done alone, which the optimizer counts and checkpoints
keep, so a resumed run steps with the rates an uninterrupted one would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnngen.config import ScheduleKind, TrainingConfig


@dataclass(frozen=True)
class StepSchedule:
    """The factor the run's rate is multiplied by at each step (0-based: the updates done before it)."""

    kind: ScheduleKind
    warmup_steps: int
    total_steps: int  # the run's updates in all; cosine and linear reach zero there

    @classmethod
    def for_training(cls, training: TrainingConfig, steps_per_epoch: int) -> StepSchedule:
        """The schedule of a run of ``training.epochs`` epochs of ``steps_per_epoch`` updates. Budgets
        (--max-steps, --max-time) play no part: they belong to a command and may differ between a run's
        commands, and must not change what a step computes."""
        return cls(training.schedule, training.warmup_steps or 0, training.planned_epochs * steps_per_epoch)

    @property
    def is_constant(self) -> bool:
        """Whether every step trains at the epoch's rate (no warm-up, the decay schedule)."""
        return self.kind is ScheduleKind.decay and self.warmup_steps == 0

    def factor(self, step: int) -> float:
        """The factor at step ``step``: (step + 1) / warmup_steps during the warm-up (the first step
        already moves), then 1 (decay) or the cosine's or line's share of the steps left."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind is ScheduleKind.decay:
            return 1.0
        # As Hugging Face's get_cosine_schedule_with_warmup and get_linear_schedule_with_warmup.
        progress = min(max((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0), 1.0)
        if self.kind is ScheduleKind.cosine:
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress
