"""Shows training progress on stderr as a rich progress bar (epoch, batch, loss, accuracy)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from rnngen.train.reporting import DataReport

LINE_INTERVAL_SECONDS = 1.0


class RichTrainingReporter:
    """A TrainingReporter that draws one bar per epoch and leaves a line per finished epoch."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        # A bar only makes sense on a terminal; in a log file the per-epoch lines are enough.
        self.live = self.console.is_terminal
        self.epochs = 0
        self.task: TaskID | None = None
        self.last_line_at = 0.0

    def on_data_read(self, report: DataReport) -> None:
        for line in report.read:
            self.console.print(line, highlight=False, soft_wrap=True)
        for warning in report.warnings:
            self.console.print(f"rnngen: warning: {warning}", highlight=False, soft_wrap=True)

    def on_train_begin(self, epochs: int, steps_per_epoch: int, engine: str) -> None:
        self.epochs = epochs
        batches = f"{steps_per_epoch:,} batch{'es' if steps_per_epoch != 1 else ''}"
        self.console.print(
            f"training with the {engine}: {batches} an epoch, at most {epochs} epochs", highlight=False, soft_wrap=True
        )
        if self.live:
            self.progress.start()
        self.task = self.progress.add_task("train", total=steps_per_epoch, epoch=f"1/{epochs}", metrics="")

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        if not self.live:
            return
        self.progress.update(
            self.task, completed=step + 1, epoch=f"{epoch + 1}/{self.epochs}", metrics=describe_metrics(logs)
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        assert self.task is not None
        # Fast epochs (a tiny corpus) would flood the terminal: keep at most about a line a second.
        now = time.monotonic()
        if now - self.last_line_at >= LINE_INTERVAL_SECONDS or epoch + 1 == self.epochs:
            self.progress.console.print(f"epoch {epoch + 1}/{self.epochs}  {describe_metrics(logs)}", highlight=False)
            self.last_line_at = now
        self.progress.reset(self.task, epoch=f"{epoch + 2}/{self.epochs}", metrics="")

    def on_train_end(self) -> None:
        if self.live:
            self.progress.stop()


# The shown loss is the cross-entropy per predicted token (of which ppl is the exponential), not
# Keras's epoch loss, which averages batch means.
METRIC_FORMATS = {
    "cross_entropy": "loss {:.4f}",
    "perplexity": "ppl {:.2f}",
    "accuracy": "acc {:.4f}",
    "val_cross_entropy": "val_loss {:.4f}",
    "val_perplexity": "val_ppl {:.2f}",
    "val_accuracy": "val_acc {:.4f}",
    "bits_per_char": "{:.3f} bits/char",
    "val_bits_per_char": "val {:.3f} bits/char",
    "words_per_second": "{:,.0f} words/s",
}


def describe_metrics(logs: dict[str, float]) -> str:
    """Metrics in a fixed order: training loss, perplexity, accuracy, their validation twins, speed."""
    return "  ".join(text.format(logs[name]) for name, text in METRIC_FORMATS.items() if name in logs)
