"""Several networks in one run (--networks): the defaults that choose them, the engine that trains them,
the merged model a run saves, and budgets and --resume across the networks."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import (
    LARGE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT_NETWORKS,
    ArchitectureConfig,
    EngineKind,
    TrainingConfig,
)
from rnngen.network.merged import member_columns
from rnngen.train.checkpoints import checkpoint_folder
from rnngen.train.engines import keras_engine_limit
from rnngen.train.networks import kept_network_path
from rnngen.train.setup import resolve_networks

from .conftest import rnngen
from .test_budgets import (
    LONG_OPTIONS,
    OPTIONS,
    STEPS_PER_EPOCH,
    assert_same_weights,
    checkpoint_state,
    config,
    corpus,
    short_corpus,
    start_long_run,
    weights,
)

TWO = [*OPTIONS, "--networks", "2"]
UNITS, EMBEDDING = 16, 8  # OPTIONS' sizes


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus, a run of one network and an uninterrupted run of two."""
    folder = tmp_path_factory.mktemp("networks")
    (folder / "corpus.txt").write_text(corpus(400), encoding="utf-8")
    for output, options in (("one", OPTIONS), ("two", TWO)):
        result = rnngen("train", "corpus.txt", "-o", output, *options, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def test_the_numpy_engine_trains_two_networks_on_midsize_text_only() -> None:
    assert resolve_networks(None, MIDSIZE_TEXT_MIN_TOKENS, EngineKind.numpy) == MIDSIZE_TEXT_NETWORKS == 2
    assert resolve_networks(None, LARGE_TEXT_MIN_TOKENS - 1, EngineKind.numpy) == 2
    assert resolve_networks(None, MIDSIZE_TEXT_MIN_TOKENS - 1, EngineKind.numpy) == 1
    assert resolve_networks(None, LARGE_TEXT_MIN_TOKENS, EngineKind.numpy) == 1
    assert resolve_networks(None, MIDSIZE_TEXT_MIN_TOKENS, EngineKind.keras) == 1
    assert resolve_networks(3, 10, EngineKind.numpy) == 3


def test_only_the_numpy_engine_trains_several_networks(workspace: Path) -> None:
    assert keras_engine_limit(ArchitectureConfig(), TrainingConfig(networks=2))[0] == "--networks"
    assert keras_engine_limit(ArchitectureConfig(), TrainingConfig(networks=1)) is None
    refused = rnngen("train", "corpus.txt", "-o", "keras", "--engine", "keras", "--networks", "2", cwd=workspace)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        "rnngen: error: --engine keras does not do --networks (networks of several seeds merged into one); "
        "use --engine numpy\n"
    )
    assert not (workspace / "keras").exists()
    zero = rnngen("train", "corpus.txt", "-o", "none", "--networks", "0", cwd=workspace)
    assert zero.returncode == 2 and "--networks" in zero.stderr and "Traceback" not in zero.stderr


def test_two_networks_are_saved_as_one_whose_first_half_is_the_one_network_run(workspace: Path) -> None:
    one, two = weights(workspace / "one"), weights(workspace / "two")
    saved = config(workspace / "two")
    assert (saved["model"]["units"], saved["model"]["embedding_dim"]) == (2 * UNITS, 2 * EMBEDDING)
    assert saved["model"]["tie_embeddings"] is False and saved["training"]["networks"] == 2
    assert [network["seed"] for network in saved["networks"]] == [0, 1]
    # Network 1 is the run of one network: same seed, same lines, same batches.
    of_one = config(workspace / "one")["metrics"]
    assert saved["networks"][0]["metrics"] == {name: value for name, value in of_one.items() if "bits" not in name}
    first, second = member_columns(EMBEDDING, 2, 0, 1), member_columns(EMBEDDING, 2, 1, 1)
    np.testing.assert_array_equal(two["embedding"][:, first], one["embedding"])
    assert not np.allclose(two["embedding"][:, second], one["embedding"])
    # A model of one network records none.
    assert "networks" not in config(workspace / "one")
    info = json.loads(rnngen("info", "--json", "-m", "two", cwd=workspace).stdout)
    assert info["model"]["networks"] == 2 and info["model"]["units"] == 2 * UNITS
    assert info["training"]["networks"] == 2
    # Updates in all: both networks' (each ran 3 epochs here, as the run of one did).
    epochs = sum(network["epochs_run"] for network in saved["networks"])
    assert info["training"]["steps_run"] == epochs * STEPS_PER_EPOCH
    assert json.loads(rnngen("info", "--json", "-m", "one", cwd=workspace).stdout)["model"]["networks"] == 1
    generated = rnngen("generate", "the", "-n", "3", "-m", "two", cwd=workspace)
    assert generated.returncode == 0 and generated.stderr == "" and generated.stdout.startswith("the ")


def test_the_summary_names_each_networks_kept_epoch_and_the_merged_models_figure(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(corpus(400), encoding="utf-8")
    options = [option for option in TWO if option != "--quiet"]
    result = rnngen("train", "corpus.txt", "-o", "told", *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "told\n"
    lines = result.stderr.splitlines()
    assert any(line.startswith("training with the numpy engine") and "network 1 of 2" in line for line in lines)
    assert any("network 2 of 2" in line for line in lines)
    assert sum(line.startswith("read corpus.txt") for line in lines) == 1
    saved = config(tmp_path / "told")
    kept = [
        f"network {index} epoch {network['metrics']['epoch']} of {network['epochs_run']}"
        for index, network in enumerate(saved["networks"], start=1)
    ]
    assert f"2 networks merged); kept {', '.join(kept)}: {saved['stop_reason']}" in result.stderr
    assert any(line.startswith("rnngen: network 2, epoch ") for line in lines)


def test_a_budget_in_the_second_network_saves_the_first_and_resume_ends_as_an_uninterrupted_run(
    workspace: Path,
) -> None:
    steps = 3 * STEPS_PER_EPOCH + 10  # network 1 runs its 3 epochs unless it stops early; then 10 batches
    first = rnngen("train", "corpus.txt", "-o", "stages", *TWO, "--max-steps", str(steps), cwd=workspace)
    assert first.returncode == 0, first.stderr
    run_of_one = config(workspace / "one")
    assert run_of_one["epochs_run"] == 3  # so that the budget falls in network 2
    saved = config(workspace / "stages")
    # The folder holds network 1 alone: a whole model, not half a merge.
    assert saved["model"]["units"] == UNITS and len(saved["networks"]) == 1
    assert saved["stop_reason"].endswith("of network 2 of 2") and "10 of 39 batches" in saved["stop_reason"]
    np.testing.assert_array_equal(weights(workspace / "stages")["embedding"], weights(workspace / "one")["embedding"])
    folder = checkpoint_folder(workspace / "stages")
    assert kept_network_path(folder, 0).is_file() and not kept_network_path(folder, 1).exists()
    # Resumed, network 1 is not trained again and network 2 goes on from its checkpoint.
    second = rnngen("train", "corpus.txt", "-o", "stages", "--resume", "--quiet", cwd=workspace)
    assert second.returncode == 0, second.stderr
    assert checkpoint_state(workspace / "stages") is None
    assert_same_weights(workspace / "two", workspace / "stages")
    assert config(workspace / "stages")["networks"] == config(workspace / "two")["networks"]


def test_a_budget_spent_as_the_first_network_ends_says_the_second_had_not_begun(workspace: Path) -> None:
    steps = 3 * STEPS_PER_EPOCH
    first = rnngen("train", "corpus.txt", "-o", "spent", *TWO, "--max-steps", str(steps), cwd=workspace)
    assert first.returncode == 0, first.stderr
    saved = config(workspace / "spent")
    assert saved["stop_reason"] == f"the --max-steps budget of {steps} updates was reached before network 2 of 2 began"
    resumed = rnngen("train", "corpus.txt", "-o", "spent", "--resume", "--quiet", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(workspace / "two", workspace / "spent")


def test_sigint_in_the_second_network_keeps_the_first_and_resume_ends_as_an_uninterrupted_run(
    workspace: Path,
) -> None:
    (workspace / "long.txt").write_text(short_corpus(4000), encoding="utf-8")
    straight = rnngen("train", "long.txt", "-o", "long-two", *LONG_OPTIONS, "--networks", "2", "--quiet", cwd=workspace)
    assert straight.returncode == 0, straight.stderr
    process = start_long_run(workspace, "long-cut", "--networks", "2")
    assert process.stderr is not None
    for line in process.stderr:
        if "network 2 of 2" in line:
            break
    time.sleep(0.3)  # a fraction of network 2's first epoch
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stdout == "", stderr
    assert stderr.startswith("rnngen: error: training stopped by SIGINT; the finished networks and "), stderr
    assert "of epoch 1 of network 2 are kept in .long-cut.checkpoint: run the same command with --resume" in stderr
    assert not (workspace / "long-cut").exists()  # nothing half-merged was saved
    resumed = rnngen("train", "long.txt", "-o", "long-cut", "--resume", "--quiet", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(workspace / "long-two", workspace / "long-cut")
