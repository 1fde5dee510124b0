"""What a training run is, whichever engine computes it: the settings resolved from the corpus, the
batches, the fingerprint a resumed run must match, and the config the model folder records.

Keras-free, so that the numpy engine trains without importing TensorFlow.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import (
    AUTO_EMA_BOUNDS,
    AUTO_EMA_EPOCHS,
    AUTO_EPOCH_BOUNDS,
    AUTO_PLANNED_UPDATES,
    AUTO_REGULARISERS,
    AUTO_SAMPLED_SOFTMAX_DRAWS,
    AUTO_SAMPLED_SOFTMAX_MIN_VOCAB,
    AUTO_UNK_SINGLETONS,
    AUTO_VALIDATION_ENOUGH_TOKENS,
    AUTO_VALIDATION_MAX_TOKENS,
    AUTO_VALIDATION_MIN_LINES,
    AUTO_VALIDATION_MIN_SPLIT,
    AUTO_VALIDATION_SPLIT,
    AUTO_WARMUP_STEPS,
    LARGE_TEXT,
    LARGE_TEXT_EPOCHS,
    LARGE_TEXT_MIN_TOKENS,
    MAX_LEN_CAP,
    MIDSIZE_TEXT,
    MIDSIZE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT_NETWORKS,
    REAL_TEXT,
    REAL_TEXT_MIN_TOKENS,
    REGULARISED_TEXT,
    SMALL_TEXT,
    STREAM_MAX_LEN,
    UNPLANNED_EPOCHS,
    ArchitectureConfig,
    ContextKind,
    EngineKind,
    ModelConfig,
    ScheduleKind,
    TokenizerConfig,
    TrainingConfig,
    to_json_dict,
)
from rnngen.data.batches import Batches, TokenStream
from rnngen.data.block_batches import BatchLayout, BlockBatches
from rnngen.data.corpus import Corpus, describe_read, held_out_line_numbers, unknown_marker
from rnngen.data.corpus_cache import Opened, open_prepared
from rnngen.data.line_blocks import LineBlocks
from rnngen.data.streamed_corpus import SCORED_TOKENS, prepared_corpus
from rnngen.errors import CorpusError, UsageError
from rnngen.store.card import kept_figures
from rnngen.train.checkpoints import LATER_SETTINGS, Checkpoint, engine_of
from rnngen.train.reporting import DataReport, with_perplexities
from rnngen.train.request import TrainingRequest
from rnngen.train.unknown_singletons import UnknownSingletons


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
    stop_reason: str = ""
    # Where --resume goes on from when a budget ended training before the run was done; else None.
    checkpoint: Path | None = None
    # Words of the vocabulary that only the held-out lines hold, added after validation (train/calibration.py).
    held_out_words: int = 0
    # The trigram's share of each probability once mixed in (train/mixture.py); 0: the network alone.
    trigram_weight: float = 0.0
    # The networks merged into the saved one (train/networks.py), as config.json records them: seed,
    # epochs_run and the kept epoch's metrics; empty for a run of one network.
    networks: tuple[dict[str, Any], ...] = ()


def resolve_max_len(longest_line: int, requested: int | None, context: ContextKind) -> int:
    """The requested length; else in line context the longest framed line (<eol> words <eol>) up to
    MAX_LEN_CAP, in stream context STREAM_MAX_LEN."""
    if requested is not None:
        return requested
    if context is ContextKind.stream:
        return STREAM_MAX_LEN
    return min(longest_line + 2, MAX_LEN_CAP)


def resolve_val_split(usable_lines: int, tokens: int, requested: float | None, has_validation_file: bool) -> float:
    """The requested fraction; else none with a validation file or under AUTO_VALIDATION_MIN_LINES lines;
    else AUTO_VALIDATION_SPLIT of the lines, less on a larger corpus (about AUTO_VALIDATION_ENOUGH_TOKENS
    tokens, but at least AUTO_VALIDATION_MIN_SPLIT), and at most about AUTO_VALIDATION_MAX_TOKENS tokens."""
    if requested is not None:
        return requested
    if has_validation_file or usable_lines < AUTO_VALIDATION_MIN_LINES:
        return 0.0
    share = min(AUTO_VALIDATION_SPLIT, max(AUTO_VALIDATION_MIN_SPLIT, AUTO_VALIDATION_ENOUGH_TOKENS / tokens))
    return min(share, AUTO_VALIDATION_MAX_TOKENS / tokens)


def resolve_architecture(requested: ArchitectureConfig, training_tokens: int, engine: EngineKind) -> ArchitectureConfig:
    """The network with every size, dropout, tying and regulariser the user left open chosen by the corpus's
    size and the engine: SMALL_TEXT's below REAL_TEXT_MIN_TOKENS training tokens; from there on
    REGULARISED_TEXT's for the numpy engine, which has every regulariser (MIDSIZE_TEXT's and LARGE_TEXT's
    lighter rates from MIDSIZE_TEXT_MIN_TOKENS and LARGE_TEXT_MIN_TOKENS), and REAL_TEXT's for Keras
    (config.py). An embedding left open matches the last
    layer's width when the output layer is to share it."""
    defaults = SMALL_TEXT
    if training_tokens >= REAL_TEXT_MIN_TOKENS:
        defaults = REGULARISED_TEXT if engine is EngineKind.numpy else REAL_TEXT
    if engine is EngineKind.numpy:
        if training_tokens >= MIDSIZE_TEXT_MIN_TOKENS:
            defaults = MIDSIZE_TEXT
        if training_tokens >= LARGE_TEXT_MIN_TOKENS:
            defaults = LARGE_TEXT
    directions = 2 if requested.bidirectional else 1
    units, embedding_dim, tie = requested.units, requested.embedding_dim, requested.tie_embeddings
    if units is None and embedding_dim is not None and tie:
        units = max(embedding_dim // directions, 1)
    units = defaults.units if units is None else units
    wants_tie = defaults.tie_embeddings if tie is None else tie
    if embedding_dim is None:
        embedding_dim = units * directions if wants_tie else defaults.embedding_dim
    if tie is None:
        tie = defaults.tie_embeddings and units * directions == embedding_dim
    dropout = defaults.dropout if requested.dropout is None else requested.dropout
    regularisers = {
        name: getattr(defaults, name) if getattr(requested, name) is None else getattr(requested, name)
        for name in AUTO_REGULARISERS
    }
    return replace(
        requested, embedding_dim=embedding_dim, units=units, dropout=dropout, tie_embeddings=tie, **regularisers
    )


def _numpy_real_text(training_tokens: int, engine: EngineKind) -> bool:
    """Whether the engine's own defaults for real text apply: the numpy engine, REAL_TEXT_MIN_TOKENS
    training tokens or more."""
    return engine is EngineKind.numpy and training_tokens >= REAL_TEXT_MIN_TOKENS


def resolve_sampled_softmax(requested: int | None, vocab_size: int, training_tokens: int, engine: EngineKind) -> int:
    """The requested draws; else AUTO_SAMPLED_SOFTMAX_DRAWS for the numpy engine on real text whose vocabulary
    holds AUTO_SAMPLED_SOFTMAX_MIN_VOCAB words or more, and the full softmax (0) otherwise."""
    if requested is not None:
        return requested
    large = vocab_size >= AUTO_SAMPLED_SOFTMAX_MIN_VOCAB
    return AUTO_SAMPLED_SOFTMAX_DRAWS if large and _numpy_real_text(training_tokens, engine) else 0


def resolve_unk_singletons(requested: float | None, training_tokens: int, engine: EngineKind) -> float:
    """The requested probability; else AUTO_UNK_SINGLETONS for the numpy engine on real text, and none (0)
    otherwise."""
    if requested is not None:
        return requested
    return AUTO_UNK_SINGLETONS if _numpy_real_text(training_tokens, engine) else 0.0


def resolve_networks(requested: int | None, training_tokens: int, engine: EngineKind) -> int:
    """The requested count; else MIDSIZE_TEXT_NETWORKS for the numpy engine from MIDSIZE_TEXT_MIN_TOKENS to
    LARGE_TEXT_MIN_TOKENS training tokens, and one network otherwise."""
    if requested is not None:
        return requested
    midsize = MIDSIZE_TEXT_MIN_TOKENS <= training_tokens < LARGE_TEXT_MIN_TOKENS
    return MIDSIZE_TEXT_NETWORKS if engine is EngineKind.numpy and midsize else 1


def resolve_ema(requested: float | None, steps_per_epoch: int, training_tokens: int, engine: EngineKind) -> float:
    """The requested decay; else for the numpy engine on real text an average over about AUTO_EMA_EPOCHS
    epochs of steps (1 - 1 / (AUTO_EMA_EPOCHS x steps an epoch), within AUTO_EMA_BOUNDS), and none (0)
    otherwise."""
    if requested is not None:
        return requested
    if not _numpy_real_text(training_tokens, engine):
        return 0.0
    lowest, highest = AUTO_EMA_BOUNDS
    averaged_steps = AUTO_EMA_EPOCHS * max(steps_per_epoch, 1)
    return round(min(max(1.0 - 1.0 / averaged_steps, lowest), highest), 6)


def resolve_schedule(
    training: TrainingConfig, steps_per_epoch: int, training_tokens: int, engine: EngineKind
) -> TrainingConfig:
    """The training settings with the schedule, its warm-up and the epochs filled in where the user left
    them open: for the numpy engine on real text (unless --lr-decay asks for the per-epoch decay) a cosine
    schedule; a cosine or linear schedule runs about AUTO_PLANNED_UPDATES updates (within
    AUTO_EPOCH_BOUNDS epochs; LARGE_TEXT_EPOCHS for the numpy engine from LARGE_TEXT_MIN_TOKENS training
    tokens, with LARGE_TEXT's dropouts) after a warm-up of AUTO_WARMUP_STEPS (at most a tenth of them) when
    the schedule was chosen here; otherwise the per-epoch decay, no warm-up, and UNPLANNED_EPOCHS at most."""
    schedule = training.lr_schedule
    chosen_here = schedule is None
    if schedule is None:
        wants_decay = training.lr_decay < 1.0 or not _numpy_real_text(training_tokens, engine)
        schedule = ScheduleKind.decay if wants_decay else ScheduleKind.cosine
    epochs = training.epochs
    if epochs is None:
        epochs = UNPLANNED_EPOCHS
        if schedule is not ScheduleKind.decay:
            lowest, highest = AUTO_EPOCH_BOUNDS
            epochs = min(max(-(-AUTO_PLANNED_UPDATES // max(steps_per_epoch, 1)), lowest), highest)
            if engine is EngineKind.numpy and training_tokens >= LARGE_TEXT_MIN_TOKENS:
                epochs = LARGE_TEXT_EPOCHS
    warmup = training.warmup_steps
    if warmup is None:
        warmup = 0
        if chosen_here and schedule is not ScheduleKind.decay:
            warmup = min(AUTO_WARMUP_STEPS, epochs * steps_per_epoch // 10)
    return replace(training, lr_schedule=schedule, epochs=epochs, warmup_steps=warmup)


def package_versions(backend: str) -> dict[str, str]:
    """The training backend ("tensorflow", "jax", "numpy", ...) and the versions of the packages in play."""
    versions = {"backend": backend}
    for package in ("rnngen", "keras", "numpy", "tensorflow", "jax", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


@dataclass(frozen=True)
class DataPlan:
    """How a model of this shape is fed: its batches, how many targets they hold, and how often each id
    is one of them."""

    batches: Batches
    targets: int
    target_counts: np.ndarray  # (vocab_size,)


def sampled_width(vocab_size: int, draws: int) -> int | None:
    """The words a training step scores each target against, as batch sizes are planned: the whole
    vocabulary without a sampled softmax (None), else at most the draws and as many of the batch's own
    targets (counted as twice the draws, which bounds the logits of a batch of that many positions)."""
    return None if draws == 0 else min(vocab_size, 2 * draws)


def data_plan(
    stream: TokenStream | LineBlocks,
    model_config: ModelConfig,
    training: TrainingConfig,
    boundary_id: int,
    shuffle: bool,
    scored_words: int | None = None,
) -> DataPlan | None:
    """Whole-line windows for a one-directional model, the notebook's prefixes for a bidirectional one;
    in stream context, windows cut from all lines joined end to end. A prepared corpus is planned a
    block at a time (block_batches.py), so that only the block being trained is in memory."""
    layout = BatchLayout(
        boundary_id=boundary_id,
        joined=training.context is ContextKind.stream,
        context_len=model_config.context_len,
        batch_size=training.batch_size,
        vocab_size=model_config.vocab_size,
        prefixes=model_config.bidirectional,
        scored_words=scored_words,
        tracks=training.stateful,
    )
    batches: Batches
    if isinstance(stream, LineBlocks):
        counts = stream.id_counts.copy()
        blocks = BlockBatches(stream, layout, training.seed, shuffle)
        if blocks.targets == 0:
            return None
        batches, targets = blocks, blocks.targets
    else:
        counts = np.bincount(stream.ids, minlength=model_config.vocab_size)
        targets = layout.count(stream.line_lengths)[1]
        if targets == 0:
            return None
        batches = layout.batches(stream, training.seed, shuffle)
    # Every word is a target once, and so is each line's end-of-line.
    counts[boundary_id] += stream.line_count
    return DataPlan(batches, targets, counts)


def training_data_plan(
    corpus: Corpus, model_config: ModelConfig, training: TrainingConfig, draws: int
) -> DataPlan | None:
    """The training lines' batches, in the order ``training``'s seed shuffles them. A sampled softmax of
    ``draws`` words scores far fewer words than the vocabulary, so its batches may hold more positions."""
    scored_words = sampled_width(model_config.vocab_size, draws)
    boundary_id = corpus.vocabulary.end_of_line_id
    return data_plan(corpus.stream, model_config, training, boundary_id, shuffle=True, scored_words=scored_words)


# Options a resumed run may change: how long to go on, and how patient to be.
RESUMABLE_CHANGES = ("epochs", "patience")


def run_fingerprint(
    tokenizer_config: TokenizerConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    corpus: Corpus,
    validation_stream: TokenStream | None,
    engine: EngineKind,
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
    """Refuse to resume a run with another corpus, other settings or another engine, naming the first
    difference: the tokenizer, then the corpus (whose text may make other corpus-dependent defaults),
    then the other settings, then the validation text (whose ids depend on the settings before it)."""
    advice = "use the interrupted run's corpus and options, or train without --resume to start over"

    def check_settings(section: str) -> None:
        before, now = saved.get(section) or {}, current[section]
        for name in sorted(set(before) | set(now)):
            # The vocabulary's size is no option: with the same corpus and settings it is the same.
            if name != "vocab_size" and before.get(name, LATER_SETTINGS.get(name)) != now.get(name):
                option = "--" + name.replace("_", "-")
                raise UsageError(
                    f"cannot resume: {option} was {before.get(name)!r} in the interrupted run, "
                    f"{now.get(name)!r} now; {advice}"
                )

    check_settings("tokenizer")
    if saved.get("corpus_sha256") != current["corpus_sha256"]:
        raise UsageError(f"cannot resume: the corpus is not the one the checkpoint was trained on; {advice}")
    check_settings("training")
    check_settings("model")
    if saved.get("validation_sha256") != current["validation_sha256"]:
        raise UsageError(f"cannot resume: the validation text differs from the checkpoint's; {advice}")
    saved_engine = engine_of(saved)
    if saved_engine.value != current["engine"]:
        raise UsageError(f"cannot resume: the interrupted run trained with --engine {saved_engine.value}; {advice}")


@dataclass(frozen=True)
class PreparedRun:
    """A run's request, its corpus, its settings with the corpus-dependent defaults filled in, and its batches."""

    request: TrainingRequest
    corpus: Corpus
    training: TrainingConfig  # max_len and val_split resolved
    model_config: ModelConfig
    training_plan: DataPlan
    validation_plan: DataPlan | None
    fingerprint: dict[str, Any]
    data_report: DataReport

    @cached_property
    def unknown_singletons(self) -> UnknownSingletons | None:
        """How the training batches read words seen once as unknown (--unk-singletons); None: they do not.
        Made once: the session, the output bias and the sampled softmax's proposal all read it."""
        probability = self.training.unk_singletons or 0.0
        counts = self.training_plan.target_counts
        return UnknownSingletons.for_run(probability, self.corpus.vocabulary, counts, self.training.seed)

    @property
    def target_counts(self) -> np.ndarray:
        """(vocab_size,): how often each id is a training target in an epoch, on average when words seen
        once are read as unknown."""
        replacement = self.unknown_singletons
        counts = self.training_plan.target_counts
        return counts if replacement is None else replacement.expected_counts(counts)

    def initial_output_bias(self) -> np.ndarray:
        """(vocab_size,) float32: the log of each id's add-one frequency among the training targets.

        An output layer started from it predicts the corpus's word frequencies before the first step,
        so training starts from the quality of counting words rather than of a uniform guess, and the
        first steps need not spend themselves learning how common each word is.
        """
        counts = self.target_counts.astype(np.float64) + 1.0
        return np.log(counts / counts.sum()).astype(np.float32)

    @property
    def monitored(self) -> str:
        """The history entry early stopping and the learning-rate halving watch."""
        return "cross_entropy" if self.validation_plan is None else "val_cross_entropy"

    def result(self, destination: Path, folder: dict[str, Any], seconds: float, chief: bool = True) -> TrainingResult:
        """What the finished run reports, from the configuration saved in its model folder."""
        return TrainingResult(
            folder=Path(destination),
            vocab_size=folder["model"]["vocab_size"],
            samples=self.training_plan.targets,
            validation_samples=folder["corpus"]["validation_targets"],
            epochs_run=folder["epochs_run"],
            metrics=folder["metrics"],
            seconds=seconds,
            chief=chief,
            stop_reason=folder.get("stop_reason", ""),
            held_out_words=folder.get("calibration", {}).get("held_out_words", 0),
            trigram_weight=round(1.0 - folder.get("mixture", {}).get("network_weight", 1.0), 6),
            networks=tuple(folder.get("networks", ())),
        )


def prepare_run(request: TrainingRequest, engine: EngineKind) -> PreparedRun:
    """Read the corpus (and validation text), hold out the validation lines, build the vocabulary from the
    training lines, resolve the settings that depend on the corpus, plan the batches."""
    training, tokenizer_config = request.training, request.tokenizer
    # A marker that cannot be matched is a usage error, told before the corpus is read.
    marker = None if training.unk_token is None else unknown_marker(training.unk_token, tokenizer_config)
    opened, source = open_prepared(request.corpus, tokenizer_config)
    text = opened.corpus
    if not text.has_text:
        raise CorpusError(f"{source.name}: the corpus is empty")
    if text.longest_line < 2:
        raise CorpusError(
            f"{source.name}: no line has two or more words, so there is no next word to learn; "
            "put one sentence per line"
        )
    val_split = resolve_val_split(text.lines, text.tokens, training.val_split, request.validation is not None)
    held_out = held_out_line_numbers(text.lines, val_split, training.seed)
    training = replace(
        training,
        max_len=resolve_max_len(text.longest_line, training.max_len, training.context),
        val_split=val_split,
    )
    assert training.max_len is not None
    read = [describe_read(source.name, source.folder_files, text.lines, text.tokens) + _prepared_how(opened)]
    validation_text = None
    if request.validation is not None:
        validation_opened, validation_source = open_prepared(request.validation, tokenizer_config)
        validation_text = validation_opened.corpus
        if validation_text.lines == 0:
            raise CorpusError(f"{validation_source.name}: the validation file has no words")
        read.append(
            describe_read(
                validation_source.name,
                validation_source.folder_files,
                validation_text.lines,
                validation_text.tokens,
                " for validation",
            )
            + _prepared_how(validation_opened)
        )

    def unknown_for(training_tokens: int) -> bool:
        # Words read as unknown in training need an id to be read as, and validation then reads its
        # unknown words as that id, as `evaluate` does.
        return resolve_unk_singletons(training.unk_singletons, training_tokens, engine) > 0

    corpus = prepared_corpus(
        text, source.name, held_out, validation_text, training.max_vocab, training.min_count, marker, unknown_for
    )
    vocabulary = corpus.vocabulary
    architecture = resolve_architecture(request.architecture, corpus.counts.tokens, engine)
    model_config = ModelConfig.for_corpus(architecture, vocabulary.size, training.max_len)
    draws = resolve_sampled_softmax(training.sampled_softmax, vocabulary.size, corpus.counts.tokens, engine)
    training_plan = training_data_plan(corpus, model_config, training, draws)
    if training_plan is None:
        raise CorpusError(f"{corpus.source}: no training samples are left after holding out validation lines")
    # The settings chosen by the corpus, now that the vocabulary and the batches an epoch are known.
    steps_per_epoch = len(training_plan.batches)
    decay = resolve_ema(training.ema, steps_per_epoch, corpus.counts.tokens, engine)
    unk_singletons = resolve_unk_singletons(training.unk_singletons, corpus.counts.tokens, engine)
    networks = resolve_networks(training.networks, corpus.counts.tokens, engine)
    training = resolve_schedule(
        replace(training, sampled_softmax=draws, ema=decay, unk_singletons=unk_singletons, networks=networks),
        steps_per_epoch,
        corpus.counts.tokens,
        engine,
    )
    validation_plan = (
        None
        if corpus.validation_stream is None
        else data_plan(corpus.validation_stream, model_config, training, vocabulary.end_of_line_id, shuffle=False)
    )
    fingerprint = run_fingerprint(tokenizer_config, model_config, training, corpus, corpus.validation_stream, engine)
    report = data_report(read, corpus, training.unk_token)
    return PreparedRun(request, corpus, training, model_config, training_plan, validation_plan, fingerprint, report)


def member_run(run: PreparedRun, member: int) -> PreparedRun:
    """The run of network ``member`` (from 0) of a run of several (--networks): the same lines, held-out
    ones and settings, but seed + member for its initial weights, its batches' order, dropout and the
    words read as <unk>, so that its errors are its own."""
    if member == 0:
        return run
    training = replace(run.training, seed=run.training.seed + member)
    corpus, model_config = run.corpus, run.model_config
    plan = training_data_plan(corpus, model_config, training, training.sampled_softmax or 0)
    assert plan is not None  # the same lines as the first network's
    engine = EngineKind(run.fingerprint["engine"])
    validation = corpus.validation_stream
    fingerprint = run_fingerprint(run.request.tokenizer, model_config, training, corpus, validation, engine)
    return replace(run, training=training, training_plan=plan, fingerprint=fingerprint)


def _prepared_how(opened: Opened) -> str:
    """Whether a text was tokenized now or found prepared, so that a slow or a quick start is explained."""
    return " (prepared earlier: from the cache)" if opened.from_cache else " (prepared now, kept in the cache)"


def data_report(read: list[str], corpus: Corpus, unk_token: str | None) -> DataReport:
    """What the run read (``read``: a line per text), and how often the text's unknown-word marker
    occurs; a warning when never, since a mistyped or filtered marker would otherwise go unnoticed
    until the model is trained."""
    read = list(read)
    warnings = []
    marker = corpus.vocabulary.unknown_marker
    if unk_token is not None and marker is not None:
        named = repr(marker)
        if marker != unk_token:
            named += f" (--unk-token {unk_token!r} as --filters and --lower leave it)"
        if corpus.marker_tokens:
            read.append(f"unknown-word marker {named}: {corpus.marker_tokens:,} of the training tokens")
        else:
            hint = "" if marker != unk_token else "; it is matched after --filters and --lower, as the text's words are"
            warnings.append(
                f"the unknown-word marker {named} never occurs in the training lines, so the model learns nothing "
                f"about unknown words{hint}"
            )
    return DataReport(read, warnings)


# The history's record of the batches each epoch trained: all of them, but for an epoch a budget cut short.
STEPS_ENTRY = "steps"
# History entries that describe how an epoch trained rather than how well.
TRAINING_ENTRIES = frozenset({"learning_rate", STEPS_ENTRY})


def kept_metrics(history: dict[str, list[float]], monitored: str) -> dict[str, float]:
    """The figures of the epoch whose weights are kept (the best one by ``monitored``), with its number;
    the learning rate and the batches trained stay in the history."""
    best_epoch = int(np.argmin(history[monitored]))
    figures = kept_figures(
        {name: values[best_epoch] for name, values in history.items() if name not in TRAINING_ENTRIES}
    )
    metrics = with_perplexities(figures)
    metrics["epoch"] = best_epoch + 1
    return metrics


def folder_config(
    run: PreparedRun,
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
        "tokenizer": to_json_dict(run.request.tokenizer),
        "model": to_json_dict(run.model_config),
        "training": to_json_dict(run.training),
        "corpus": {
            "source": corpus.source,
            "sha256": corpus.sha256,
            "usable_lines": corpus.usable_lines,
            "tokens": corpus.tokens,
            "training_tokens": corpus.counts.tokens,
            "unknown_tokens": corpus.unknown_tokens,
            "unknown_marker_tokens": corpus.marker_tokens,  # the text's own (--unk-token)
            "distinct_characters": corpus.counts.distinct_characters,
            # The chance of a word the training lines lack, for bits per character without <unk>.
            "escape_probability": corpus.counts.escape_probability,
            "validation_source": None if run.request.validation is None else str(run.request.validation),
            "training_targets": run.training_plan.targets,
            # Blocks the training lines were read in, a block at a time (line_blocks.py); 1 for a small corpus.
            "training_blocks": corpus.stream.block_count if isinstance(corpus.stream, LineBlocks) else 1,
            "validation_targets": 0 if run.validation_plan is None else run.validation_plan.targets,
            # Bits per character score at most SCORED_TOKENS tokens' worth of lines, the first ones.
            "scored_lines": len(corpus.validation_lines or corpus.training_lines),
            "scored_tokens_limit": SCORED_TOKENS,
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
