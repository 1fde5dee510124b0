"""The numpy training engine (`--engine numpy`): its gradients, its agreement with Keras on the loss and
the optimizer step, and training through the command line without TensorFlow."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import ArchitectureConfig, CellKind, ModelConfig
from rnngen.network.forward import State
from rnngen.network.weights import cell_weight_names, expected_weight_shapes, trainable_names
from rnngen.train.checkpoints import STATE_FILE, checkpoint_folder
from rnngen.train.numpy_engine import backprop
from rnngen.train.numpy_engine.adam import Adam
from rnngen.train.numpy_engine.sampled_softmax import Candidates

from .conftest import SEED_TEXT, cli_in_process, rnngen


def tiny_config(cell: str, layers: int = 1, tie: bool = False, dropout: float = 0.0, vocab: int = 7) -> ModelConfig:
    architecture = ArchitectureConfig(
        cell=CellKind(cell), layers=layers, embedding_dim=4, units=4, dropout=dropout, tie_embeddings=tie
    )
    return ModelConfig.for_corpus(architecture, vocab, 6)


def tiny_weights(config: ModelConfig, seed: int, dtype: type = np.float64) -> dict[str, np.ndarray]:
    random = np.random.default_rng(seed)
    weights = {
        name: random.normal(0, 0.4, shape).astype(dtype) for name, shape in expected_weight_shapes(config).items()
    }
    if config.tie_embeddings:
        del weights["output.kernel"]
    return weights


def tiny_batch(vocab: int, seed: int, rows: int = 3, width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Post-padded (inputs, targets) rows of different lengths, as WindowBatches makes them."""
    random = np.random.default_rng(seed)
    lengths = [width, *random.integers(1, width + 1, rows - 1)]
    inputs = np.zeros((rows, width), np.int32)
    targets = np.zeros((rows, width), np.int32)
    for row, length in enumerate(lengths):
        inputs[row, :length] = random.integers(1, vocab, length)
        targets[row, :length] = random.integers(1, vocab, length)
    return inputs, targets


def numeric_gradients(
    weights: dict[str, np.ndarray],
    config: ModelConfig,
    inputs: np.ndarray,
    targets: np.ndarray,
    seed: int | None,
    candidates: Candidates | None = None,
    initial_states: list[State] | None = None,
) -> dict[str, np.ndarray]:
    """Central differences of the mean loss, with the same masks at every evaluation (a generator
    from the same seed; None: no masks), the same sampled softmax's candidates and the same initial
    states, if any."""

    def mean_loss() -> float:
        random = None if seed is None else np.random.default_rng(seed)
        score, _ = backprop.loss_and_gradients(weights, config, inputs, targets, random, candidates, initial_states)
        return score.cross_entropy / score.targets + score.penalty

    step = 1e-6
    numeric = {}
    for name in trainable_names(config):
        numeric[name] = np.zeros_like(weights[name])
        for index in np.ndindex(weights[name].shape):
            kept = weights[name][index]
            weights[name][index] = kept + step
            above = mean_loss()
            weights[name][index] = kept - step
            below = mean_loss()
            weights[name][index] = kept
            numeric[name][index] = (above - below) / (2 * step)
    return numeric


CASES = [
    (cell, layers, tie, dropout)
    for cell in ("lstm", "gru", "simple")
    for layers, tie, dropout in ((1, False, 0.0), (2, True, 0.3))
]


@pytest.mark.parametrize(("cell", "layers", "tie", "dropout"), CASES)
def test_gradients_match_finite_differences(cell: str, layers: int, tie: bool, dropout: float) -> None:
    config = tiny_config(cell, layers, tie, dropout)
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)

    _, gradients = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5))
    assert set(gradients) == set(trainable_names(config))
    numeric = numeric_gradients(weights, config, inputs, targets, seed=5)
    for name in trainable_names(config):
        np.testing.assert_allclose(gradients[name], numeric[name], atol=1e-7, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_the_loss_is_the_keras_models_masked_loss(cell: str) -> None:
    """The same weights in the Keras model that `model.py` builds give the same loss: it is one model."""
    from rnngen.network.weights import recurrent_layer_name
    from rnngen.train.keras_engine.backend import import_keras
    from rnngen.train.keras_engine.model import build_model, logits_model

    keras = import_keras()

    config = tiny_config(cell, layers=2, tie=True, vocab=9)
    weights = {name: array.astype(np.float32) for name, array in tiny_weights(config, seed=3).items()}
    inputs, targets = tiny_batch(config.vocab_size, seed=4)
    model = logits_model(build_model(config, sequence_output=True))
    model.get_layer("embedding").set_weights([weights["embedding"], weights["output.bias"]])
    for layer in range(config.layers):
        model.get_layer(recurrent_layer_name(layer)).set_weights([weights[name] for name in cell_weight_names(layer)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = float(keras.ops.convert_to_numpy(loss(targets, model([inputs], training=False))))
    score = backprop.score_batch(weights, config, inputs, targets)
    assert score.targets == np.count_nonzero(targets)
    assert score.cross_entropy / score.targets == pytest.approx(expected, rel=1e-5)
    training_score, _ = backprop.loss_and_gradients(weights, config, inputs, targets)
    assert training_score.cross_entropy == pytest.approx(score.cross_entropy, rel=1e-6)


def test_an_adam_step_is_keras_adams_with_global_norm_clipping() -> None:
    from rnngen.train.keras_engine.backend import import_keras

    keras = import_keras()

    random = np.random.default_rng(0)
    weights = {"a": random.normal(size=(3, 4)).astype(np.float32), "b": random.normal(size=5).astype(np.float32)}
    variables = {name: keras.Variable(array.copy()) for name, array in weights.items()}
    optimizer = keras.optimizers.Adam(learning_rate=0.01, global_clipnorm=1.0)
    ours = Adam(weights, learning_rate=0.01, clip_norm=1.0)
    for _ in range(3):
        gradients = {name: random.normal(size=array.shape).astype(np.float32) * 3 for name, array in weights.items()}
        optimizer.apply_gradients([(gradients[name], variables[name]) for name in weights])
        ours.apply(weights, gradients)
    for name, array in weights.items():
        np.testing.assert_allclose(array, keras.ops.convert_to_numpy(variables[name]), rtol=1e-5, atol=1e-6)


def test_the_seed_corpus_trains_without_tensorflow_and_keeps_the_notebooks_continuations(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    process = cli_in_process("train", "seed.txt", "--engine", "numpy", "--quiet", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert process.stderr.strip().splitlines()[-1] == "[]"  # neither was imported
    assert process.stdout.strip() == str(Path("models") / "seed")
    folder = tmp_path / "models" / "seed"
    assert {path.name for path in folder.iterdir()} == {"config.json", "vocabulary.json", "weights.npz", "training.png"}
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["execution"]["engine"] == "numpy" and config["versions"]["backend"] == "numpy"
    for prompt, words, expected in (
        ("오늘", "3", "오늘 날씨가 정말 좋다"),
        ("집", "5", "집 앞 공원에 사람들이 모여 있다"),
        ("아이들이", "4", "아이들이 놀이터에서 신나게 뛰어놀고 있다"),
    ):
        result = rnngen("generate", prompt, "-n", words, cwd=tmp_path)
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, expected, "")
    evaluation = rnngen("evaluate", "seed.txt", "--json", cwd=tmp_path)
    assert evaluation.returncode == 0 and json.loads(evaluation.stdout)["tokens"] > 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("--bidirectional", None), ("--device", "gpu"), ("--precision", "mixed"), ("--distribute", "mirrored")],
)
def test_what_the_numpy_engine_does_not_do_is_a_usage_error(tmp_path: Path, option: str, value: str | None) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    arguments = [option] if value is None else [option, value]
    result = rnngen("train", "seed.txt", "--engine", "numpy", *arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert option in result.stderr and "--engine keras" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()


OPTIONS = ["--engine", "numpy", "--epochs", "5", "--batch-size", "2", "--dropout", "0.3", "--embedding-dim", "8"]
OPTIONS += ["--units", "16", "--val-split", "0.2", "--patience", "2", "--quiet"]


def _epochs_done(folder: Path) -> int:
    try:
        return int(json.loads((checkpoint_folder(folder) / STATE_FILE).read_text(encoding="utf-8"))["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


def _weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def test_an_interrupted_numpy_run_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    words = "the cat sat on a mat and then it ran far away".split()
    lines = [" ".join(words[index % 3 : 2 + index % 10]) for index in range(400)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    straight = rnngen("train", "corpus.txt", "-o", "straight", *OPTIONS, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr

    process = subprocess.Popen(
        ["rnngen", "train", "corpus.txt", "-o", "resumed", *OPTIONS],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _epochs_done(tmp_path / "resumed") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    assert process.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr

    with_keras = rnngen(
        "train", "corpus.txt", "-o", "resumed", "--resume", "--engine", "keras", *OPTIONS[2:], cwd=tmp_path
    )
    assert with_keras.returncode == 2 and "--engine numpy" in with_keras.stderr, with_keras.stderr

    # --resume alone: the checkpoint holds the interrupted run's settings.
    resumed = rnngen("train", "corpus.txt", "-o", "resumed", "--resume", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected, continued = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert expected.keys() == continued.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], continued[name], err_msg=name)
    history = [json.loads((tmp_path / name / "config.json").read_text())["history"] for name in ("straight", "resumed")]
    assert history[0] == history[1]
