"""Training over several replicas with real TensorFlow on this CPU: MirroredStrategy over two logical
CPU devices and two MultiWorkerMirroredStrategy workers on 127.0.0.1 each give the one-device run's
losses and weights; --resume works under a strategy; mixed precision saves float32 weights the numpy
engine reads; bad settings end in one line.

Every run is a fresh process: splitting the CPU into logical devices, and joining a cluster, must
happen before TensorFlow starts, and must not touch the test process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.train.checkpoints import checkpoint_folder

from .conftest import Completed, rnngen
from .test_resume import corpus, epochs_done, weights

# Batches of 7 lines split over two replicas as 4 + 3 rows, and a short last batch; no dropout, so
# that the runs draw no random numbers after the (seeded) initial weights.
OPTIONS = ["--epochs", "3", "--batch-size", "7", "--embedding-dim", "8", "--units", "16"]
OPTIONS += ["--val-split", "0.2", "--engine", "keras", "--quiet"]
# The tolerances below hold at this learning rate. At 0.01 (the default now) the bidirectional model's
# third epoch differed by about 1e-3 with clipping off as with it on: Adam's larger steps magnify the
# float32 rounding of sums taken in another order until it looks like a wrong loss or clipping.
OPTIONS += ["--learning-rate", "0.005"]
# float32 sums taken in another order (per replica, then across replicas) differ in the last bits.
# Over three epochs the per-token losses and accuracies stay within this relative tolerance (1e-6
# seen) and the weights within this absolute one (1e-5 seen after the bidirectional model's ~450
# Adam steps, which magnify rounding where gradients are small). A wrong loss scale, sharding or
# clipping moves them by 1e-3 or more.
RELATIVE_TOLERANCE = 1e-5
WEIGHT_TOLERANCE = 1e-4

# Runs the command line with the CPU split into two logical devices, as MirroredStrategy then
# finds two CPU devices to mirror over. Keras (and TensorFlow, quietly) first, then the split.
TWO_CPU_DEVICES = """
import sys
from rnngen.train.keras_engine.backend import import_keras
import_keras()
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from rnngen.cli import main
sys.argv = ["rnngen", *sys.argv[1:]]
main()
"""


def environment(**changes: str) -> dict[str, str]:
    variables = {key: value for key, value in os.environ.items() if key not in ("RNNGEN_DEBUG", "TF_CONFIG")}
    return {**variables, **changes}


def on_two_cpu_devices(*arguments: str, cwd: Path) -> Completed:
    process = subprocess.run(
        [sys.executable, "-c", TWO_CPU_DEVICES, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        env=environment(),
    )
    return Completed(process.returncode, process.stdout, process.stderr)


def config(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def assert_same_training(single: Path, distributed: Path) -> None:
    """The same per-token losses and accuracies epoch by epoch, and the same weights."""
    expected, actual = config(single)["history"], config(distributed)["history"]
    for name in ("cross_entropy", "val_cross_entropy", "accuracy", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose(actual[name], expected[name], rtol=RELATIVE_TOLERANCE, err_msg=name)
    one, many = weights(single), weights(distributed)
    assert one.keys() == many.keys()
    for name in one:
        np.testing.assert_allclose(many[name], one[name], rtol=0, atol=WEIGHT_TOLERANCE, err_msg=name)


def train_on_one_device(folder: Path, extra: list[str]) -> Path:
    """A workspace with the corpus and the model trained on one device (--distribute none)."""
    (folder / "corpus.txt").write_text(corpus(), encoding="utf-8")
    (folder / "options.json").write_text(json.dumps(extra), encoding="utf-8")
    result = rnngen("train", "corpus.txt", "-o", "single", *OPTIONS, *extra, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def one_device(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Line windows: sparse targets with padding, batches of uneven widths."""
    return train_on_one_device(tmp_path_factory.mktemp("windows"), [])


@pytest.fixture(scope="module")
def one_device_bidirectional(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebook's prefixes: one-hot target rows, padded with all-zero rows when sharded."""
    return train_on_one_device(tmp_path_factory.mktemp("prefixes"), ["--bidirectional"])


def model_options(workspace: Path) -> list[str]:
    return [*OPTIONS, *json.loads((workspace / "options.json").read_text(encoding="utf-8"))]


@pytest.mark.parametrize("trained", ["one_device", "one_device_bidirectional"], ids=["windows", "prefixes"])
def test_mirrored_over_two_cpu_devices_trains_as_one_device(request: pytest.FixtureRequest, trained: str) -> None:
    one_device: Path = request.getfixturevalue(trained)
    result = on_two_cpu_devices(
        "train", "corpus.txt", "-o", "mirrored", "--distribute", "mirrored", *model_options(one_device), cwd=one_device
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    execution = config(one_device / "mirrored")["execution"]
    assert (execution["distribute"], execution["replicas"], execution["workers"]) == ("mirrored", 2, 1)
    assert_same_training(one_device / "single", one_device / "mirrored")


def test_an_interrupted_mirrored_run_resumes_under_the_strategy(one_device: Path) -> None:
    arguments = ["train", "corpus.txt", "-o", "resumed", "--distribute", "mirrored", *model_options(one_device)]
    process = subprocess.Popen(
        [sys.executable, "-c", TWO_CPU_DEVICES, *arguments],
        cwd=one_device,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        while epochs_done(one_device / "resumed") < 1 and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)  # in the second of three epochs
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "--resume" in stderr, stderr
    stopped_after = epochs_done(one_device / "resumed")
    assert stopped_after >= 1
    resumed = on_two_cpu_devices(*arguments, "--resume", cwd=one_device)
    assert (resumed.returncode, resumed.stderr) == (0, ""), resumed.stderr
    assert not checkpoint_folder(one_device / "resumed").exists()
    assert config(one_device / "resumed")["resumed_at_epoch"] == stopped_after
    assert_same_training(one_device / "single", one_device / "resumed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_workers(folders: list[Path], scratch: list[Path], *arguments: str) -> list[subprocess.Popen[str]]:
    """`rnngen train ... --distribute multiworker` as one worker per folder, the README's commands:
    TF_CONFIG names both workers on 127.0.0.1 and this worker's place; TMPDIR is watched."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in folders]}
    workers = []
    for index, (folder, temporary) in enumerate(zip(folders, scratch, strict=True)):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = ["rnngen", "train", "corpus.txt", "-o", "model", "--distribute", "multiworker", *arguments]
        workers.append(
            subprocess.Popen(
                command,
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment(TF_CONFIG=tf_config, TMPDIR=str(temporary)),
            )
        )
    return workers


def finish(workers: list[subprocess.Popen[str]]) -> list[Completed]:
    try:
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:  # one failed worker would leave the other waiting for it
            worker.kill()
    return [Completed(worker.returncode, *output) for worker, output in zip(workers, outputs, strict=True)]


def folders(root: Path, *names: str) -> list[Path]:
    for name in names:
        (root / name).mkdir()
    return [root / name for name in names]


def test_two_workers_train_one_model_and_only_the_chief_saves(one_device: Path, tmp_path: Path) -> None:
    # Each worker in a folder of its own, as on machines of their own.
    machines, scratch = folders(tmp_path, "machine0", "machine1"), folders(tmp_path, "tmp0", "tmp1")
    for machine in machines:
        (machine / "corpus.txt").write_text(corpus(), encoding="utf-8")
    results = finish(start_workers(machines, scratch, *OPTIONS))
    assert [(result.returncode, result.stderr) for result in results] == [(0, ""), (0, "")], results
    assert [result.stdout for result in results] == ["model\n", ""]  # only the chief names a folder

    chief, other = machines
    assert sorted(path.name for path in chief.iterdir()) == ["corpus.txt", "model"]
    assert sorted(path.name for path in other.iterdir()) == ["corpus.txt"]
    assert not any(scratch[0].iterdir()) and not any(scratch[1].iterdir())
    execution = config(chief / "model")["execution"]
    assert (execution["distribute"], execution["replicas"], execution["workers"]) == ("multiworker", 2, 2)
    assert_same_training(one_device / "single", chief / "model")

    generated = rnngen("generate", "the cat", "-n", "3", "-m", str(chief / "model"), cwd=tmp_path)
    assert generated.returncode == 0 and generated.stderr == ""
    assert len(generated.stdout.split()) == 5


def test_ctrl_c_on_the_chief_stops_every_worker_and_all_resume(one_device: Path, tmp_path: Path) -> None:
    # The workers share a folder (a network file system, say): a resumed worker reads the chief's
    # checkpoint there.
    shared, scratch = tmp_path / "shared", folders(tmp_path, "tmp0", "tmp1")
    shared.mkdir()
    (shared / "corpus.txt").write_text(corpus(), encoding="utf-8")
    workers = start_workers([shared, shared], scratch, *OPTIONS)
    try:
        while epochs_done(shared / "model") < 1 and workers[0].poll() is None:
            time.sleep(0.02)
        workers[0].send_signal(signal.SIGINT)  # in the second of three epochs, to the chief alone
    finally:
        stopped = finish(workers)
    assert [result.returncode for result in stopped] == [130, 130], stopped
    assert all("--resume" in result.stderr and "Traceback" not in result.stderr for result in stopped)
    stopped_after = epochs_done(shared / "model")
    assert stopped_after >= 1

    resumed = finish(start_workers([shared, shared], scratch, *OPTIONS, "--resume"))
    assert [(result.returncode, result.stderr) for result in resumed] == [(0, ""), (0, "")], resumed
    assert sorted(path.name for path in shared.iterdir()) == ["corpus.txt", "model"]  # no checkpoint left
    assert not any(scratch[0].iterdir()) and not any(scratch[1].iterdir())
    assert config(shared / "model")["resumed_at_epoch"] == stopped_after
    assert_same_training(one_device / "single", shared / "model")


def assert_one_line_usage_error(result: Completed, message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_multiworker_without_a_usable_tf_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(corpus(20), encoding="utf-8")
    command = ["rnngen", "train", "corpus.txt", "--distribute", "multiworker", "--epochs", "1"]
    for tf_config, message in [(None, "TF_CONFIG is not set"), ('{"cluster": ', "not valid JSON")]:
        changes = {} if tf_config is None else {"TF_CONFIG": tf_config}
        process = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=environment(**changes)
        )
        assert_one_line_usage_error(Completed(process.returncode, process.stdout, process.stderr), message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.txt"]


def test_device_gpu_without_a_gpu_is_a_usage_error(tmp_path: Path) -> None:
    from rnngen.train.keras_engine.backend import import_keras

    import_keras()
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    (tmp_path / "corpus.txt").write_text(corpus(20), encoding="utf-8")
    result = rnngen("train", "corpus.txt", "--device", "gpu", "--epochs", "1", cwd=tmp_path)
    assert_one_line_usage_error(result, "--device gpu: no GPU is visible")
    assert not (tmp_path / "models").exists()


def test_mixed_precision_model_generates_with_the_numpy_engine(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(corpus(), encoding="utf-8")
    arguments = ["train", "corpus.txt", "-o", "mixed", "--precision", "mixed", "--device", "cpu", *OPTIONS]
    result = rnngen(*arguments, "--tie-embeddings", "--units", "8", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    execution = config(tmp_path / "mixed")["execution"]
    assert (execution["precision"], execution["dtype_policy"], execution["device"]) == (
        "mixed",
        "mixed_bfloat16",
        "cpu",
    )
    assert all(array.dtype == np.float32 for array in weights(tmp_path / "mixed").values())
    assert np.isfinite(config(tmp_path / "mixed")["history"]["cross_entropy"]).all()
    # The numpy engine alone reads the folder (tests/test_cli.py checks that generate never loads
    # TensorFlow).
    generated = rnngen("generate", "the cat", "-n", "3", "-m", "mixed", cwd=tmp_path)
    assert generated.returncode == 0 and generated.stderr == "" and len(generated.stdout.split()) == 5


def test_a_model_trained_on_the_gpu_generates_on_the_cpu(tmp_path: Path) -> None:
    """The GPU path: float16 mixed precision on the GPU, then the numpy engine alone reads the folder."""
    from rnngen.train.keras_engine.backend import import_keras

    import_keras()
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU visible: the GPU path runs only on a machine with one")
    (tmp_path / "corpus.txt").write_text(corpus(), encoding="utf-8")
    arguments = ["train", "corpus.txt", "-o", "gpu", "--precision", "mixed", "--device", "gpu", *OPTIONS]
    result = rnngen(*arguments, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    execution = config(tmp_path / "gpu")["execution"]
    assert (execution["device"], execution["dtype_policy"]) == ("gpu", "mixed_float16")
    assert all(array.dtype == np.float32 for array in weights(tmp_path / "gpu").values())
    generated = rnngen("generate", "the cat", "-n", "3", "-m", "gpu", cwd=tmp_path)
    assert generated.returncode == 0 and generated.stderr == "" and len(generated.stdout.split()) == 5
