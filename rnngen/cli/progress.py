"""Shows training progress on stderr: a rich progress bar on a terminal, one line per epoch in a log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Column

from rnngen.config import duration_text
from rnngen.train.reporting import RunClock, RunOutline

if TYPE_CHECKING:
    from rnngen.train.reporting import DataReport

LINE_INTERVAL_SECONDS = 1.0
# In a log, an epoch longer than this also gets a line about every this often while it trains.
LOG_PROGRESS_SECONDS = 60.0


class RichTrainingReporter:
    """A TrainingReporter that leaves a line per finished epoch, with the epoch's time and the run's
    time left; on a terminal it also draws a bar for the epoch under way, with the time left of the
    epoch and of the run, and in a log a long epoch gets a line a minute."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[left]}", table_column=Column(no_wrap=True)),
            # On a narrow terminal the bar and the figures share what the rest leaves, the figures cut short.
            TextColumn("{task.fields[metrics]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=3)),
            console=self.console,
            transient=True,
            expand=True,
        )
        # A bar only makes sense on a terminal; in a log (a file, CI, nohup) every epoch gets its line.
        self.live = self.console.is_terminal
        self.epochs = 0
        self.steps_per_epoch = 1
        self.may_stop_early = False
        self.clock = RunClock(0)
        self.task: TaskID | None = None
        self.last_line_at = 0.0  # when the last epoch's line was printed
        self.printed_at = 0.0  # when any line was
        self.unprinted_line: str | None = None  # a finished epoch's line held back on a terminal
        self.epoch_steps = 0  # the batches the epoch under way has done

    def on_data_read(self, report: DataReport) -> None:
        for line in report.read:
            self.console.print(line, highlight=False, soft_wrap=True)
        for warning in report.warnings:
            self.console.print(f"rnngen: warning: {warning}", highlight=False, soft_wrap=True)

    def on_train_begin(self, outline: RunOutline) -> None:
        self.epochs = outline.epochs
        self.steps_per_epoch = steps = max(outline.steps_per_epoch, 1)
        self.may_stop_early = outline.may_stop_early
        deadline = None if outline.max_time is None else time.monotonic() + outline.max_time
        # A run resumed in the middle of an epoch times that epoch from where it goes on.
        self.epoch_steps = outline.steps_done % steps
        self.clock = RunClock(outline.length, deadline=deadline, start_share=self.epoch_steps / steps)
        self.print_line(f"training with the {outline.engine}: {describe_limits(outline)}")
        if self.live:
            self.progress.start()
        epoch = f"{outline.steps_done // steps + 1}/{self.epochs}"
        self.task = self.progress.add_task(
            "train", total=steps, completed=self.epoch_steps, epoch=epoch, metrics="", left=""
        )

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        self.epoch_steps = step + 1
        share_done = self.epoch_steps / self.steps_per_epoch
        if self.live:
            self.progress.update(
                self.task,
                completed=self.epoch_steps,
                epoch=f"{epoch + 1}/{self.epochs}",
                metrics=describe_metrics(logs),
                left=self.times_left(epoch, share_done),
            )
            return
        if time.monotonic() - self.printed_at >= LOG_PROGRESS_SECONDS and self.epoch_steps < self.steps_per_epoch:
            batches = f"{self.epoch_steps:,}/{self.steps_per_epoch:,} batches"
            left = self.times_left(epoch, share_done)
            self.print_line(f"epoch {epoch + 1}/{self.epochs}  {batches}  {describe_metrics(logs)}  {left}".rstrip())

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        seconds = self.clock.epoch_end()
        seconds_left = self.clock.seconds_left(epoch + 1)
        line = f"epoch {epoch + 1}/{self.epochs}  {describe_metrics(logs)}  took {format_duration(seconds)}"
        if self.epoch_steps < self.steps_per_epoch:
            line += f" for {self.epoch_steps:,} of {self.steps_per_epoch:,} batches"
        elif epoch + 1 < self.epochs and seconds_left != 0.0:  # none left: a budget ends the run here
            line += f"  {self.time_left(seconds_left)}"
        # Fast epochs (a tiny corpus) would flood a terminal: there, keep at most about a line a second.
        # A log keeps every epoch's line: it is read afterwards, and one line an epoch is its record.
        now = time.monotonic()
        if not self.live or now - self.last_line_at >= LINE_INTERVAL_SECONDS or epoch + 1 == self.epochs:
            self.print_line(line)
            self.last_line_at = now
            self.unprinted_line = None
        else:
            self.unprinted_line = line
        self.epoch_steps = 0
        if epoch + 1 < self.epochs:
            self.progress.reset(
                self.task, epoch=f"{epoch + 2}/{self.epochs}", metrics="", left=self.time_left(seconds_left)
            )

    def on_train_end(self) -> None:
        # The last epoch run (early stopping may end before the last allowed) always gets its line.
        if self.unprinted_line is not None:
            self.print_line(self.unprinted_line)
        if self.live:
            self.progress.stop()

    def time_left(self, seconds: float | None) -> str:
        """The run's time left, as an upper bound when early stopping may end it sooner."""
        if seconds is None:
            return ""
        return f"~{format_duration(seconds)} left" + (" at most" if self.may_stop_early else "")

    def times_left(self, epoch: int, share_done: float) -> str:
        """The time left of the epoch under way and of the run: ``epoch ~40s, run ~1h05m left``."""
        run_left = self.time_left(self.clock.seconds_left(epoch, share_done))
        epoch_left = self.clock.epoch_seconds_left(epoch, share_done)
        if epoch_left is None or not run_left:
            return run_left
        return f"epoch ~{format_duration(epoch_left)}, run {run_left}"

    def print_line(self, text: str) -> None:
        """One line, never wrapped (a log's width means nothing) and printed as written: no markup,
        no highlighting; on a terminal it goes above the bar."""
        self.progress.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)
        self.printed_at = time.monotonic()


def describe_limits(outline: RunOutline) -> str:
    """An epoch's batches and what may end the run: ``20 batches an epoch, at most 5 epochs or 50
    updates or 30m``; a resumed run's updates so far."""
    steps = outline.steps_per_epoch
    limits = [f"{outline.epochs} epochs"]
    if outline.max_steps is not None:
        limits.append(f"{outline.max_steps:,} updates")
    if outline.max_time is not None:
        limits.append(duration_text(outline.max_time))
    text = f"{steps:,} batch{'es' if steps != 1 else ''} an epoch, at most {' or '.join(limits)}"
    if outline.steps_done:
        text += f", going on after update {outline.steps_done:,}"
    return text


def format_duration(seconds: float) -> str:
    """A short duration: 0.04s, 4.2s, 12s, 1m20s, 2h05m."""
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


# Each figure is shown under the name that config.json and `rnngen info` give it, at this precision,
# so one name means one number everywhere. The cross-entropy is per predicted token (perplexity is
# its exponential), not Keras's epoch loss, which averages batch means.
METRIC_FORMATS = {
    "cross_entropy": "{:.4f}",
    "perplexity": "{:.2f}",
    "accuracy": "{:.4f}",
    "val_cross_entropy": "{:.4f}",
    "val_perplexity": "{:.2f}",
    "val_accuracy": "{:.4f}",
    "bits_per_char": "{:.3f}",
    "val_bits_per_char": "{:.3f}",
}


def describe_metrics(logs: dict[str, float]) -> str:
    """Figures in a fixed order: training loss, perplexity, accuracy, their validation twins, bits per
    character, then the speed."""
    parts = [f"{name} {text.format(logs[name])}" for name, text in METRIC_FORMATS.items() if name in logs]
    if "words_per_second" in logs:
        parts.append(f"{logs['words_per_second']:,.0f} words/s")
    return "  ".join(parts)
