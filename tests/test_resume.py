"""Interrupted training: a clean stop on SIGINT/SIGTERM, a checkpoint, and a resume that ends where an
uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.train.checkpoints import STATE_FILE, checkpoint_folder

from .conftest import rnngen

# Many small batches and some dropout, so an epoch is long enough to be interrupted in its middle
# and the dropout's random state has to be carried over too.
OPTIONS = ["--epochs", "5", "--batch-size", "2", "--dropout", "0.3", "--embedding-dim", "8", "--units", "16"]
# The Keras engine's resume (its dropout draws from random-generator variables that are checkpointed
# too); tests/test_numpy_engine.py resumes the numpy engine's runs.
OPTIONS += ["--val-split", "0.2", "--patience", "2", "--engine", "keras", "--quiet"]


def corpus(lines: int = 160) -> str:
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[index % 3 : 2 + index % 10]) for index in range(lines)) + "\n"


def epochs_done(folder: Path) -> int:
    try:
        return int(json.loads((checkpoint_folder(folder) / STATE_FILE).read_text(encoding="utf-8"))["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


def interrupt_training(
    workspace: Path, output: str, signal_number: int, after_epochs: int
) -> subprocess.CompletedProcess:
    """Start training, send the signal once ``after_epochs`` epochs are checkpointed, wait for the end."""
    process = subprocess.Popen(
        ["rnngen", "train", "corpus.txt", "-o", output, *OPTIONS],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while epochs_done(workspace / output) < after_epochs and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    (folder / "corpus.txt").write_text(corpus(), encoding="utf-8")
    result = rnngen("train", "corpus.txt", "-o", "straight", *OPTIONS, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def test_an_interrupted_and_resumed_run_ends_with_the_uninterrupted_weights(workspace: Path) -> None:
    stopped = interrupt_training(workspace, "resumed", signal.SIGINT, after_epochs=2)
    assert stopped.returncode == 130, stopped.stderr
    assert "--resume" in stopped.stderr and "Traceback" not in stopped.stderr
    assert len(stopped.stderr.strip().splitlines()) == 1 and stopped.stdout == ""
    assert not (workspace / "resumed").exists()
    assert epochs_done(workspace / "resumed") >= 2

    resumed = rnngen("train", "corpus.txt", "-o", "resumed", "--resume", *OPTIONS, cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert not checkpoint_folder(workspace / "resumed").exists()  # finished: nothing left to resume
    straight, continued = weights(workspace / "straight"), weights(workspace / "resumed")
    assert straight.keys() == continued.keys()
    for name in straight:
        np.testing.assert_array_equal(straight[name], continued[name], err_msg=name)
    straight_config = json.loads((workspace / "straight" / "config.json").read_text(encoding="utf-8"))
    resumed_config = json.loads((workspace / "resumed" / "config.json").read_text(encoding="utf-8"))
    assert resumed_config["history"] == straight_config["history"]
    assert resumed_config["resumed_at_epoch"] >= 2 and straight_config["resumed_at_epoch"] is None


def test_sigterm_stops_cleanly_with_143_and_resume_refuses_other_settings(workspace: Path) -> None:
    stopped = interrupt_training(workspace, "terminated", signal.SIGTERM, after_epochs=1)
    assert stopped.returncode == 143, stopped.stderr
    assert "SIGTERM" in stopped.stderr and "Traceback" not in stopped.stderr
    saved = (checkpoint_folder(workspace / "terminated") / STATE_FILE).read_bytes()

    changed = [*OPTIONS[:-1], "--units", "12", "--quiet"]
    other_units = rnngen("train", "corpus.txt", "-o", "terminated", "--resume", *changed, cwd=workspace)
    assert other_units.returncode == 2 and "--units" in other_units.stderr, other_units.stderr
    (workspace / "other.txt").write_text(corpus(150), encoding="utf-8")
    other_corpus = rnngen("train", "other.txt", "-o", "terminated", "--resume", *OPTIONS, cwd=workspace)
    assert other_corpus.returncode == 2 and "corpus" in other_corpus.stderr, other_corpus.stderr
    for result in (other_units, other_corpus):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # Refusals leave the checkpoint as it was.
    assert (checkpoint_folder(workspace / "terminated") / STATE_FILE).read_bytes() == saved

    # More epochs than before is a change a resumed run may make.
    longer = [*OPTIONS[:1], "6", *OPTIONS[2:]]
    extended = rnngen("train", "corpus.txt", "-o", "terminated", "--resume", *longer, cwd=workspace)
    assert extended.returncode == 0, extended.stderr
    assert json.loads((workspace / "terminated" / "config.json").read_text(encoding="utf-8"))["epochs_run"] <= 6


def test_resume_without_a_checkpoint_says_so(workspace: Path) -> None:
    result = rnngen("train", "corpus.txt", "-o", "never", "--resume", *OPTIONS, cwd=workspace)
    assert result.returncode == 1 and "nothing to resume" in result.stderr and "Traceback" not in result.stderr


def test_starting_over_beside_a_checkpoint_is_announced(workspace: Path) -> None:
    stopped = interrupt_training(workspace, "again", signal.SIGINT, after_epochs=1)
    assert stopped.returncode == 130
    fresh = rnngen("train", "corpus.txt", "-o", "again", *OPTIONS, cwd=workspace)
    assert fresh.returncode == 0 and "starting over" in fresh.stderr and "--resume" in fresh.stderr
    assert not checkpoint_folder(workspace / "again").exists()


def test_the_same_seed_trains_the_same_weights_and_another_seed_does_not(workspace: Path) -> None:
    for output, seed in (("same-seed", "0"), ("other-seed", "1")):
        result = rnngen("train", "corpus.txt", "-o", output, "--seed", seed, *OPTIONS, cwd=workspace)
        assert result.returncode == 0, result.stderr
    straight, same, other = (weights(workspace / name) for name in ("straight", "same-seed", "other-seed"))
    for name in straight:
        np.testing.assert_array_equal(straight[name], same[name], err_msg=name)
    assert any(not np.array_equal(straight[name], other[name]) for name in straight)


def test_the_command_line_collects_tensorflows_objects_before_the_interpreter_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An interrupted fit can leave a generator-dataset iterator whose finalization during the
    # interpreter's shutdown deadlocks (a process that printed its message and never exits): main
    # collects garbage first whenever TensorFlow is loaded, on success and on failure alike.
    import gc
    import sys

    from rnngen.cli import main

    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *arguments: collections.append(1) or 0)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or object())
    for arguments in (["--version"], ["info", "--model", "no-such-model"]):
        monkeypatch.setattr(sys, "argv", ["rnngen", *arguments])
        with pytest.raises(SystemExit):
            main()
    assert len(collections) == 2
