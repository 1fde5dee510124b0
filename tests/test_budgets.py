"""Training budgets and checkpoints inside an epoch, through the command line: --max-steps and --max-time
end training cleanly mid-epoch with a loadable model, --checkpoint-every and a stop signal keep the
batches done, and --resume goes on from that batch to the weights an uninterrupted run ends with."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import TrainingBudget, duration_text, parse_duration
from rnngen.errors import UsageError
from rnngen.train.budget import BudgetStop, BudgetWatch
from rnngen.train.checkpoints import (
    STATE_FILE,
    Checkpoint,
    EpochPosition,
    checkpoint_folder,
    load_checkpoint,
    save_checkpoint,
)
from rnngen.train.loop import stop_message
from rnngen.train.plots import epoch_positions
from rnngen.train.reporting import RunClock

from .conftest import rnngen

# 39 batches an epoch on corpus(400), with dropout, so the dropout's generator must be carried over too.
OPTIONS = ["--epochs", "3", "--batch-size", "8", "--dropout", "0.3", "--embedding-dim", "8", "--units", "16"]
OPTIONS += ["--val-split", "0.2", "--patience", "2", "--quiet"]
STEPS_PER_EPOCH = 39
# 3,600 batches of one line an epoch (a second or two), to be stopped in their middle.
LONG_OPTIONS = ["--epochs", "2", "--batch-size", "1", "--dropout", "0.2", "--embedding-dim", "8", "--units", "8"]
LONG_OPTIONS += ["--val-split", "0.1", "--patience", "0"]
LONG_STEPS_PER_EPOCH = 3600


def corpus(lines: int) -> str:
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[index % 3 : 2 + index % 10]) for index in range(lines)) + "\n"


def short_corpus(lines: int) -> str:
    """Lines of two to four words: many quick batches."""
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[i % 5 : 2 + i % 5 + i % 3]) for i in range(lines)) + "\n"


def weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def checkpoint_state(folder: Path) -> dict | None:
    try:
        return json.loads((checkpoint_folder(folder) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def assert_same_weights(expected: Path, actual: Path) -> None:
    straight, continued = weights(expected), weights(actual)
    assert straight.keys() == continued.keys()
    for name in straight:
        np.testing.assert_array_equal(straight[name], continued[name], err_msg=name)
    assert config(expected)["history"] == config(actual)["history"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpora, and the runs without a budget that budgeted runs must end like."""
    folder = tmp_path_factory.mktemp("budgets")
    (folder / "corpus.txt").write_text(corpus(400), encoding="utf-8")
    (folder / "long.txt").write_text(short_corpus(4000), encoding="utf-8")
    for source, output, options in (("corpus.txt", "straight", OPTIONS), ("long.txt", "long-straight", LONG_OPTIONS)):
        result = rnngen("train", source, "-o", output, *options, "--quiet", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def test_max_steps_ends_mid_epoch_with_a_loadable_model_and_says_why(workspace: Path) -> None:
    result = rnngen("train", "corpus.txt", "-o", "capped", *OPTIONS[:-1], "--max-steps", "50", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "capped\n"
    reason = "the --max-steps budget of 50 updates was reached during epoch 2 (11 of 39 batches)"
    assert f"kept epoch 2 of 2: {reason}" in result.stderr
    assert f"{checkpoint_folder(Path('capped'))} keeps the run: --resume goes on" in result.stderr
    # The cut epoch was validated and judged like a whole one, and the history says how much of it ran.
    saved = config(workspace / "capped")
    assert saved["stop_reason"] == reason and saved["steps_run"] == 50
    assert saved["history"]["steps"] == [STEPS_PER_EPOCH, 11] and len(saved["history"]["val_cross_entropy"]) == 2
    generated = rnngen("generate", "the", "-n", "3", "-m", "capped", cwd=workspace)
    assert generated.returncode == 0 and generated.stderr == "" and generated.stdout.startswith("the ")
    info = json.loads(rnngen("info", "--json", "-m", "capped", cwd=workspace).stdout)
    assert info["training"]["stop_reason"] == reason
    assert info["training"]["epochs_run"] == 2 and info["training"]["steps_run"] == 50
    # The checkpoint stands where the budget ended training, before the cut epoch was judged.
    state = checkpoint_state(workspace / "capped")
    assert state is not None and state["epochs_done"] == 1 and state["epoch_position"]["steps_done"] == 11
    assert state["history"]["steps"] == [STEPS_PER_EPOCH]


def test_resuming_a_budgeted_run_mid_epoch_ends_with_the_uninterrupted_weights(workspace: Path) -> None:
    first = rnngen("train", "corpus.txt", "-o", "stages", *OPTIONS, "--max-steps", "20", cwd=workspace)
    assert first.returncode == 0, first.stderr
    # A larger budget goes on from batch 20 of the first epoch, with checkpoints after every batch on the way...
    longer = ["--max-steps", "70", "--checkpoint-every", "0.001"]
    second = rnngen("train", "corpus.txt", "-o", "stages", "--resume", *longer, "--quiet", cwd=workspace)
    assert second.returncode == 0, second.stderr
    assert config(workspace / "stages")["resumed_at_step"] == 20
    state = checkpoint_state(workspace / "stages")
    assert state is not None and state["epochs_done"] == 1 and state["epoch_position"]["steps_done"] == 70 - 39
    # ...and without a budget it runs to the end, the options taken from the checkpoint.
    third = rnngen("train", "corpus.txt", "-o", "stages", "--resume", "--quiet", cwd=workspace)
    assert third.returncode == 0, third.stderr
    assert checkpoint_state(workspace / "stages") is None  # finished: nothing left to resume
    assert_same_weights(workspace / "straight", workspace / "stages")


def test_a_spent_step_budget_is_refused_on_resume(workspace: Path) -> None:
    first = rnngen("train", "corpus.txt", "-o", "spent", *OPTIONS, "--max-steps", "10", cwd=workspace)
    assert first.returncode == 0, first.stderr
    again = rnngen("train", "corpus.txt", "-o", "spent", "--resume", "--max-steps", "10", cwd=workspace)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (
        "rnngen: error: cannot resume: the run has made 10 updates already, as many as --max-steps 10 allows; "
        "give a larger --max-steps, or leave it out\n"
    )


def test_a_tiny_time_budget_ends_training_with_a_loadable_model(workspace: Path) -> None:
    result = rnngen(
        "train", "long.txt", "-o", "timed", *LONG_OPTIONS, "--epochs", "50", "--max-time", "0.5s", cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    saved = config(workspace / "timed")
    assert re.fullmatch(
        r"the --max-time budget of 0\.5s was reached during epoch 1 \([\d,]+ of 3,600 batches\)", saved["stop_reason"]
    )
    assert saved["stop_reason"] in result.stderr and saved["budget"]["max_time"] == 0.5
    assert rnngen("generate", "the", "-m", "timed", cwd=workspace).returncode == 0


@pytest.mark.parametrize("value", ["1x", "0", "0s", "1h1h", "30m1h", "30 m", "-5s", "", "1e3"])
@pytest.mark.parametrize("option", ["--max-time", "--checkpoint-every"])
def test_a_bad_duration_is_a_one_line_usage_error(workspace: Path, option: str, value: str) -> None:
    result = rnngen("train", "corpus.txt", "-o", "never", option, value, cwd=workspace)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and f"'{option}'" in result.stderr, result.stderr
    assert not (workspace / "never").exists()


def test_mid_epoch_checkpoints_need_the_numpy_engine(workspace: Path) -> None:
    result = rnngen("train", "corpus.txt", "--engine", "keras", "--checkpoint-every", "1m", cwd=workspace)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "rnngen: error: --checkpoint-every needs the numpy engine; this run trains with the keras engine "
        "(--engine keras)\n"
    )


def start_long_run(workspace: Path, output: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["rnngen", "train", "long.txt", "-o", output, *LONG_OPTIONS, *extra],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigint_mid_epoch_keeps_the_batches_done(workspace: Path) -> None:
    process = start_long_run(workspace, "interrupted")
    assert process.stderr is not None
    assert process.stderr.readline().startswith("training with the numpy engine")
    assert process.stderr.readline().startswith("read long.txt: 4,000 lines")
    time.sleep(0.3)  # a fraction of the first epoch
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stdout == "", stderr
    kept = re.fullmatch(
        r"rnngen: error: training stopped by SIGINT; ([\d,]+) of 3,600 batches of epoch 1 are kept in "
        r"\.interrupted\.checkpoint: run the same command with --resume to go on\n",
        stderr,
    )
    assert kept is not None, stderr
    state = checkpoint_state(workspace / "interrupted")
    assert state is not None and state["epochs_done"] == 0
    assert state["epoch_position"]["steps_done"] == int(kept.group(1).replace(",", ""))

    resumed = rnngen("train", "long.txt", "-o", "interrupted", "--resume", "--quiet", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(workspace / "long-straight", workspace / "interrupted")


def test_checkpoint_every_leaves_a_checkpoint_mid_epoch_that_a_crash_cannot_take(workspace: Path) -> None:
    process = start_long_run(workspace, "crashed", "--checkpoint-every", "0.2", "--quiet")
    deadline = time.monotonic() + 120
    state = None
    while process.poll() is None and time.monotonic() < deadline:
        state = checkpoint_state(workspace / "crashed")
        if state is not None and state.get("epoch_position") is not None:
            break
        time.sleep(0.01)
    process.kill()  # no chance to save anything more
    process.communicate(timeout=60)
    assert state is not None and 0 < state["epoch_position"]["steps_done"] < LONG_STEPS_PER_EPOCH

    resumed = rnngen("train", "long.txt", "-o", "crashed", "--resume", "--quiet", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(workspace / "long-straight", workspace / "crashed")


def test_the_keras_engine_ends_mid_epoch_too_and_keeps_its_last_epochs_checkpoint(workspace: Path) -> None:
    result = rnngen(
        "train", "corpus.txt", "-o", "keras", *OPTIONS, "--engine", "keras", "--max-steps", "50", cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    saved = config(workspace / "keras")
    assert saved["stop_reason"] == "the --max-steps budget of 50 updates was reached during epoch 2 (11 of 39 batches)"
    assert saved["history"]["steps"] == [STEPS_PER_EPOCH, 11]
    # Keras's fit starts epochs at their first batch: --resume goes on from the end of the first epoch.
    state = checkpoint_state(workspace / "keras")
    assert state is not None and state["epochs_done"] == 1 and "epoch_position" not in state
    assert state["format_version"] == 1


DURATIONS = [("90s", 90, "1m30s"), ("30m", 1800, "30m"), ("1h30m", 5400, "1h30m"), ("2h", 7200, "2h")]
DURATIONS += [("45", 45, "45s"), ("1.5h", 5400, "1h30m"), ("0.5s", 0.5, "0.5s"), ("1h0m30s", 3630, "1h30s")]


@pytest.mark.parametrize(("text", "seconds", "written"), DURATIONS)
def test_durations_are_read_strictly_and_written_back_readably(text: str, seconds: float, written: str) -> None:
    assert parse_duration(text) == seconds
    assert duration_text(seconds) == written and parse_duration(written) == seconds


def test_the_budget_watch_counts_updates_and_time() -> None:
    now = [100.0]
    budget = TrainingBudget(max_steps=5, max_time=60.0, checkpoint_every=10.0)
    watch = BudgetWatch(budget, steps_done=3, started=100.0, clock=lambda: now[0])
    watch.check_start()
    watch.batch_done()
    assert watch.spent() is None and not watch.checkpoint_due()
    now[0] = 111.0
    assert watch.checkpoint_due()
    watch.checkpoint_written()
    assert not watch.checkpoint_due()
    watch.batch_done()
    assert watch.spent() == "the --max-steps budget of 5 updates"
    timed = BudgetWatch(TrainingBudget(max_time=5400.0), steps_done=0, started=0.0, clock=lambda: 5400.0)
    assert timed.spent() == "the --max-time budget of 1h30m"
    with pytest.raises(UsageError, match="as many as --max-steps 5 allows"):
        BudgetWatch(budget, steps_done=5, started=0.0).check_start()


def test_a_budget_stop_says_where_it_came() -> None:
    budget = "the --max-time budget of 30m"
    assert BudgetStop(budget, 2, 1234, 2000).reason() == (
        "the --max-time budget of 30m was reached during epoch 3 (1,234 of 2,000 batches)"
    )
    assert (
        BudgetStop(budget, 2, 2000, 2000).reason() == "the --max-time budget of 30m was reached at the end of epoch 3"
    )


def test_a_stop_message_counts_the_epochs_and_batches_kept() -> None:
    where = Path("models/.big.checkpoint")
    assert stop_message(signal.SIGINT, 6, 1234, 2000, where) == (
        "training stopped by SIGINT; 6 finished epoch(s) and 1,234 of 2,000 batches of epoch 7 are kept in "
        "models/.big.checkpoint: run the same command with --resume to go on"
    )
    assert stop_message(signal.SIGTERM, 0, 12, 2000, where).startswith(
        "training stopped by SIGTERM; 12 of 2,000 batches of epoch 1 are kept in"
    )
    assert stop_message(signal.SIGINT, 0, None, 2000, where).endswith("before its first epoch ended; nothing was saved")
    # In a later network of a run of several, the networks before it are kept whatever this one has done.
    assert stop_message(signal.SIGINT, 0, None, 2000, where, network=2) == (
        "training stopped by SIGINT; the finished networks are kept in models/.big.checkpoint: "
        "run the same command with --resume to go on"
    )
    assert stop_message(signal.SIGINT, 3, 5, 2000, where, network=2).startswith(
        "training stopped by SIGINT; the finished networks and 3 finished epoch(s) of network 2 and 5 of 2,000 "
        "batches of epoch 4 of network 2 are kept in"
    )


def test_the_epochs_time_left_and_the_runs_stop_at_the_budget() -> None:
    clock = RunClock(epochs=2.5, epoch_started=time.monotonic() - 10.0)
    # A quarter of the first epoch in 10 seconds: 30 more for the epoch, 90 for the run's 2.5 epochs.
    assert clock.epoch_seconds_left(0, 0.25) == pytest.approx(30.0, rel=0.01)
    assert clock.seconds_left(0, 0.25) == pytest.approx(90.0, rel=0.01)
    # The last epoch ends halfway, where --max-steps ends the run.
    clock.epoch_seconds = [40.0, 40.0]
    assert clock.seconds_left(2, 0.0) == pytest.approx(20.0)
    assert clock.epoch_seconds_left(2, 0.5) == 0.0
    clock.deadline = time.monotonic() + 5.0
    assert clock.seconds_left(0, 0.25) == pytest.approx(5.0, abs=0.5)
    # A resumed epoch is timed from where it went on.
    resumed = RunClock(epochs=3, epoch_started=time.monotonic() - 10.0, start_share=0.5)
    assert resumed.epoch_seconds_left(0, 0.75) == pytest.approx(10.0, rel=0.01)


def test_an_epoch_cut_short_is_drawn_where_it_ended() -> None:
    history = {"cross_entropy": [3.0, 2.5, 2.4], "steps": [20.0, 20.0, 5.0]}
    assert epoch_positions(history, 20) == [1.0, 2.0, 2.25]
    assert epoch_positions({"cross_entropy": [3.0, 2.5]}, 20) == [1.0, 2.0]  # folders from before


def test_a_mid_epoch_checkpoint_keeps_its_position_and_an_epoch_end_one_stays_format_1(tmp_path: Path) -> None:
    def checkpoint(position: EpochPosition | None) -> Checkpoint:
        return Checkpoint(
            epochs_done=1,
            fingerprint={},
            history={"loss": [1.0], "steps": [3.0]},
            callbacks={},
            training_seconds=1.0,
            variable_paths=["w"],
            variables=[np.ones(2, np.float32)],
            optimizer=[np.zeros(1)],
            best=None,
            epoch_position=position,
        )

    random_state = np.random.default_rng([0, 1, 1]).bit_generator.state
    position = EpochPosition(2, {"totals": {"rows": 7, "cross_entropy": 0.1}, "dropout_random": random_state})
    save_checkpoint(tmp_path / "mid", checkpoint(position))
    assert load_checkpoint(tmp_path / "mid").epoch_position == position
    assert json.loads((tmp_path / "mid" / STATE_FILE).read_text())["format_version"] == 2
    save_checkpoint(tmp_path / "end", checkpoint(None))
    assert load_checkpoint(tmp_path / "end").epoch_position is None
    assert json.loads((tmp_path / "end" / STATE_FILE).read_text())["format_version"] == 1
