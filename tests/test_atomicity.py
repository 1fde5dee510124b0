"""kill -9 at any moment of training leaves the previous model working, and the run resumable."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rnngen.train.checkpoints import STATE_FILE, checkpoint_folder

from .conftest import rnngen

# The Keras engine: its start (seconds of imports and tracing) and epochs are long enough to be killed
# in; the numpy engine trains this corpus in about a second. Writing the folder is the same for both.
OPTIONS = [
    "--epochs",
    "3",
    "--batch-size",
    "2",
    "--embedding-dim",
    "8",
    "--units",
    "16",
    "--engine",
    "keras",
    "--quiet",
]


def corpus() -> str:
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[index % 4 : 3 + index % 9]) for index in range(120)) + "\n"


def fingerprint(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def staging_exists(models: Path) -> bool:
    return any(".partial-" in path.name and not path.name.startswith("..") for path in models.iterdir())


def checkpoint_exists(models: Path) -> bool:
    return (checkpoint_folder(models / "corpus") / STATE_FILE).is_file()


def started(models: Path) -> bool:
    return True


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("atomic")
    (folder / "corpus.txt").write_text(corpus(), encoding="utf-8")
    result = rnngen("train", "corpus.txt", *OPTIONS, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def kill_when(workspace: Path, ready: Callable[[Path], bool], delay: float) -> int:
    """Start retraining over models/corpus (--force), and kill -9 it once ``ready`` holds (after ``delay`` s)."""
    process = subprocess.Popen(
        ["rnngen", "train", "corpus.txt", "--seed", "1", "--force", *OPTIONS],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    time.sleep(delay)
    while not ready(workspace / "models") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=60)


@pytest.mark.parametrize(
    ("moment", "ready", "delay"),
    [
        ("while starting", started, 1.0),
        ("while fitting", checkpoint_exists, 0.0),
        ("while saving the model", staging_exists, 0.0),
    ],
)
def test_kill_9_leaves_the_previous_model_working(
    workspace: Path, moment: str, ready: Callable[[Path], bool], delay: float
) -> None:
    model = workspace / "models" / "corpus"
    before = fingerprint(model)
    expected = rnngen("generate", "the cat", "-n", "4", cwd=workspace).stdout
    returncode = kill_when(workspace, ready, delay)
    assert returncode == -signal.SIGKILL, f"the run ended by itself before being killed {moment}"
    assert fingerprint(model) == before
    after = rnngen("generate", "the cat", "-n", "4", cwd=workspace)
    assert after.returncode == 0 and after.stdout == expected, after.stderr


def test_a_run_killed_while_fitting_resumes_and_leaves_nothing_behind(workspace: Path) -> None:
    returncode = kill_when(workspace, checkpoint_exists, 0.0)
    assert returncode == -signal.SIGKILL
    resumed = rnngen("train", "corpus.txt", "--seed", "1", "--resume", *OPTIONS, cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    leftovers = [path.name for path in (workspace / "models").iterdir() if path.name != "corpus"]
    assert leftovers == []
