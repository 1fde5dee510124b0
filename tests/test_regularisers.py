"""AWD-LSTM's regularisers and the learning-rate schedules in the numpy engine: their gradients against
finite differences, what each mask drops, the moving average of the weights, the rates a schedule
gives, and exact resumption with them on."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import (
    ArchitectureConfig,
    ContextKind,
    EngineKind,
    ExecutionConfig,
    ModelConfig,
    ScheduleKind,
    TrainingConfig,
)
from rnngen.network.weights import GATES, cell_weight_names, trainable_names
from rnngen.train import TrainingRequest
from rnngen.train.controls import EpochControls
from rnngen.train.numpy_engine import backprop
from rnngen.train.numpy_engine.masks import draw_masks
from rnngen.train.numpy_engine.session import NumpySession
from rnngen.train.schedule import StepSchedule
from rnngen.train.setup import check_resumable, prepare_run

from .conftest import rnngen
from .test_help import help_of
from .test_numpy_engine import numeric_gradients, tiny_batch, tiny_config, tiny_weights

RATES = ("dropout_input", "dropout_hidden", "dropout_output", "dropout_embedding", "weight_drop")


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("option", [*RATES, "all"])
def test_gradients_with_each_regulariser_match_finite_differences(cell: str, option: str) -> None:
    rates = dict.fromkeys(RATES, 0.4) if option == "all" else {option: 0.5}
    # Two layers so that dropout_hidden acts; tied so that embedding dropout meets the output layer's use
    # of the same matrix (which it must leave undropped); the plain dropout too with all of them.
    plain_dropout = 0.2 if option == "all" else 0.0
    config = dataclasses.replace(tiny_config(cell, layers=2, tie=True, dropout=plain_dropout), **rates)
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)
    masks = draw_masks(config, inputs.shape[1], inputs.shape[0], np.random.default_rng(5))
    drawn = [masks.embedding_rows, *masks.layer_inputs, *masks.recurrent_kernels, masks.top]
    assert any(mask is not None and (mask == 0).any() for mask in drawn)  # something is dropped

    _, gradients = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5))
    numeric = numeric_gradients(weights, config, inputs, targets, seed=5)
    for name in trainable_names(config):
        np.testing.assert_allclose(gradients[name], numeric[name], atol=1e-7, rtol=1e-5, err_msg=name)


PENALTIES = {"activation_regularization": 2.0, "temporal_activation_regularization": 1.0}


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize(
    "penalties", [PENALTIES, {"activation_regularization": 2.0}, {"temporal_activation_regularization": 1.0}]
)
def test_gradients_with_activation_penalties_match_finite_differences(cell: str, penalties: dict[str, float]) -> None:
    """AR and TAR on a padded batch, with the output dropout that AR reads after and TAR before."""
    config = dataclasses.replace(tiny_config(cell, layers=2, tie=True), dropout_output=0.4, **penalties)
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)
    score, gradients = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(5))
    assert score.penalty > 0
    numeric = numeric_gradients(weights, config, inputs, targets, seed=5)
    for name in trainable_names(config):
        np.testing.assert_allclose(gradients[name], numeric[name], atol=1e-7, rtol=1e-5, err_msg=name)


def test_the_activation_penalties_are_awd_lstms_means() -> None:
    """alpha x mean(dropped outputs^2) + beta x mean((h_t - h_t-1)^2), over a batch without padding; the
    reported cross-entropy is the loss without them."""
    config = dataclasses.replace(tiny_config("lstm", layers=2), dropout_output=0.5, **PENALTIES)
    weights = tiny_weights(config, seed=1)
    random = np.random.default_rng(3)
    inputs = random.integers(1, config.vocab_size, (3, 6)).astype(np.int32)
    targets = random.integers(1, config.vocab_size, (3, 6)).astype(np.int32)
    score, _ = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(4))
    masks = draw_masks(config, 6, 3, np.random.default_rng(4))
    traces, top = backprop._forward(weights, config, inputs, masks)
    outputs = traces[-1].cell.outputs
    expected = 2.0 * np.mean(top**2) + 1.0 * np.mean((outputs[1:] - outputs[:-1]) ** 2)
    assert score.penalty == pytest.approx(expected, rel=1e-12)
    plain = dataclasses.replace(config, activation_regularization=0.0, temporal_activation_regularization=0.0)
    without, _ = backprop.loss_and_gradients(weights, plain, inputs, targets, np.random.default_rng(4))
    assert without.penalty == 0.0 and without.cross_entropy == pytest.approx(score.cross_entropy, rel=1e-12)


def test_with_every_rate_at_zero_the_masks_and_the_loss_are_the_plain_dropouts() -> None:
    """New regularisers that are off draw nothing, so a run with --dropout alone is what it was."""
    config = tiny_config("lstm", layers=2, dropout=0.3)
    inputs, _ = tiny_batch(config.vocab_size, seed=2)
    random = np.random.default_rng(7)
    masks = draw_masks(config, inputs.shape[1], inputs.shape[0], random)
    assert masks.embedding_rows is None and masks.recurrent_kernels == [None, None]
    # The plain dropout's three masks and nothing else came from the generator.
    replay = np.random.default_rng(7)
    for mask in [*masks.layer_inputs, masks.top]:
        assert mask is not None
        np.testing.assert_array_equal(mask > 0, replay.random(mask.shape, dtype=np.float32) >= 0.3)
    assert random.bit_generator.state == replay.bit_generator.state


def embedded_inputs(config: ModelConfig, inputs: np.ndarray, seed: int) -> np.ndarray:
    """(time, batch, dim): what the first recurrent layer reads in training, from an all-ones embedding."""
    weights = tiny_weights(config, seed=1)
    weights["embedding"][:] = 1.0
    masks = draw_masks(config, inputs.shape[1], inputs.shape[0], np.random.default_rng(seed))
    traces, _ = backprop._forward(weights, config, inputs, masks)
    return traces[0].inputs


def test_locked_dropout_keeps_one_mask_per_row_at_every_time_step() -> None:
    config = dataclasses.replace(tiny_config("lstm", layers=2, vocab=9), dropout_input=0.5, dropout_hidden=0.5)
    inputs = np.random.default_rng(0).integers(1, 9, (6, 8)).astype(np.int32)  # (batch, time), no padding
    seen = embedded_inputs(config, inputs, seed=3)  # (time, batch, dim)
    assert (seen == 0).any() and (seen == 2.0).any()  # dropped, and kept values scaled by 1 / (1 - 0.5)
    np.testing.assert_array_equal(seen, np.broadcast_to(seen[:1], seen.shape))  # the same at every step
    assert not (seen[0] == seen[0, :1]).all()  # but not the same for every row
    masks = draw_masks(config, 8, 6, np.random.default_rng(3))
    for mask in (masks.layer_inputs[0], masks.layer_inputs[1]):
        assert mask is not None and mask.shape[0] == 1  # one mask per row, broadcast over time
    locked_output = dataclasses.replace(config, dropout_input=0.0, dropout_hidden=0.0, dropout_output=0.5)
    top = draw_masks(locked_output, 8, 6, np.random.default_rng(3)).top
    assert top is not None and top.shape == (1, 6, config.units)


def test_embedding_dropout_drops_whole_words_wherever_they_occur() -> None:
    config = dataclasses.replace(tiny_config("gru", vocab=6), dropout_embedding=0.5)
    inputs = np.tile(np.arange(1, 6, dtype=np.int32), (4, 3))  # every word in every row, many times
    seen = embedded_inputs(config, inputs, seed=2)  # (time, batch, dim)
    ids = inputs.T
    dropped = {int(word) for word in ids[(seen == 0).all(axis=-1)]}
    kept = {int(word) for word in ids[(seen == 2.0).all(axis=-1)]}
    assert dropped and kept and not dropped & kept and dropped | kept == set(range(1, 6))


def test_weight_drop_masks_the_recurrent_kernel_for_the_batch_and_validation_uses_the_raw_one() -> None:
    config = dataclasses.replace(tiny_config("lstm", layers=2), weight_drop=0.5)
    masks = draw_masks(config, 5, 3, np.random.default_rng(1))
    for mask in masks.recurrent_kernels:
        assert mask is not None and mask.shape == (config.units, GATES[config.cell] * config.units)
        assert set(np.unique(mask)) == {0.0, 2.0}
    assert masks.layer_inputs == [None, None] and masks.top is None and masks.embedding_rows is None
    weights = tiny_weights(config, seed=1)
    inputs, targets = tiny_batch(config.vocab_size, seed=2)
    plain = dataclasses.replace(config, weight_drop=0.0)
    validation = backprop.score_batch(weights, config, inputs, targets)
    without = backprop.score_batch(weights, plain, inputs, targets)
    assert validation.cross_entropy == pytest.approx(without.cross_entropy)
    dropped, _ = backprop.loss_and_gradients(weights, config, inputs, targets, np.random.default_rng(1))
    assert dropped.cross_entropy != pytest.approx(validation.cross_entropy)
    # Weights with the mask applied by hand give the dropped loss without the mask.
    by_hand = {name: array.copy() for name, array in weights.items()}
    for layer, mask in enumerate(masks.recurrent_kernels):
        by_hand[cell_weight_names(layer)[1]] *= mask
    assert backprop.score_batch(by_hand, plain, inputs, targets).cross_entropy == pytest.approx(dropped.cross_entropy)


# -- the learning-rate schedules ----------------------------------------------------------------------


def test_the_schedules_give_these_factors() -> None:
    cosine = StepSchedule(ScheduleKind.cosine, warmup_steps=4, total_steps=14)
    assert [cosine.factor(step) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cosine.factor(4) == 1.0 and cosine.factor(9) == pytest.approx(0.5) and cosine.factor(14) == 0.0
    assert cosine.factor(6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert cosine.factor(100) == 0.0
    linear = StepSchedule(ScheduleKind.linear, warmup_steps=0, total_steps=10)
    assert [linear.factor(step) for step in (0, 1, 5, 9, 10)] == pytest.approx([1.0, 0.9, 0.5, 0.1, 0.0])
    decay = StepSchedule(ScheduleKind.decay, warmup_steps=2, total_steps=10)
    assert [decay.factor(step) for step in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    assert StepSchedule(ScheduleKind.decay, 0, 10).is_constant and not decay.is_constant
    training = TrainingConfig(epochs=3, lr_schedule=ScheduleKind.cosine, warmup_steps=5)
    assert StepSchedule.for_training(training, steps_per_epoch=7) == StepSchedule(ScheduleKind.cosine, 5, 21)


def test_a_cosine_or_linear_schedule_replaces_decay_and_halving() -> None:
    with pytest.raises(ValueError, match="lr_schedule cosine"):
        TrainingConfig(lr_schedule=ScheduleKind.cosine, lr_decay=0.5)
    assert EpochControls.for_training(TrainingConfig(lr_schedule=ScheduleKind.linear), 10).plateau is None
    decay = TrainingConfig(warmup_steps=3, lr_schedule=ScheduleKind.decay)
    assert EpochControls.for_training(decay, 10).plateau is not None
    with pytest.raises(ValueError, match="not resolved"):
        EpochControls.for_training(TrainingConfig(), 10)
    assert TrainingConfig(lr_schedule="cosine").lr_schedule is ScheduleKind.cosine  # type: ignore[arg-type]


def corpus_lines(lines: int) -> str:
    words = "the cat sat on a mat and then it ran far away".split()
    return "\n".join(" ".join(words[index % 3 : 2 + index % 10]) for index in range(lines)) + "\n"


def small_run(tmp_path: Path, architecture: ArchitectureConfig, training: TrainingConfig) -> NumpySession:
    (tmp_path / "corpus.txt").write_text(corpus_lines(60), encoding="utf-8")
    request = TrainingRequest(
        corpus=tmp_path / "corpus.txt",
        destination=tmp_path / "model",
        architecture=architecture,
        training=training,
        execution=ExecutionConfig(engine=EngineKind.numpy),
    )
    return NumpySession(prepare_run(request, EngineKind.numpy))


SMALL = ArchitectureConfig(embedding_dim=6, units=6, dropout=0.0, tie_embeddings=False)


def test_the_session_steps_with_the_schedules_rate(tmp_path: Path) -> None:
    training = TrainingConfig(epochs=2, batch_size=8, lr_schedule=ScheduleKind.linear, warmup_steps=3, val_split=0.2)
    session = small_run(tmp_path, SMALL, training)
    steps = len(session.run.training_plan.batches)
    factors: list[float] = []
    apply = session.optimizer.apply

    def recording(weights: dict[str, np.ndarray], gradients: dict[str, np.ndarray], factor: float = 1.0) -> None:
        factors.append(factor)
        apply(weights, gradients, factor)

    session.optimizer.apply = recording  # type: ignore[method-assign]
    for epoch in range(2):
        session.train_epoch(epoch, lambda step, logs: False)
    schedule = StepSchedule(ScheduleKind.linear, 3, 2 * steps)
    assert factors == [schedule.factor(step) for step in range(2 * steps)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and factors[-1] == pytest.approx(1 / (2 * steps - 3))
    assert session.optimizer.learning_rate == training.learning_rate  # the epoch's rate is what checkpoints keep


# -- the moving average of the weights ------------------------------------------------------------------


def test_the_moving_average_is_validated_and_saved_while_the_raw_weights_train(tmp_path: Path) -> None:
    decay = 0.9
    training = TrainingConfig(epochs=1, batch_size=8, ema=decay, val_split=0.2)
    session = small_run(tmp_path, SMALL, training)
    after_each_step: list[dict[str, np.ndarray]] = []

    def record(step: int, logs: dict[str, float]) -> bool:
        after_each_step.append({name: array.copy() for name, array in session.model_weights.items()})
        return False

    session.train_epoch(0, record)
    assert len(after_each_step) >= 3
    expected = {name: array.astype(np.float64) for name, array in after_each_step[0].items()}  # the first step's
    for raw in after_each_step[1:]:
        for name in expected:
            expected[name] = decay * expected[name] + (1 - decay) * raw[name]
    assert session.average is not None
    for name in expected:
        np.testing.assert_allclose(session.average[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert not np.allclose(session.average[name], session.model_weights[name])  # the raw ones go their way
    for name, array in zip(session.names, session.weights(), strict=True):
        np.testing.assert_array_equal(array, session.average[name])
    exported = session.export()
    np.testing.assert_array_equal(exported["embedding"], session.average["embedding"])
    validation = session.validate()
    raw_weights, session.average = session.average, None
    assert validation["val_cross_entropy"] != pytest.approx(session.validate()["val_cross_entropy"])
    session.average = raw_weights
    # A checkpoint holds both, and gives both back.
    state = session.state()
    assert state.variable_paths == [*session.names, *(f"average/{name}" for name in session.names)]
    restored = small_run(tmp_path, SMALL, training)
    restored.restore(state)
    assert restored.average is not None
    for name in session.names:
        np.testing.assert_array_equal(restored.model_weights[name], session.model_weights[name])
        np.testing.assert_array_equal(restored.average[name], session.average[name])


# -- through the command line ---------------------------------------------------------------------------

OPTIONS = ["--epochs", "3", "--batch-size", "8", "--embedding-dim", "8", "--units", "8", "--layers", "2"]
OPTIONS += ["--val-split", "0.2", "--patience", "0", "--quiet", "--engine", "numpy"]
REGULARISED = ["--dropout-input", "0.3", "--dropout-hidden", "0.2", "--dropout-output", "0.3"]
REGULARISED += ["--dropout-embedding", "0.1", "--weight-drop", "0.3", "--ema", "0.9"]
REGULARISED += ["--lr-schedule", "cosine", "--warmup-steps", "10", "--ar", "2", "--tar", "1"]


def saved_weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def assert_resumes_exactly(
    tmp_path: Path, lines: int, options: list[str], max_steps: int, text: str | None = None
) -> None:
    """Train corpus_lines(lines) (or ``text``) with ``options`` into straight/ in one go, and into stages/
    stopped by --max-steps and resumed; the two folders must hold the same weights, bit for bit."""
    (tmp_path / "corpus.txt").write_text(corpus_lines(lines) if text is None else text, encoding="utf-8")
    straight = rnngen("train", "corpus.txt", "-o", "straight", *options, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    first = rnngen("train", "corpus.txt", "-o", "stages", *options, "--max-steps", str(max_steps), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = rnngen("train", "corpus.txt", "-o", "stages", "--resume", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected, continued = saved_weights(tmp_path / "straight"), saved_weights(tmp_path / "stages")
    assert expected.keys() == continued.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], continued[name], err_msg=name)


def test_a_budgeted_run_with_every_regulariser_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    assert_resumes_exactly(tmp_path, 300, [*OPTIONS, *REGULARISED], max_steps=40)
    configs = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("straight", "stages")]
    assert configs[0]["history"] == configs[1]["history"]
    model, training = configs[0]["model"], configs[0]["training"]
    assert (model["dropout_input"], model["weight_drop"], training["ema"]) == (0.3, 0.3, 0.9)
    assert (training["lr_schedule"], training["warmup_steps"]) == ("cosine", 10)
    info = json.loads(rnngen("info", "-m", "straight", "--json", cwd=tmp_path).stdout)
    assert info["regularisers"]["dropout_hidden"] == 0.2 and info["training"]["lr_schedule"] == "cosine"
    assert info["regularisers"]["activation_regularization"] == 2.0
    assert info["regularisers"]["temporal_activation_regularization"] == 1.0
    rates = configs[0]["history"]["learning_rate"]
    assert rates[0] > rates[1] > 0.0 < rates[2] < 0.01 * rates[1]  # the last step trains at nearly zero
    changed = rnngen("train", "corpus.txt", "-o", "stages", *OPTIONS, "--max-steps", "5", "--force", cwd=tmp_path)
    assert changed.returncode == 0
    again = rnngen("train", "corpus.txt", "-o", "stages", "--resume", "--weight-drop", "0.1", cwd=tmp_path)
    assert again.returncode == 2 and "--weight-drop was 0.0 in the interrupted run, 0.1 now" in again.stderr


def test_checkpoints_from_before_the_regularisers_resume(tmp_path: Path) -> None:
    """A fingerprint without the new settings was trained with them at their defaults (off)."""
    (tmp_path / "corpus.txt").write_text(corpus_lines(60), encoding="utf-8")
    request = TrainingRequest(corpus=tmp_path / "corpus.txt", destination=tmp_path / "model")
    current = prepare_run(request, EngineKind.numpy).fingerprint
    older = json.loads(json.dumps(current))
    for name in RATES:
        del older["model"][name]
    for name in ("lr_schedule", "warmup_steps", "ema", "unk_singletons"):
        del older["training"][name]
    check_resumable(older, current)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dropout-input", "1"], "--dropout-input"),
        (["--weight-drop", "-0.1"], "--weight-drop"),
        (["--ema", "1"], "--ema"),
        (["--warmup-steps", "-1"], "--warmup-steps"),
        (["--lr-schedule", "step"], "--lr-schedule"),
        (["--lr-schedule", "linear", "--lr-decay", "0.5"], "--lr-schedule linear takes the rate to zero"),
        (["--engine", "keras", "--weight-drop", "0.2"], "--engine keras does not do --weight-drop"),
        (["--engine", "keras", "--ema", "0.99"], "--engine keras does not do --ema"),
        (["--ar", "-1"], "--ar"),
        (["--engine", "keras", "--tar", "1"], "--engine keras does not do --ar and --tar"),
        (["--sampled-softmax", "-1"], "--sampled-softmax"),
        (["--engine", "keras", "--sampled-softmax", "100"], "--engine keras does not do --sampled-softmax"),
        (["--stateful"], "--stateful carries the state from window to window of a stream: add --context stream"),
        (["--stateful", "--context", "stream", "--engine", "keras"], "--engine keras does not do --stateful"),
        (["--unk-singletons", "1"], "--unk-singletons"),
        (["--engine", "keras", "--unk-singletons", "0.5"], "--engine keras does not do --unk-singletons"),
        (["--bidirectional", "--weight-drop", "0.2"], "--bidirectional needs the Keras engine, which does not do"),
    ],
)
def test_bad_training_options_are_short_usage_errors(tmp_path: Path, arguments: list[str], message: str) -> None:
    (tmp_path / "corpus.txt").write_text(corpus_lines(20), encoding="utf-8")
    result = rnngen("train", "corpus.txt", *arguments, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "models").exists()


def test_the_options_show_in_their_help_panels(tmp_path: Path) -> None:
    text = help_of("train", "--help", cwd=tmp_path, columns=120).stdout

    def panel(name: str) -> str:
        start = text.index(f"╭─ {name} ")
        return text[start : text.index("╰", start)]

    model_options = ("--dropout-input", "--dropout-hidden", "--dropout-output", "--dropout-embedding", "--weight-drop")
    for option in (*model_options, "--ar", "--tar"):
        assert option in panel("Model"), option
    for option in ("--lr-schedule", "--warmup-steps", "--ema", "--sampled-softmax", "--stateful", "--unk-singletons"):
        assert option in panel("Training"), option
    assert "<decay|cosine|linear>" in panel("Training")


def test_auto_takes_numpy_for_what_keras_lacks_even_beside_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnngen.errors import UsageError
    from rnngen.train import engines

    monkeypatch.setattr(engines, "gpu_visible", lambda: True)

    def choice(architecture: ArchitectureConfig, training: TrainingConfig) -> EngineKind:
        asked = TrainingRequest(corpus="c.txt", destination=Path("m"), architecture=architecture, training=training)
        return engines.choose_engine(asked).kind

    assert choice(ArchitectureConfig(), TrainingConfig()) is EngineKind.keras  # the GPU, as before
    assert choice(ArchitectureConfig(weight_drop=0.2), TrainingConfig()) is EngineKind.numpy
    assert choice(ArchitectureConfig(), TrainingConfig(ema=0.99)) is EngineKind.numpy
    assert choice(ArchitectureConfig(), TrainingConfig(sampled_softmax=1024)) is EngineKind.numpy
    assert choice(ArchitectureConfig(), TrainingConfig(unk_singletons=0.5)) is EngineKind.numpy
    assert choice(ArchitectureConfig(temporal_activation_regularization=1.0), TrainingConfig()) is EngineKind.numpy
    stream = TrainingConfig(context=ContextKind.stream, stateful=True)
    assert choice(ArchitectureConfig(), stream) is EngineKind.numpy
    assert choice(ArchitectureConfig(dropout_input=0.3), TrainingConfig(lr_schedule=ScheduleKind.cosine)) is (
        EngineKind.keras
    )
    with pytest.raises(UsageError, match="--bidirectional needs the Keras engine, which does not do --ema"):
        choice(ArchitectureConfig(bidirectional=True), TrainingConfig(ema=0.99))
