"""The choice of training engine (--engine auto), the run's epoch controls, and the request's own checks."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import (
    AUTO_REGULARISERS,
    PLATEAU_MIN_STEPS,
    ArchitectureConfig,
    DeviceKind,
    DistributeKind,
    EngineKind,
    ExecutionConfig,
    PrecisionKind,
    ScheduleKind,
    TrainingConfig,
    XlaKind,
)
from rnngen.errors import UsageError
from rnngen.train import TrainingRequest, engines, train_corpus
from rnngen.train.controls import EpochControls
from rnngen.train.setup import prepare_run

from .conftest import SEED_TEXT, cli_in_process


def request(architecture: ArchitectureConfig | None = None, **execution: object) -> TrainingRequest:
    return TrainingRequest(
        corpus="corpus.txt",
        destination=Path("models/corpus"),
        architecture=architecture or ArchitectureConfig(),
        execution=ExecutionConfig(**execution),  # type: ignore[arg-type]
    )


@pytest.fixture()
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "gpu_visible", lambda: False)


@pytest.mark.usefixtures("no_gpu")
def test_auto_takes_numpy_for_a_one_directional_float32_model_on_the_cpu() -> None:
    choice = engines.choose_engine(request())
    assert choice.kind is EngineKind.numpy and "auto" in choice.describe()
    assert engines.choose_engine(request(device=DeviceKind.cpu, xla=XlaKind.off)).kind is EngineKind.numpy


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize(
    ("architecture", "execution", "option"),
    [
        (ArchitectureConfig(bidirectional=True), {}, "--bidirectional"),
        (None, {"device": DeviceKind.gpu}, "--device gpu"),
        (None, {"precision": PrecisionKind.mixed}, "--precision mixed"),
        (None, {"distribute": DistributeKind.mirrored}, "--distribute mirrored"),
        (None, {"xla": XlaKind.on}, "--xla on"),
    ],
)
def test_auto_takes_keras_for_what_only_keras_trains(
    architecture: ArchitectureConfig | None, execution: dict[str, object], option: str
) -> None:
    choice = engines.choose_engine(request(architecture, **execution))
    assert choice.kind is EngineKind.keras and option in choice.reason


def test_auto_takes_keras_where_a_gpu_is_visible_unless_told_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "gpu_visible", lambda: True)
    choice = engines.choose_engine(request())
    assert choice.kind is EngineKind.keras and "GPU" in choice.reason
    assert engines.choose_engine(request(device=DeviceKind.cpu)).kind is EngineKind.numpy


def test_an_engine_asked_for_is_taken_and_a_resumed_run_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "gpu_visible", lambda: True)
    assert engines.choose_engine(request(engine=EngineKind.numpy)).kind is EngineKind.numpy
    assert engines.choose_engine(request(), resumed=EngineKind.numpy).kind is EngineKind.numpy
    monkeypatch.setattr(engines, "gpu_visible", lambda: False)
    assert engines.choose_engine(request(), resumed=EngineKind.keras).kind is EngineKind.keras
    assert engines.choose_engine(request(engine=EngineKind.keras), resumed=EngineKind.numpy).kind is EngineKind.keras


def test_no_gpu_device_means_no_backend_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "_gpu_device_present", lambda: False)
    assert engines.gpu_visible() is False


def test_the_default_run_trains_without_tensorflow_and_names_its_engine(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    # With the GPUs hidden, as on a machine without one.
    process = cli_in_process(
        "train", "seed.txt", "--epochs", "2", cwd=tmp_path, environment={**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    )
    assert process.returncode == 0, process.stderr
    lines = process.stderr.strip().splitlines()
    assert lines[0].startswith("training with the numpy engine (auto: ") and "1 batch an epoch" in lines[0]
    assert lines[-1] == "[]"  # neither TensorFlow nor Keras was imported
    config = json.loads((tmp_path / "models" / "seed" / "config.json").read_text(encoding="utf-8"))
    assert (config["execution"]["engine"], config["execution"]["engine_requested"]) == ("numpy", "auto")


def test_val_split_and_a_validation_file_together_are_a_usage_error_through_the_api(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match="alternatives"):
        train_corpus(
            tmp_path / "seed.txt",
            tmp_path / "model",
            training=TrainingConfig(val_split=0.2),
            validation_source=tmp_path / "seed.txt",
        )
    assert not (tmp_path / "model").exists()


def test_train_corpus_takes_its_settings_by_keyword_only(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        train_corpus(tmp_path / "seed.txt", tmp_path / "model", None)  # type: ignore[misc]


# Epoch controls are built from resolved settings (rnngen.train.setup.resolve_schedule).
DECAY = ScheduleKind.decay


def snapshots() -> list[np.ndarray]:
    return [np.zeros(1)]


def test_epoch_controls_decay_halve_and_stop_as_keras_callbacks_do() -> None:
    training = TrainingConfig(learning_rate=0.01, lr_decay=0.5, patience=2, reduce_lr_patience=1, lr_schedule=DECAY)
    controls = EpochControls.for_training(training, steps_per_epoch=100)
    values = [3.0, 2.0, 2.5, 1.5, 1.6, 1.7]
    rates, stopped_after = [], None
    for epoch, value in enumerate(values):
        rates.append(controls.epoch_begin(epoch))
        if controls.epoch_end(epoch, value, lambda epoch=epoch: [np.full(1, epoch)]):
            stopped_after = epoch
            break
    # Decay halves every epoch's rate; a plateau epoch (2.5, then 1.6) halves it once more.
    assert rates == pytest.approx([0.01, 0.005, 0.0025, 0.000625, 0.0003125, 7.8125e-05])
    # Patience 2: two epochs without a new best after epoch 3 (1.5) end training; epoch 3's weights are kept.
    assert stopped_after == 5
    assert controls.early_stopping is not None and controls.early_stopping.best_epoch == 3
    assert controls.best_weights is not None and controls.best_weights[0][0] == 3


def test_epoch_controls_resume_exactly_where_they_stopped() -> None:
    training = TrainingConfig(learning_rate=0.01, lr_decay=0.8, patience=3, reduce_lr_patience=1, lr_schedule=DECAY)
    values = [3.0, 2.0, 2.05, 2.1, 1.0, 1.2, 1.3, 1.4, 1.5]

    def run(controls: EpochControls, epochs: range) -> list[tuple[float, bool]]:
        return [(controls.epoch_begin(epoch), controls.epoch_end(epoch, values[epoch], snapshots)) for epoch in epochs]

    straight = run(EpochControls.for_training(training, 50), range(len(values)))
    first = EpochControls.for_training(training, 50)
    before = run(first, range(4))
    state = json.loads(json.dumps(first.state()))  # as a checkpoint keeps it
    resumed = EpochControls.for_training(training, 50)
    resumed.restore(state, first.best_weights, first.learning_rate)
    assert before + run(resumed, range(4, len(values))) == straight


def test_the_halving_waits_for_enough_updates_not_one_noisy_little_epoch() -> None:
    training = TrainingConfig(reduce_lr_patience=1, lr_schedule=DECAY)
    plateau = EpochControls.for_training(training, steps_per_epoch=2).plateau
    assert plateau is not None and plateau.patience == math.ceil(PLATEAU_MIN_STEPS / 2)
    plateau = EpochControls.for_training(training, steps_per_epoch=PLATEAU_MIN_STEPS).plateau
    assert plateau is not None and plateau.patience == 1
    assert EpochControls.for_training(TrainingConfig(reduce_lr_patience=0, lr_schedule=DECAY), 1).plateau is None


def test_both_engines_start_the_output_bias_at_the_corpus_word_frequencies(tmp_path: Path) -> None:
    from rnngen.train.keras_engine.engine import KerasEngine
    from rnngen.train.numpy_engine.engine import NumpyEngine

    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    asked = TrainingRequest(corpus=tmp_path / "seed.txt", destination=tmp_path / "model")
    run = prepare_run(asked, EngineKind.numpy)
    bias = run.initial_output_bias()
    counts = run.training_plan.target_counts
    # "있다" (id 1) ends two of the three lines; each line ends once (<eol>, id 15); padding is never a target.
    assert (counts[1], counts[15], counts[0], counts.sum()) == (2, 3, 0, run.training_plan.targets)
    np.testing.assert_allclose(np.exp(bias), (counts + 1) / (counts + 1).sum(), rtol=1e-6)
    for engine in (NumpyEngine(asked), KerasEngine(replace(asked, execution=ExecutionConfig(engine=EngineKind.keras)))):
        np.testing.assert_array_equal(engine.start(run).export()["output.bias"], bias)


def test_a_checkpoint_without_settings_resumes_with_what_its_fingerprint_records(tmp_path: Path) -> None:
    """Checkpoints written before they kept the run's settings: every setting that shapes the model
    comes from the fingerprint, the engine is Keras's, and --epochs and --patience are the defaults."""
    from rnngen.config import ModelConfig, TokenizerConfig, to_json_dict
    from rnngen.train.checkpoints import Checkpoint, checkpoint_folder, save_checkpoint
    from rnngen.train.request import resumed_settings

    architecture = ArchitectureConfig(cell="gru", units=16, embedding_dim=8)
    training = TrainingConfig(batch_size=7, learning_rate=0.003, val_split=0.2, max_len=12)
    fingerprint = {
        "tokenizer": to_json_dict(TokenizerConfig(kind="char")),
        "model": to_json_dict(ModelConfig.for_corpus(architecture, 40, 12)),
        "training": {
            name: value for name, value in to_json_dict(training).items() if name not in ("epochs", "patience")
        },
        "corpus_sha256": "0" * 64,
        "validation_sha256": None,
    }
    destination = tmp_path / "models" / "old"
    save_checkpoint(
        checkpoint_folder(destination),
        Checkpoint(1, fingerprint, {"loss": [1.0]}, {}, 1.0, ["a"], [np.zeros(1)], [np.zeros(1)], None),
    )
    saved = resumed_settings(destination)
    # The regularisers it left open trained at what the fingerprint records: off.
    assert (saved.tokenizer, saved.architecture, saved.training) == (
        TokenizerConfig(kind="char"),
        replace(architecture, **{name: 0.0 for name in AUTO_REGULARISERS}),
        training,
    )
    assert saved.execution.engine is EngineKind.keras and saved.validation is None


def test_settings_left_open_resume_at_what_the_interrupted_run_chose_whatever_the_defaults_now(
    tmp_path: Path,
) -> None:
    """A run interrupted under other defaults (here: 128 units, dropout 0.3, the decay schedule, no
    regularisers, no words read as unknown) goes on with them, not with what the same options would
    choose today."""
    from rnngen.config import ModelConfig, ScheduleKind, TokenizerConfig, to_json_dict
    from rnngen.train.checkpoints import Checkpoint, checkpoint_folder, save_checkpoint
    from rnngen.train.request import resumed_settings

    asked_architecture, asked_training = ArchitectureConfig(), TrainingConfig(epochs=None)
    then = ArchitectureConfig(
        embedding_dim=128, units=128, dropout=0.3, tie_embeddings=True, **{name: 0.0 for name in AUTO_REGULARISERS}
    )
    then_training = replace(
        asked_training, val_split=0.05, max_len=40, ema=0.99, sampled_softmax=0, lr_schedule="decay", warmup_steps=0
    )
    # Written before --unk-singletons and --networks existed: neither its settings nor its fingerprint name them.
    younger = ("epochs", "unk_singletons", "networks")
    fingerprint = {
        "tokenizer": to_json_dict(TokenizerConfig()),
        "model": to_json_dict(ModelConfig.for_corpus(then, 500, 40)),
        "training": {name: value for name, value in to_json_dict(then_training).items() if name not in younger},
        "corpus_sha256": "0" * 64,
        "validation_sha256": None,
        "engine": "numpy",
    }
    settings = {
        "tokenizer": to_json_dict(TokenizerConfig()),
        "architecture": to_json_dict(asked_architecture),
        "training": {name: value for name, value in to_json_dict(asked_training).items() if name not in younger[1:]},
        "execution": {},
        "validation": None,
    }
    destination = tmp_path / "models" / "earlier"
    save_checkpoint(
        checkpoint_folder(destination),
        Checkpoint(1, fingerprint, {"loss": [1.0]}, {}, 1.0, ["a"], [np.zeros(1)], [np.zeros(1)], None, settings),
    )
    saved = resumed_settings(destination)
    assert saved.architecture == then
    assert saved.training.lr_schedule is ScheduleKind.decay and saved.training.warmup_steps == 0
    assert (saved.training.val_split, saved.training.ema, saved.training.max_len) == (0.05, 0.99, 40)
    # A setting younger than the checkpoint is what such runs trained with: off, not today's default.
    assert saved.training.unk_singletons == 0.0
    assert saved.training.networks == 1
    # The epochs are no fingerprint's: left open, the resumed run plans them as the interrupted one did.
    assert saved.training.epochs is None
