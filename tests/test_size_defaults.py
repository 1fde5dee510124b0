"""The network a corpus gets when the user names no sizes: small and untied for a few sentences,
tied and regularised for real text (wider with the numpy engine's regularisers); the numpy engine's
moving average, sampled softmax and planned cosine schedule; whatever the user names is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnngen.config import (
    AUTO_EMA_BOUNDS,
    AUTO_EMA_EPOCHS,
    AUTO_EPOCH_BOUNDS,
    AUTO_PLANNED_UPDATES,
    AUTO_REGULARISERS,
    AUTO_SAMPLED_SOFTMAX_DRAWS,
    AUTO_SAMPLED_SOFTMAX_MIN_VOCAB,
    AUTO_WARMUP_STEPS,
    LARGE_TEXT,
    LARGE_TEXT_EPOCHS,
    LARGE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT,
    MIDSIZE_TEXT_MIN_TOKENS,
    REAL_TEXT,
    REAL_TEXT_MIN_TOKENS,
    REGULARISED_TEXT,
    SMALL_TEXT,
    UNPLANNED_EPOCHS,
    ArchitectureConfig,
    EngineKind,
    ScheduleKind,
    SizeDefaults,
    TrainingConfig,
)
from rnngen.train.setup import resolve_architecture, resolve_ema, resolve_sampled_softmax, resolve_schedule
from tests.conftest import SEED_TEXT, rnngen


def settled(architecture: ArchitectureConfig) -> tuple[object, ...]:
    return (architecture.embedding_dim, architecture.units, architecture.dropout, architecture.tie_embeddings)


def regularisers(architecture: ArchitectureConfig | SizeDefaults) -> dict[str, object]:
    return {name: getattr(architecture, name) for name in AUTO_REGULARISERS}


NUMPY, KERAS = EngineKind.numpy, EngineKind.keras


@pytest.mark.parametrize("engine", [NUMPY, KERAS])
def test_a_few_sentences_get_the_small_network_without_regularisers(engine: EngineKind) -> None:
    chosen = resolve_architecture(ArchitectureConfig(), REAL_TEXT_MIN_TOKENS - 1, engine)
    assert settled(chosen) == (SMALL_TEXT.embedding_dim, SMALL_TEXT.units, SMALL_TEXT.dropout, False)
    assert set(regularisers(chosen).values()) == {0.0}


def test_real_text_gets_the_regularised_network_on_the_numpy_engine() -> None:
    chosen = resolve_architecture(ArchitectureConfig(), REAL_TEXT_MIN_TOKENS, NUMPY)
    units = REGULARISED_TEXT.units
    assert settled(chosen) == (units, units, REGULARISED_TEXT.dropout, True)
    assert regularisers(chosen) == regularisers(REGULARISED_TEXT)
    assert chosen.weight_drop > 0 and chosen.activation_regularization > 0 and chosen.dropout_input > 0


def test_larger_corpora_get_lighter_dropouts_on_the_numpy_engine() -> None:
    def chosen(tokens: int, engine: EngineKind = NUMPY, **named: float) -> ArchitectureConfig:
        return resolve_architecture(ArchitectureConfig(**named), tokens, engine)

    assert regularisers(chosen(MIDSIZE_TEXT_MIN_TOKENS - 1)) == regularisers(REGULARISED_TEXT)
    assert regularisers(chosen(MIDSIZE_TEXT_MIN_TOKENS)) == regularisers(MIDSIZE_TEXT)
    assert regularisers(chosen(LARGE_TEXT_MIN_TOKENS - 1)) == regularisers(MIDSIZE_TEXT)
    assert regularisers(chosen(LARGE_TEXT_MIN_TOKENS)) == regularisers(LARGE_TEXT)
    assert settled(chosen(LARGE_TEXT_MIN_TOKENS)) == settled(chosen(REAL_TEXT_MIN_TOKENS))
    for name in ("dropout_input", "dropout_output", "weight_drop"):
        rates = [getattr(defaults, name) for defaults in (REGULARISED_TEXT, MIDSIZE_TEXT, LARGE_TEXT)]
        assert rates[0] > rates[1] > rates[2] > 0, name
    # The Keras engine keeps its network, and a rate the user names is kept.
    keras = chosen(LARGE_TEXT_MIN_TOKENS, KERAS)
    assert settled(keras) == (REAL_TEXT.embedding_dim, REAL_TEXT.units, REAL_TEXT.dropout, True)
    named = chosen(LARGE_TEXT_MIN_TOKENS, weight_drop=0.3)
    assert named.weight_drop == 0.3 and named.dropout_input == LARGE_TEXT.dropout_input


def test_real_text_gets_the_tied_network_with_dropout_on_the_keras_engine() -> None:
    # Keras lacks weight drop, AR and TAR: it keeps the network measured without them.
    chosen = resolve_architecture(ArchitectureConfig(), REAL_TEXT_MIN_TOKENS, KERAS)
    assert settled(chosen) == (REAL_TEXT.units, REAL_TEXT.units, REAL_TEXT.dropout, True)
    assert set(regularisers(chosen).values()) == {0.0}


def test_the_embedding_follows_the_units_when_tied() -> None:
    assert settled(resolve_architecture(ArchitectureConfig(units=96), 10**6, NUMPY))[:2] == (96, 96)
    bidirectional = resolve_architecture(ArchitectureConfig(units=32, bidirectional=True), 10**6, KERAS)
    assert settled(bidirectional) == (64, 32, REAL_TEXT.dropout, True)
    tied = ArchitectureConfig(embedding_dim=96, tie_embeddings=True)
    assert settled(resolve_architecture(tied, 10, NUMPY))[:2] == (96, 96)


def test_what_the_user_names_is_kept() -> None:
    named = ArchitectureConfig(embedding_dim=32, units=64, dropout=0.0, tie_embeddings=False)
    assert settled(resolve_architecture(named, 10**6, NUMPY)) == (32, 64, 0.0, False)
    # An embedding of another width than the units cannot be tied, so auto leaves it untied.
    assert settled(resolve_architecture(ArchitectureConfig(embedding_dim=32), 10**6, NUMPY))[3] is False
    # A regulariser named (0 included) is kept; the others are still chosen.
    chosen = resolve_architecture(ArchitectureConfig(weight_drop=0.0, dropout_input=0.5), REAL_TEXT_MIN_TOKENS, NUMPY)
    assert (chosen.weight_drop, chosen.dropout_input) == (0.0, 0.5)
    assert chosen.dropout_output == REGULARISED_TEXT.dropout_output
    assert (
        resolve_architecture(ArchitectureConfig(activation_regularization=3.0), 10, KERAS).activation_regularization
        == 3.0
    )


def resolved_schedule(
    steps: int, tokens: int = LARGE_TEXT_MIN_TOKENS - 1, engine: EngineKind = NUMPY, **given: object
) -> tuple[object, ...]:
    training = resolve_schedule(TrainingConfig(**given), steps, tokens, engine)  # type: ignore[arg-type]
    return training.lr_schedule, training.epochs, training.warmup_steps


def test_real_text_on_the_numpy_engine_gets_a_cosine_over_planned_epochs() -> None:
    lowest, highest = AUTO_EPOCH_BOUNDS
    # About AUTO_PLANNED_UPDATES updates: 156 batches an epoch (PTB's first 10,000 lines) make 13 epochs.
    assert resolved_schedule(156) == (ScheduleKind.cosine, 13, AUTO_WARMUP_STEPS)
    assert -(-AUTO_PLANNED_UPDATES // 156) == 13
    # Within the bounds: a large corpus still gets several epochs, a small one not hundreds.
    assert resolved_schedule(5_000)[1] == lowest
    assert resolved_schedule(60) == (ScheduleKind.cosine, 34, AUTO_WARMUP_STEPS)
    # The warm-up is at most a tenth of the run.
    assert resolved_schedule(20) == (ScheduleKind.cosine, highest, highest * 20 // 10)
    assert resolved_schedule(2) == (ScheduleKind.cosine, highest, highest * 2 // 10)


def test_a_large_corpus_on_the_numpy_engine_is_planned_over_fewer_epochs() -> None:
    # With LARGE_TEXT's dropouts: however many batches an epoch.
    for steps in (156, 1_000, 5_000):
        assert resolved_schedule(steps, tokens=LARGE_TEXT_MIN_TOKENS) == (
            ScheduleKind.cosine,
            LARGE_TEXT_EPOCHS,
            AUTO_WARMUP_STEPS,
        )
    assert LARGE_TEXT_EPOCHS < AUTO_EPOCH_BOUNDS[0]
    # Epochs named are kept, and the Keras engine (without those dropouts) plans as for any corpus.
    assert resolved_schedule(1_000, tokens=LARGE_TEXT_MIN_TOKENS, epochs=12)[1] == 12
    assert resolved_schedule(156, tokens=LARGE_TEXT_MIN_TOKENS, engine=KERAS, lr_schedule="cosine")[1] == 13


def test_the_decay_schedule_stays_where_the_cosine_is_not_chosen() -> None:
    unplanned = (ScheduleKind.decay, UNPLANNED_EPOCHS, 0)
    assert resolved_schedule(156, engine=KERAS) == unplanned
    assert resolved_schedule(156, tokens=REAL_TEXT_MIN_TOKENS - 1) == unplanned
    # --lr-decay asks for the per-epoch decay.
    assert resolved_schedule(156, lr_decay=0.8) == unplanned


def test_a_schedule_epochs_or_warm_up_named_are_kept() -> None:
    assert resolved_schedule(156, epochs=5) == (ScheduleKind.cosine, 5, 5 * 156 // 10)
    assert resolved_schedule(156, epochs=30) == (ScheduleKind.cosine, 30, AUTO_WARMUP_STEPS)
    assert resolved_schedule(156, warmup_steps=0) == (ScheduleKind.cosine, 13, 0)
    assert resolved_schedule(156, lr_schedule="decay") == (ScheduleKind.decay, UNPLANNED_EPOCHS, 0)
    # A cosine named on the Keras engine is planned too, but warms up only when asked to.
    assert resolved_schedule(156, engine=KERAS, lr_schedule="linear") == (ScheduleKind.linear, 13, 0)
    assert resolved_schedule(156, engine=KERAS, lr_schedule="cosine", warmup_steps=7, epochs=3) == (
        ScheduleKind.cosine,
        3,
        7,
    )


def test_an_impossible_tie_is_refused_when_both_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        ArchitectureConfig(embedding_dim=32, units=64, tie_embeddings=True)


def test_the_numpy_engine_averages_the_weights_of_real_text_over_a_few_epochs() -> None:
    numpy, keras, real = EngineKind.numpy, EngineKind.keras, REAL_TEXT_MIN_TOKENS
    assert AUTO_EMA_EPOCHS == 2.5
    # 141 batches an epoch: an average over about 352 steps.
    assert resolve_ema(None, 141, real, numpy) == round(1 - 1 / 352.5, 6)
    # Within its bounds: a few steps an epoch, or thousands.
    assert resolve_ema(None, 3, real, numpy) == AUTO_EMA_BOUNDS[0]
    assert resolve_ema(None, 50_000, real, numpy) == AUTO_EMA_BOUNDS[1]
    # Not for a few sentences learned by heart, not on the Keras engine, never over what the user names.
    assert resolve_ema(None, 141, real - 1, numpy) == 0.0
    assert resolve_ema(None, 141, real, keras) == 0.0
    assert resolve_ema(0.0, 141, real, numpy) == 0.0
    assert resolve_ema(0.9995, 141, 10, numpy) == 0.9995


def test_a_large_vocabulary_gets_a_sampled_softmax_on_the_numpy_engine() -> None:
    numpy, keras, real = EngineKind.numpy, EngineKind.keras, REAL_TEXT_MIN_TOKENS
    large = AUTO_SAMPLED_SOFTMAX_MIN_VOCAB
    assert resolve_sampled_softmax(None, large, real, numpy) == AUTO_SAMPLED_SOFTMAX_DRAWS
    assert resolve_sampled_softmax(None, large - 1, real, numpy) == 0
    assert resolve_sampled_softmax(None, large, real, keras) == 0
    assert resolve_sampled_softmax(0, large, real, numpy) == 0
    assert resolve_sampled_softmax(512, 100, real, numpy) == 512


def test_a_run_records_the_average_schedule_and_regularisers_it_chose(tmp_path: Path) -> None:
    # 1,200 lines of five words: real text, 17 batches of up to 64 lines an epoch once a tenth is held out.
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "log"]
    lines = [" ".join(words[(line + step) % len(words)] for step in range(5)) for line in range(1_200)]
    (tmp_path / "real.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    for corpus in ("real.txt", "seed.txt"):
        result = rnngen("train", corpus, "--epochs", "1", "--units", "8", "--embedding-dim", "8", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    real_config = json.loads((tmp_path / "models" / "real" / "config.json").read_text(encoding="utf-8"))
    real = real_config["training"]
    assert real["ema"] == round(1 - 1 / (AUTO_EMA_EPOCHS * 17), 6) and real["sampled_softmax"] == 0
    # The cosine over the one epoch asked for, warming up over a tenth of its 17 steps.
    assert (real["lr_schedule"], real["epochs"], real["warmup_steps"]) == ("cosine", 1, 1)
    assert regularisers(ArchitectureConfig(**{name: real_config["model"][name] for name in AUTO_REGULARISERS})) == (
        regularisers(REGULARISED_TEXT)
    )
    seed_config = json.loads((tmp_path / "models" / "seed" / "config.json").read_text(encoding="utf-8"))
    seed = seed_config["training"]
    assert seed["ema"] == 0.0 and seed["sampled_softmax"] == 0
    assert (seed["lr_schedule"], seed["epochs"], seed["warmup_steps"]) == ("decay", 1, 0)
    assert {seed_config["model"][name] for name in AUTO_REGULARISERS} == {0.0}
