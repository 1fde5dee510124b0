"""Compiles and fits a model on a corpus, reporting progress through a callback, and saves it."""

from __future__ import annotations

import datetime
import importlib.metadata
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rnngen.config import (
    AUTO_VALIDATION_MIN_LINES,
    AUTO_VALIDATION_SPLIT,
    MAX_LEN_CAP,
    ArchitectureConfig,
    ModelConfig,
    TokenizerConfig,
    TrainingConfig,
    to_json_dict,
)
from rnngen.corpus import Corpus, load_corpus, split_lines
from rnngen.errors import CorpusError
from rnngen.keras_backend import import_keras
from rnngen.model import build_model, export_weights
from rnngen.sequences import PrefixBatches, TokenStream, prefix_samples
from rnngen.store import KERAS_FILE, write_model_folder

keras = import_keras()


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


class _KerasBatches(keras.utils.PyDataset):  # type: ignore[name-defined]
    """Hands PrefixBatches to ``model.fit`` and reshuffles them between epochs."""

    def __init__(self, batches: PrefixBatches) -> None:
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batches.batch(index)

    def on_epoch_end(self) -> None:
        self.batches.new_epoch()


class _ReporterCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
    def __init__(self, reporter: TrainingReporter, epochs: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.reporter = reporter
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_train_begin(self.epochs, self.steps_per_epoch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_batch_end(self.epoch, batch, _floats(logs))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_epoch_end(epoch, _floats(logs))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.reporter.on_train_end()


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (logs or {}).items()}


def _resolve_max_len(corpus: Corpus, requested: int | None) -> int:
    if requested is not None:
        return requested
    return int(min(corpus.stream.line_lengths.max(), MAX_LEN_CAP))


def _resolve_val_split(corpus: Corpus, requested: float | None) -> float:
    if requested is not None:
        return requested
    return AUTO_VALIDATION_SPLIT if corpus.usable_lines >= AUTO_VALIDATION_MIN_LINES else 0.0


def _versions() -> dict[str, str]:
    versions = {"backend": keras.backend.backend()}
    for package in ("rnngen", "keras", "numpy", "tensorflow", "jax", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _batches(stream: TokenStream, model_config: ModelConfig, training: TrainingConfig, shuffle: bool) -> PrefixBatches:
    return PrefixBatches(
        stream,
        prefix_samples(stream),
        context_len=model_config.context_len,
        vocab_size=model_config.vocab_size,
        batch_size=training.batch_size,
        seed=training.seed,
        shuffle=shuffle,
    )


def train_corpus(
    source: str | Path,
    destination: Path,
    tokenizer_config: TokenizerConfig | None = None,
    architecture: ArchitectureConfig | None = None,
    training: TrainingConfig | None = None,
    reporter: TrainingReporter | None = None,
) -> TrainingResult:
    """Train a model on a corpus file ('-' for standard input) and save it to ``destination``."""
    tokenizer_config = tokenizer_config or TokenizerConfig()
    architecture = architecture or ArchitectureConfig()
    training = training or TrainingConfig()
    started = time.monotonic()

    corpus = load_corpus(source, tokenizer_config)
    training = replace(
        training,
        max_len=_resolve_max_len(corpus, training.max_len),
        val_split=_resolve_val_split(corpus, training.val_split),
    )
    assert training.max_len is not None and training.val_split is not None
    model_config = ModelConfig.for_corpus(architecture, corpus.vocabulary.size, training.max_len)
    training_stream, validation_stream = split_lines(corpus.stream, training.val_split, training.seed)
    if len(prefix_samples(training_stream)) == 0:
        raise CorpusError(f"{corpus.source}: no training samples are left after holding out validation lines")

    keras.utils.set_random_seed(training.seed)
    model = build_model(model_config)
    model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=training.learning_rate),
        metrics=["accuracy"],
    )
    training_batches = _batches(training_stream, model_config, training, shuffle=True)
    validation_batches = (
        None if validation_stream is None else _batches(validation_stream, model_config, training, shuffle=False)
    )
    monitored = "loss" if validation_batches is None else "val_loss"
    callbacks: list[Any] = []
    if training.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitored, patience=training.patience, restore_best_weights=True)
        )
    if reporter is not None:
        callbacks.append(_ReporterCallback(reporter, training.epochs, len(training_batches)))
    history = model.fit(
        _KerasBatches(training_batches),
        validation_data=None if validation_batches is None else _KerasBatches(validation_batches),
        epochs=training.epochs,
        callbacks=callbacks,
        verbose=0,
    ).history
    epochs_run = len(history["loss"])
    # The reported metrics are those of the epoch whose weights are kept (the best one).
    best_epoch = int(np.argmin(history[monitored]))
    metrics = {name: float(values[best_epoch]) for name, values in history.items()}
    metrics["epoch"] = best_epoch + 1

    config: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tokenizer": to_json_dict(tokenizer_config),
        "model": to_json_dict(model_config),
        "training": to_json_dict(training),
        "corpus": {
            "source": corpus.source,
            "sha256": corpus.sha256,
            "characters": corpus.characters,
            "usable_lines": corpus.usable_lines,
            "tokens": int(len(corpus.stream.ids)),
            "training_samples": len(training_batches.samples),
            "validation_samples": 0 if validation_batches is None else len(validation_batches.samples),
        },
        "metrics": metrics,
        "history": {name: [float(value) for value in values] for name, values in history.items()},
        "epochs_run": epochs_run,
        "training_seconds": round(time.monotonic() - started, 3),
        "versions": _versions(),
    }
    write_model_folder(
        destination,
        config,
        corpus.vocabulary,
        export_weights(model, model_config),
        write_extra=lambda folder: model.save(folder / KERAS_FILE),
    )
    return TrainingResult(
        folder=Path(destination),
        vocab_size=corpus.vocabulary.size,
        samples=len(training_batches.samples),
        validation_samples=config["corpus"]["validation_samples"],
        epochs_run=epochs_run,
        metrics=metrics,
        seconds=time.monotonic() - started,
    )
