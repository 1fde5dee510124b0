"""Training: a request (request.py) becomes a run (run.py) over one of two engines (engines.py):
numpy_engine, which needs no TensorFlow, or keras_engine, the only part of rnngen that imports Keras.

``train_corpus`` is the Python API's entry point, and the command line's.
"""

from __future__ import annotations

from pathlib import Path

from rnngen.config import ArchitectureConfig, ExecutionConfig, TokenizerConfig, TrainingBudget, TrainingConfig
from rnngen.train.reporting import TrainingReporter
from rnngen.train.request import TrainingRequest, resumed_settings
from rnngen.train.run import run_training
from rnngen.train.setup import TrainingResult

__all__ = ["TrainingRequest", "TrainingResult", "run_training", "train_corpus"]


def train_corpus(
    source: str | Path,
    destination: str | Path,
    *,
    tokenizer_config: TokenizerConfig | None = None,
    architecture: ArchitectureConfig | None = None,
    training: TrainingConfig | None = None,
    execution: ExecutionConfig | None = None,
    budget: TrainingBudget | None = None,
    validation_source: str | Path | None = None,
    resume: bool = False,
    reporter: TrainingReporter | None = None,
) -> TrainingResult:
    """Train a model on a corpus ('-' for standard input, or a folder of .txt files) and save it at
    ``destination`` with its vocabulary.

    Validation lines come from ``validation_source`` when given, else from a share of the corpus. A
    checkpoint is kept beside ``destination`` after every epoch; with ``resume`` training goes on
    from it, and settings left out (None) are the interrupted run's; settings given must match
    them, but for the number of epochs and the patience. SIGINT or SIGTERM stops training at the
    next batch end with TrainingInterrupted. ``execution`` chooses the engine (numpy where it can
    train the request, by default), the device, the precision and the distribution strategy; in a
    multi-worker run only the chief saves. ``budget`` may end training after a number of updates or
    seconds, in the middle of an epoch too, and checkpoint in the middle of epochs; it is this call's
    own, never taken over from the checkpoint.
    """
    if resume:
        saved = resumed_settings(Path(destination))
        tokenizer_config = tokenizer_config or saved.tokenizer
        architecture = architecture or saved.architecture
        training = training or saved.training
        execution = execution or saved.execution
        validation_source = validation_source if validation_source is not None else saved.validation
    request = TrainingRequest(
        corpus=source,
        destination=Path(destination),
        tokenizer=tokenizer_config or TokenizerConfig(),
        architecture=architecture or ArchitectureConfig(),
        training=training or TrainingConfig(),
        execution=execution or ExecutionConfig(),
        budget=budget or TrainingBudget(),
        validation=validation_source,
        resume=resume,
    )
    return run_training(request, reporter)
