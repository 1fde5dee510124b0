"""What a user asks of a training run, as one object that the command line and the Python API build
alike, and the settings an interrupted run was asked for, which `--resume` takes up again."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnngen.config import (
    ArchitectureConfig,
    ContextKind,
    ExecutionConfig,
    TokenizerConfig,
    TrainingBudget,
    TrainingConfig,
    to_json_dict,
)
from rnngen.errors import ModelFolderError, UsageError
from rnngen.train.checkpoints import LATER_SETTINGS, checkpoint_folder, engine_of, state_to_resume


@dataclass(frozen=True, kw_only=True)
class TrainingRequest:
    """A training run as asked for: the corpus, where the model goes, and every setting.

    Settings that depend on the corpus (the sequence length, the validation share) may be left to
    it (None); ``rnngen.train.setup.prepare_run`` resolves them once the corpus is read.
    """

    corpus: str | Path  # a text file, a folder of .txt files, or "-" for standard input
    destination: Path  # the model folder to write
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    # How long this command may train and how often it checkpoints: not among the settings a resumed
    # run takes over, since each command gives its own.
    budget: TrainingBudget = field(default_factory=TrainingBudget)
    # A validation text (file or folder) instead of a share of the corpus's lines.
    validation: str | Path | None = None
    # Go on from the checkpoint an interrupted run left beside the destination.
    resume: bool = False
    replace: bool = False  # an existing model at destination may be replaced (train --force)
    # Mix the calibrated network with a trigram of the training lines (rnngen.train.mixture): done after
    # training, so a resumed run may change it.
    trigram: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "destination", Path(self.destination))
        if self.training.val_split is not None and self.validation is not None:
            # Lines held out of the corpus would be scored by nothing: the validation text replaces them.
            raise UsageError("--val-split and --valid are alternatives; give one")
        if self.architecture.bidirectional and self.training.context is ContextKind.stream:
            raise UsageError("a bidirectional model reads each line on its own: --context stream needs one direction")
        if self.training.stateful and self.training.context is not ContextKind.stream:
            raise UsageError("--stateful carries the state from window to window of a stream: add --context stream")

    @property
    def checkpoint(self) -> Path:
        """Where this run keeps its checkpoint (the chief's, in a multi-worker run)."""
        return checkpoint_folder(self.destination)

    def settings(self) -> dict[str, Any]:
        """The settings as JSON values, as a checkpoint keeps them for a resumed run."""
        return {
            "tokenizer": to_json_dict(self.tokenizer),
            "architecture": to_json_dict(self.architecture),
            "training": to_json_dict(self.training),
            "execution": to_json_dict(self.execution),
            "validation": None if self.validation is None else str(self.validation),
        }


@dataclass(frozen=True)
class SavedSettings:
    """The settings of an interrupted run, read from its checkpoint; the engine is the one it trained with."""

    tokenizer: TokenizerConfig
    architecture: ArchitectureConfig
    training: TrainingConfig
    execution: ExecutionConfig
    validation: str | None


def resumed_settings(destination: Path) -> SavedSettings:
    """What the run whose checkpoint waits beside ``destination`` was asked for.

    Checkpoints written before the settings were kept give what their fingerprint records: every
    setting that shapes the model, with --epochs and --patience at their defaults and no validation file.
    """
    folder = checkpoint_folder(destination)
    state = state_to_resume(folder)
    fingerprint = state["fingerprint"]
    settings = state.get("settings") or {
        "tokenizer": fingerprint.get("tokenizer"),
        "architecture": _architecture_fields(fingerprint.get("model")),
        "training": fingerprint.get("training"),
        "execution": {},
        "validation": None,
    }
    try:
        engine = engine_of(fingerprint)
        validation = settings.get("validation")
        architecture = _settled(
            settings["architecture"], _architecture_fields(fingerprint.get("model")), ArchitectureConfig
        )
        return SavedSettings(
            tokenizer=TokenizerConfig(**settings["tokenizer"]),
            architecture=ArchitectureConfig(**architecture),
            training=TrainingConfig(**_settled(settings["training"], fingerprint.get("training"), TrainingConfig)),
            execution=dataclasses.replace(ExecutionConfig(**settings["execution"]), engine=engine),
            validation=None if validation is None else str(validation),
        )
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ModelFolderError(f"{folder}: the checkpoint's settings are damaged ({error})") from None


def _settled(asked: dict[str, Any], resolved: Any, settings: type) -> dict[str, Any]:
    """The settings a run was asked for, with those it left open (None) at the values the run resolved
    them to, as its fingerprint records them: the defaults that resolved them may have changed since
    (a wider network, another schedule), and the resumed run must go on with the interrupted one's. A
    setting of ``settings`` younger than the fingerprint (absent from it, and from the settings asked
    for) takes the value such a run trained with (LATER_SETTINGS), not today's default."""
    if not isinstance(resolved, dict):
        return asked
    settled = {
        name: resolved.get(name) if value is None and name in resolved else value for name, value in asked.items()
    }
    names = {setting.name for setting in dataclasses.fields(settings)}
    younger = {
        name: value
        for name, value in LATER_SETTINGS.items()
        if name in names and name not in asked and name not in resolved
    }
    return {**settled, **younger}


def _architecture_fields(model: Any) -> Any:
    """The architecture part of a fingerprint's model settings (which add what the corpus fixed)."""
    if not isinstance(model, dict):
        return model
    corpus_fixed = {"vocab_size", "max_len"}
    return {name: value for name, value in model.items() if name not in corpus_fixed}
