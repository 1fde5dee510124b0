"""When a training command's budget ends it, and when a checkpoint is due in the middle of an epoch.

After every batch the run's updates (a resumed run's earlier ones included) are counted against
--max-steps, this command's seconds against --max-time, and the seconds since the last checkpoint
against --checkpoint-every; a budget that ended training is described in words for the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rnngen.config import TrainingBudget, duration_text
from rnngen.errors import UsageError


@dataclass(frozen=True)
class BudgetStop:
    """A budget that ended training after ``steps_done`` of epoch ``epoch``'s batches (0-based epoch)."""

    budget: str  # the budget in words: "the --max-time budget of 30m"
    epoch: int
    steps_done: int
    steps_per_epoch: int

    @property
    def mid_epoch(self) -> bool:
        return self.steps_done < self.steps_per_epoch

    def reason(self) -> str:
        """Why training ended, as the summary and config.json's ``stop_reason`` give it."""
        if self.mid_epoch:
            batches = f"{self.steps_done:,} of {self.steps_per_epoch:,} batches"
            return f"{self.budget} was reached during epoch {self.epoch + 1} ({batches})"
        return f"{self.budget} was reached at the end of epoch {self.epoch + 1}"


class BudgetWatch:
    """Counts a run's updates and this command's time against its budget."""

    def __init__(
        self,
        budget: TrainingBudget,
        steps_done: int,
        started: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``steps_done``: the updates made before this command; ``started``: when it began, by ``clock``."""
        self.budget = budget
        self.steps_done = steps_done
        self.started = started
        self.clock = clock
        self.last_checkpoint = clock()

    def check_start(self) -> None:
        """Refuse to go on when --max-steps allows no more updates than the interrupted run made."""
        max_steps = self.budget.max_steps
        if max_steps is not None and self.steps_done >= max_steps:
            raise UsageError(
                f"cannot resume: the run has made {self.steps_done:,} updates already, as many as "
                f"--max-steps {max_steps} allows; give a larger --max-steps, or leave it out"
            )

    def batch_done(self) -> None:
        self.steps_done += 1

    def spent(self) -> str | None:
        """The budget that is spent, in words; None while training may go on."""
        max_steps, max_time = self.budget.max_steps, self.budget.max_time
        if max_steps is not None and self.steps_done >= max_steps:
            return f"the --max-steps budget of {max_steps:,} updates"
        if max_time is not None and self.clock() - self.started >= max_time:
            return f"the --max-time budget of {duration_text(max_time)}"
        return None

    def checkpoint_due(self) -> bool:
        """Whether --checkpoint-every's time has passed since the last checkpoint."""
        every = self.budget.checkpoint_every
        return every is not None and self.clock() - self.last_checkpoint >= every

    def checkpoint_written(self) -> None:
        self.last_checkpoint = self.clock()
