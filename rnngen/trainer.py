"""Chooses the training engine for a run: Keras's fit (`training.py`) or numpy's (`numpy_training.py`).

Each is imported only when chosen, so the numpy engine starts without loading TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from rnngen.config import ArchitectureConfig, EngineKind, ExecutionConfig, TokenizerConfig, TrainingConfig
from rnngen.training_setup import TrainingReporter, TrainingResult


def train_corpus(
    source: str | Path,
    destination: Path,
    tokenizer_config: TokenizerConfig | None = None,
    architecture: ArchitectureConfig | None = None,
    training: TrainingConfig | None = None,
    reporter: TrainingReporter | None = None,
    validation_source: str | Path | None = None,
    resume: bool = False,
    execution: ExecutionConfig | None = None,
) -> TrainingResult:
    """Train a model on a corpus and save it (see `training.train_corpus`), with the engine
    ``execution.engine`` names (Keras's unless told otherwise)."""
    execution = execution or ExecutionConfig()
    if execution.engine is EngineKind.numpy:
        from rnngen.numpy_training import train_corpus_numpy

        train = train_corpus_numpy
    else:
        from rnngen.training import train_corpus as train
    return train(
        source, destination, tokenizer_config, architecture, training, reporter, validation_source, resume, execution
    )
