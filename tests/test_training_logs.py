"""What training leaves in a log: one unbroken line per epoch with its time and the run's time left,
and figures named and rounded alike in the progress lines, the summary and `rnngen info`."""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from rnngen.cli.progress import RichTrainingReporter, describe_metrics, format_duration
from rnngen.store.card import kept_figures
from rnngen.train.reporting import RunClock, RunOutline

from .conftest import SEED_CORPUS, Completed, rnngen

EPOCHS = 8
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  (.*)$")
TIME_LEFT = re.compile(r"  ~(\d+(\.\d+)?s|\d+m\d\ds|\d+h\d\dm) left at most$")


@dataclass(frozen=True)
class LoggedRun:
    workspace: Path
    training: Completed
    card: dict


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> LoggedRun:
    """`rnngen train` on the seed corpus, validated on itself, with stderr captured (a log, not a
    terminal) and 40 columns, narrow enough that a wrapped line would break inside a field."""
    workspace = tmp_path_factory.mktemp("logged")
    shutil.copy(SEED_CORPUS, workspace / "seed.txt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "40")
        training = rnngen("train", "seed.txt", "--valid", "seed.txt", "--epochs", str(EPOCHS), cwd=workspace)
    assert training.returncode == 0, training.stderr
    info = rnngen("info", "--json", cwd=workspace)
    assert info.returncode == 0, info.stderr
    return LoggedRun(workspace, training, json.loads(info.stdout))


def epoch_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if EPOCH_LINE.match(line)]


def shown_figures(text: str) -> dict[str, str]:
    """The ``name value`` pairs of a progress line or summary, as printed."""
    return dict(re.findall(r"(\b[a-z_]+) (-?\d+\.\d+)\b", text))


def test_a_log_gets_one_unbroken_line_per_epoch_with_its_time_and_the_time_left(logged_run: LoggedRun) -> None:
    stderr = logged_run.training.stderr
    lines = epoch_lines(stderr)
    epochs_run = logged_run.card["training"]["epochs_run"]
    assert [EPOCH_LINE.match(line).groups()[:2] for line in lines] == [  # type: ignore[union-attr]
        (str(epoch), str(EPOCHS)) for epoch in range(1, epochs_run + 1)
    ]
    for line in lines:
        figures = shown_figures(line)
        # Every figure with its number on the same line, whatever the width.
        assert set(figures) >= {"cross_entropy", "perplexity", "accuracy", "val_cross_entropy", "val_perplexity"}, line
        assert re.search(r"  took \d+(\.\d+)?s", line), line
    # Early stopping may end the run before --epochs: the time left is an upper bound. The last
    # allowed epoch has none left to show.
    assert all(TIME_LEFT.search(line) for line in lines[:-1]), lines
    assert "left" not in lines[-1] or epochs_run < EPOCHS
    # Nothing else in the log was cut either: every line is one of the known kinds.
    for line in stderr.splitlines():
        assert line.startswith(("training with the ", "read ", "epoch ", "rnngen: ")), line


def test_the_progress_lines_the_summary_and_info_give_one_figure_one_name(logged_run: LoggedRun) -> None:
    lines = logged_run.training.stderr.splitlines()
    kept = logged_run.card["training"]["kept_epoch"]
    summary = lines[-1]
    assert summary.startswith(f"rnngen: epoch {kept}: ")
    kept_line = epoch_lines(logged_run.training.stderr)[kept - 1]
    metrics = logged_run.card["metrics"]
    # Keras's batch-averaged loss is not among them: the loss shown is the cross-entropy per token.
    assert "loss" not in metrics and "val_loss" not in metrics
    for text in (summary, kept_line):
        figures = shown_figures(text)
        assert "val_cross_entropy" in figures
        for name, printed in figures.items():
            decimals = len(printed.split(".")[1])
            assert printed == f"{metrics[name]:.{decimals}f}", (name, text)
    assert shown_figures(summary)["val_bits_per_char"] == f"{metrics['val_bits_per_char']:.3f}"


def test_info_leaves_out_the_batch_averaged_losses_of_older_folders() -> None:
    older = {"loss": 2.1, "val_loss": 2.3, "cross_entropy": 2.0, "val_cross_entropy": 2.2, "epoch": 3}
    assert kept_figures(older) == {"cross_entropy": 2.0, "val_cross_entropy": 2.2, "epoch": 3}


def test_every_epoch_gets_its_line_in_a_log_however_fast() -> None:
    log = io.StringIO()
    reporter = RichTrainingReporter(Console(file=log, width=40, force_terminal=False))
    reporter.on_train_begin(RunOutline(50, 1, "numpy engine", may_stop_early=False))
    logs = {"cross_entropy": 2.0, "perplexity": 7.389, "accuracy": 0.25, "words_per_second": 12345.0}
    for epoch in range(50):
        reporter.on_batch_end(epoch, 0, logs)
        reporter.on_epoch_end(epoch, logs)
    reporter.on_train_end()
    lines = log.getvalue().splitlines()
    assert len(lines) == 51 and all(line.startswith(f"epoch {number}/50  ") for number, line in enumerate(lines[1:], 1))
    assert lines[1].endswith(" left") and "at most" not in lines[1]


def test_the_time_left_is_the_mean_epoch_times_the_epochs_still_allowed() -> None:
    clock = RunClock(epochs=10, epoch_started=100.0)
    assert clock.seconds_left(0) is None  # nothing timed yet
    clock.epoch_seconds = [4.0, 6.0]
    assert clock.seconds_left(2) == pytest.approx(8 * 5.0)
    assert clock.seconds_left(2, share_done=0.5) == pytest.approx(7.5 * 5.0)
    assert clock.seconds_left(10) == 0.0


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.042, "0.04s"), (4.24, "4.2s"), (12.4, "12s"), (80, "1m20s"), (7500, "2h05m")]
)
def test_durations_are_short(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_metrics_are_named_as_config_and_info_name_them() -> None:
    described = describe_metrics({"cross_entropy": 1.23456, "val_perplexity": 9.876, "words_per_second": 1234.5})
    assert described == "cross_entropy 1.2346  val_perplexity 9.88  1,234 words/s"
