"""Shows training progress on stderr as a rich progress bar (epoch, batch, loss, accuracy)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

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
