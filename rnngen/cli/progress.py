"""Shows training progress on stderr: a rich progress bar on a terminal, one line per epoch in a log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Column

from rnngen.train.reporting import RunClock

if TYPE_CHECKING:
    from rnngen.train.reporting import DataReport

LINE_INTERVAL_SECONDS = 1.0


class RichTrainingReporter:
    """A TrainingReporter that leaves a line per finished epoch, with the epoch's time and the run's
    time left; on a terminal it also draws a bar for the epoch under way."""

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
        self.last_line_at = 0.0
        self.unprinted_line: str | None = None  # a finished epoch's line held back on a terminal

    def on_data_read(self, report: DataReport) -> None:
        for line in report.read:
            self.console.print(line, highlight=False, soft_wrap=True)
        for warning in report.warnings:
            self.console.print(f"rnngen: warning: {warning}", highlight=False, soft_wrap=True)

    def on_train_begin(self, epochs: int, steps_per_epoch: int, engine: str, may_stop_early: bool) -> None:
        self.epochs = epochs
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.may_stop_early = may_stop_early
        self.clock = RunClock(epochs)
        batches = f"{steps_per_epoch:,} batch{'es' if steps_per_epoch != 1 else ''}"
        self.print_line(f"training with the {engine}: {batches} an epoch, at most {epochs} epochs")
        if self.live:
            self.progress.start()
        self.task = self.progress.add_task("train", total=steps_per_epoch, epoch=f"1/{epochs}", metrics="", left="")

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        if not self.live:
            return
        self.progress.update(
            self.task,
            completed=step + 1,
            epoch=f"{epoch + 1}/{self.epochs}",
            metrics=describe_metrics(logs),
            left=self.time_left(self.clock.seconds_left(epoch, (step + 1) / self.steps_per_epoch)),
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        seconds = self.clock.epoch_end()
        seconds_left = self.clock.seconds_left(epoch + 1)
        line = f"epoch {epoch + 1}/{self.epochs}  {describe_metrics(logs)}  took {format_duration(seconds)}"
        if epoch + 1 < self.epochs:
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

    def print_line(self, text: str) -> None:
        """One line, never wrapped (a log's width means nothing) and printed as written: no markup,
        no highlighting; on a terminal it goes above the bar."""
        self.progress.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)


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
