"""What a training run is, whichever engine fits it: the settings resolved from the corpus, the
batches, the fingerprint a resumed run must match, and the config the model folder records.

Keras-free, so that the numpy engine (numpy_training.py) trains without importing TensorFlow.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rnngen.checkpoints import Checkpoint, load_checkpoint
from rnngen.config import (
    AUTO_VALIDATION_MIN_LINES,
    AUTO_VALIDATION_SPLIT,
    MAX_LEN_CAP,
    STREAM_MAX_LEN,
    ArchitectureConfig,
    ContextKind,
    EngineKind,
    ModelConfig,
    TokenizerConfig,
    TrainingConfig,
    to_json_dict,
)
from rnngen.corpus import Corpus, load_corpus, load_validation, split_lines
from rnngen.errors import CorpusError, ModelFolderError, UsageError
from rnngen.sequences import PrefixBatches, TokenStream, WindowBatches, line_windows, prefix_samples
from rnngen.store import recover_folder


class TrainingReporter(Protocol):
    """Receives progress; the core never prints, the command line decides how to show it."""

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None: ...

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self) -> None: ...


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training run produced."""

    folder: Path
    vocab_size: int
    samples: int
    validation_samples: int
    epochs_run: int
    metrics: dict[str, float]
    seconds: float
    # False on the workers of a multi-worker run other than the chief: they saved nothing.
    chief: bool = True


# Perplexity comes from the per-token cross-entropy (summed over real targets, then divided by their
# count), not from Keras's loss, whose epoch figure is an average of batch means.
PERPLEXITY_OF = {"cross_entropy": "perplexity", "val_cross_entropy": "val_perplexity"}


def with_perplexities(values: dict[str, float]) -> dict[str, float]:
    """The values plus exp(mean cross-entropy per token) for training and validation, where present."""
    extended = dict(values)
    for source, name in PERPLEXITY_OF.items():
        if source in values:
            extended[name] = float(np.exp(min(values[source], 50.0)))
    return extended


def resolve_max_len(stream: TokenStream, requested: int | None, context: ContextKind) -> int:
    """The requested length; else in line context the longest framed line (<eol> words <eol>) up to
    MAX_LEN_CAP, in stream context STREAM_MAX_LEN."""
    if requested is not None:
        return requested
    if context is ContextKind.stream:
        return STREAM_MAX_LEN
    return int(min(stream.line_lengths.max() + 2, MAX_LEN_CAP))


def resolve_val_split(corpus: Corpus, requested: float | None, has_validation_file: bool) -> float:
    if requested is not None:
        return requested
    if has_validation_file:
        return 0.0
    return AUTO_VALIDATION_SPLIT if corpus.usable_lines >= AUTO_VALIDATION_MIN_LINES else 0.0


def package_versions(backend: str) -> dict[str, str]:
    """The training backend ("tensorflow", "jax", "numpy", ...) and the versions of the packages in play."""
    versions = {"backend": backend}
    for package in ("rnngen", "keras", "numpy", "tensorflow", "jax", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


class Batches(Protocol):
    def __len__(self) -> int: ...

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...

    def set_epoch(self, epoch: int) -> None: ...


@dataclass(frozen=True)
class DataPlan:
    """How a model of this shape is fed: its batches, and how many targets they hold."""

    batches: Batches
    targets: int


def data_plan(
    stream: TokenStream, model_config: ModelConfig, training: TrainingConfig, boundary_id: int, shuffle: bool
) -> DataPlan | None:
    """Whole-line windows for a one-directional model, the notebook's prefixes for a bidirectional one;
    in stream context, windows cut from all lines joined end to end."""
    if training.context is ContextKind.stream:
        joined = stream.joined(boundary_id)
        windows = line_windows(joined, model_config.context_len)
        if len(windows) == 0:
            return None
        batches = WindowBatches(joined, windows, training.batch_size, training.seed, shuffle, model_config.vocab_size)
        return DataPlan(batches, windows.targets)
    framed = stream.with_boundaries(boundary_id)
    if model_config.bidirectional:
        samples = prefix_samples(framed)
        if len(samples) == 0:
            return None
        prefix_batches = PrefixBatches(
            framed,
            samples,
            model_config.context_len,
            model_config.vocab_size,
            training.batch_size,
            training.seed,
            shuffle,
        )
        return DataPlan(prefix_batches, len(samples))
    windows = line_windows(framed, model_config.context_len)
    if len(windows) == 0:
        return None
    batches = WindowBatches(framed, windows, training.batch_size, training.seed, shuffle, model_config.vocab_size)
    return DataPlan(batches, windows.targets)


# Options a resumed run may change: how long to go on, and how patient to be.
RESUMABLE_CHANGES = ("epochs", "patience")


def run_fingerprint(
    tokenizer_config: TokenizerConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    corpus: Corpus,
    validation_stream: TokenStream | None,
    engine: EngineKind = EngineKind.keras,
) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: settings, corpus, validation text, and
    the engine (each keeps its optimizer state in its own layout)."""
    validation = None
    if validation_stream is not None:
        validation = hashlib.sha256(validation_stream.ids.tobytes() + validation_stream.line_starts.tobytes())
    return {
        "tokenizer": to_json_dict(tokenizer_config),
        "model": to_json_dict(model_config),
        "training": {name: value for name, value in to_json_dict(training).items() if name not in RESUMABLE_CHANGES},
        "corpus_sha256": corpus.sha256,
        "validation_sha256": None if validation is None else validation.hexdigest(),
        "engine": engine.value,
    }


def check_resumable(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume a run with another corpus or other settings, naming the first difference."""
    advice = "use the interrupted run's corpus and options, or train without --resume to start over"
    if saved.get("corpus_sha256") != current["corpus_sha256"]:
        raise UsageError(f"cannot resume: the corpus is not the one the checkpoint was trained on; {advice}")
    if saved.get("validation_sha256") != current["validation_sha256"]:
        raise UsageError(f"cannot resume: the validation text differs from the checkpoint's; {advice}")
    # Checkpoints written before there was a choice of engine are Keras's.
    saved_engine = saved.get("engine", EngineKind.keras.value)
    if saved_engine != current["engine"]:
        raise UsageError(f"cannot resume: the interrupted run trained with --engine {saved_engine}; {advice}")
    for section in ("tokenizer", "model", "training"):
        before, now = saved.get(section) or {}, current[section]
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                option = "--" + name.replace("_", "-")
                raise UsageError(
                    f"cannot resume: {option} was {before.get(name)!r} in the interrupted run, "
                    f"{now.get(name)!r} now; {advice}"
                )


def checkpoint_to_resume(folder: Path) -> Checkpoint:
    recover_folder(folder)
    if not folder.exists():
        raise ModelFolderError(f"nothing to resume: no checkpoint at {folder}; train without --resume")
    return load_checkpoint(folder)


def stop_message(signal_number: int, epochs_done: int, checkpoint_path: Path) -> str:
    name = signal.Signals(signal_number).name
    if epochs_done == 0:
        return f"training stopped by {name} before its first epoch ended; nothing was saved"
    return (
        f"training stopped by {name}; {epochs_done} finished epoch(s) are kept in {checkpoint_path}: "
        "run the same command with --resume to go on"
    )


@dataclass(frozen=True)
class PreparedRun:
    """A run's corpus, its settings with the corpus-dependent defaults filled in, and its batches."""

    corpus: Corpus
    training: TrainingConfig  # max_len and val_split resolved
    model_config: ModelConfig
    training_plan: DataPlan
    validation_plan: DataPlan | None
    validation_stream: TokenStream | None
    fingerprint: dict[str, Any]

    @property
    def monitored(self) -> str:
        """The history entry early stopping and the learning-rate halving watch."""
        return "cross_entropy" if self.validation_plan is None else "val_cross_entropy"

    def result(self, destination: Path, folder: dict[str, Any], seconds: float, chief: bool = True) -> TrainingResult:
        """What the finished run reports, from the configuration saved in its model folder."""
        return TrainingResult(
            folder=Path(destination),
            vocab_size=self.model_config.vocab_size,
            samples=self.training_plan.targets,
            validation_samples=folder["corpus"]["validation_targets"],
            epochs_run=folder["epochs_run"],
            metrics=folder["metrics"],
            seconds=seconds,
            chief=chief,
        )


def prepare_run(
    source: str | Path,
    tokenizer_config: TokenizerConfig,
    architecture: ArchitectureConfig,
    training: TrainingConfig,
    validation_source: str | Path | None,
    engine: EngineKind = EngineKind.keras,
) -> PreparedRun:
    """Read the corpus (and validation text), resolve the settings that depend on it, plan the batches."""
    corpus = load_corpus(source, tokenizer_config, max_words=training.max_vocab, min_count=training.min_count)
    vocabulary = corpus.vocabulary
    training = replace(
        training,
        max_len=resolve_max_len(corpus.stream, training.max_len, training.context),
        val_split=resolve_val_split(corpus, training.val_split, validation_source is not None),
    )
    assert training.max_len is not None and training.val_split is not None
    model_config = ModelConfig.for_corpus(architecture, vocabulary.size, training.max_len)
    training_stream, validation_stream = split_lines(corpus.stream, training.val_split, training.seed)
    if validation_source is not None:
        validation_stream = load_validation(validation_source, tokenizer_config, vocabulary)
    training_plan = data_plan(training_stream, model_config, training, vocabulary.end_of_line_id, shuffle=True)
    if training_plan is None:
        raise CorpusError(f"{corpus.source}: no training samples are left after holding out validation lines")
    validation_plan = (
        None
        if validation_stream is None
        else data_plan(validation_stream, model_config, training, vocabulary.end_of_line_id, shuffle=False)
    )
    fingerprint = run_fingerprint(tokenizer_config, model_config, training, corpus, validation_stream, engine)
    return PreparedRun(corpus, training, model_config, training_plan, validation_plan, validation_stream, fingerprint)


def kept_metrics(history: dict[str, list[float]], monitored: str) -> dict[str, float]:
    """The metrics of the epoch whose weights are kept (the best one by ``monitored``), with its number."""
    best_epoch = int(np.argmin(history[monitored]))
    metrics = with_perplexities(
        {name: values[best_epoch] for name, values in history.items() if name != "learning_rate"}
    )
    metrics["epoch"] = best_epoch + 1
    return metrics


def folder_config(
    run: PreparedRun,
    tokenizer_config: TokenizerConfig,
    validation_source: str | Path | None,
    history: dict[str, list[float]],
    checkpoint: Checkpoint | None,
    training_seconds: float,
    fit_seconds: float,
    execution: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    """The model folder's config.json: settings, corpus, metrics and history, timings, versions."""
    corpus = run.corpus
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tokenizer": to_json_dict(tokenizer_config),
        "model": to_json_dict(run.model_config),
        "training": to_json_dict(run.training),
        "corpus": {
            "source": corpus.source,
            "sha256": corpus.sha256,
            "usable_lines": corpus.usable_lines,
            "tokens": corpus.tokens,
            "unknown_tokens": corpus.unknown_tokens,
            "distinct_characters": corpus.distinct_characters,
            "validation_source": None if validation_source is None else str(validation_source),
            "training_targets": run.training_plan.targets,
            "validation_targets": 0 if run.validation_plan is None else run.validation_plan.targets,
        },
        "metrics": kept_metrics(history, run.monitored),
        "history": history,
        "epochs_run": len(history["loss"]),
        "resumed_at_epoch": None if checkpoint is None else checkpoint.epochs_done,
        "training_seconds": round(training_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "execution": execution,
        "versions": versions,
    }
