"""rnngen: train a recurrent next-word model on your own text and continue prompts from the shell.

The Python API is what the command line itself uses::

    from rnngen import GenerationConfig
    from rnngen import TextGenerator
    from rnngen import train_corpus
    train_corpus("corpus.txt", Path("models/corpus"))
    generator = TextGenerator.from_folder(Path("models/corpus"))
    print(generator.generate("오늘", GenerationConfig(words=3)).text)

Names are imported on first use, so ``import rnngen`` stays light: TensorFlow loads only when
training is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY_NAMES = {
    "train_corpus": "rnngen.train",
    "TrainingResult": "rnngen.train",
    "TextGenerator": "rnngen.inference.generation",
    "Generation": "rnngen.inference.generation",
    "read_model_folder": "rnngen.store.folder",
    "latest_model_folder": "rnngen.store.folder",
    "ArchitectureConfig": "rnngen.config",
    "TokenizerConfig": "rnngen.config",
    "TrainingConfig": "rnngen.config",
    "ExecutionConfig": "rnngen.config",
    "CellKind": "rnngen.config",
    "GenerationConfig": "rnngen.config",
    "evaluate_file": "rnngen.inference.evaluation",
    "Evaluation": "rnngen.inference.evaluation",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'rnngen' has no attribute {name!r}")
