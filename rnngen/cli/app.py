"""The rnngen command line: parse options, call the core, render results.

Heavy modules (numpy, Keras, TensorFlow) are imported inside the commands that need them, so
``rnngen --help`` and ``rnngen generate`` start fast and never load TensorFlow.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, ParamSpec, TypeVar

import typer

from rnngen.config import (
    AUTO_EMA_BOUNDS,
    AUTO_EMA_EPOCHS,
    AUTO_EPOCH_BOUNDS,
    AUTO_PLANNED_UPDATES,
    AUTO_SAMPLED_SOFTMAX_DRAWS,
    AUTO_SAMPLED_SOFTMAX_MIN_VOCAB,
    AUTO_UNK_SINGLETONS,
    AUTO_WARMUP_STEPS,
    KERAS_FILTERS,
    LARGE_TEXT,
    LARGE_TEXT_EPOCHS,
    LARGE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT,
    MIDSIZE_TEXT_MIN_TOKENS,
    MIDSIZE_TEXT_NETWORKS,
    MOST_NETWORKS,
    REAL_TEXT,
    REAL_TEXT_MIN_TOKENS,
    REGULARISED_TEXT,
    SMALL_TEXT,
    UNPLANNED_EPOCHS,
    ArchitectureConfig,
    CellKind,
    ContextKind,
    DeviceKind,
    DistributeKind,
    EngineKind,
    ExecutionConfig,
    GenerationConfig,
    PrecisionKind,
    ScheduleKind,
    TokenizerConfig,
    TokenizerKind,
    TrainingBudget,
    TrainingConfig,
    XlaKind,
    parse_duration,
)
from rnngen.errors import MissingDependencyError, RnngenError, UsageError

if TYPE_CHECKING:
    from rnngen.store.folder import StoredModel
    from rnngen.train.setup import TrainingResult

EXIT_INTERRUPTED = 130

app = typer.Typer(
    help="Train a recurrent next-word model on your text and continue prompts from the shell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help in panels; help texts hold no [brackets], which rich would read as markup.
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The panels `train --help` groups its options into.
_DATA_PANEL = "Data and tokenizer"
_MODEL_PANEL = "Model"
_TRAINING_PANEL = "Training"
_EXECUTION_PANEL = "Execution"
_OUTPUT_PANEL = "Output"
# And the panels of `generate --help`.
_DECODING_PANEL = "Choosing tokens"
_CONTINUATION_PANEL = "Continuation"


def _escaped(text: str) -> str:
    """``text`` with tabs, newlines and other invisible characters written as escapes, for help."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"rnngen {version('rnngen')}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Train a recurrent next-word model on your text and continue prompts from the shell."""


_ARCHITECTURE = ArchitectureConfig()
# How the help names the defaults that a real corpus changes (rnngen.train.setup.resolve_architecture).
_REAL = f"from {REAL_TEXT_MIN_TOKENS:,} training tokens"
_TRAINING = TrainingConfig()


def _regulariser_default(name: str) -> str:
    """How the help names a regulariser's default: on for real text with the numpy engine, lighter (where it
    changes) for larger corpora."""
    regular = getattr(REGULARISED_TEXT, name)
    named = f"0; numpy {_REAL}, {regular:g}"
    for tokens, defaults in ((MIDSIZE_TEXT_MIN_TOKENS, MIDSIZE_TEXT), (LARGE_TEXT_MIN_TOKENS, LARGE_TEXT)):
        if getattr(defaults, name) != regular:
            named += f", from {tokens:,} {getattr(defaults, name):g}"
    return named


_TOKENIZER = TokenizerConfig()
_GENERATION = GenerationConfig()
_EXECUTION = ExecutionConfig()
# Prompts read from stdin and continued together; larger batches amortise the per-step overhead.


def _error(message: str) -> None:
    print(f"rnngen: error: {message}", file=sys.stderr)


# evaluate warns when more of a text's words than this are outside the model's vocabulary.
UNKNOWN_WARNING_RATE = 0.10


def _warn(message: str) -> None:
    print(f"rnngen: warning: {message}", file=sys.stderr)


Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")


def _reports_errors(command: Callable[Parameters, Result]) -> Callable[Parameters, Result]:
    """Turn the core's errors, Ctrl-C and a closed output pipe into a message and an exit code."""

    @wraps(command)
    def reporting(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        try:
            return command(*args, **kwargs)
        except RnngenError as error:
            _error(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            _error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            # The reader went away (`| head -1`): stop quietly, and keep Python from complaining
            # when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except MemoryError:
            _error("out of memory; try a smaller --batch-size, --max-len or model")
            raise typer.Exit(1) from None

    return reporting


ModelOption = Annotated[
    Optional[Path],
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help="Model folder, or the name of one in the models folder ($RNNGEN_MODELS, else ./models).",
        show_default="the newest there",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]


def _option_error(error: ValueError) -> UsageError:
    """A settings dataclass's complaint, naming the option: its messages start with the field name."""
    return UsageError("--" + str(error).replace("_", "-", 1))


def _duration(text: str) -> float:
    """A duration option's seconds (90s, 30m, 1h30m, 2h, or seconds); a usage error for anything else."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _default_output(corpus: str) -> Path:
    from rnngen.store.catalog import models_root

    stem = "stdin" if corpus == "-" else Path(corpus).stem
    return models_root() / (stem or "model")


@app.command()
@_reports_errors
def train(
    invocation: typer.Context,
    corpus: Annotated[
        str,
        typer.Argument(
            metavar="CORPUS", help="Text file or folder of .txt files, one sentence per line; '-' reads stdin."
        ),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            metavar="FOLDER",
            help="Model folder.",
            show_default="models/<corpus stem>",
            rich_help_panel=_OUTPUT_PANEL,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Replace the model already in the output folder.", rich_help_panel=_OUTPUT_PANEL
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress output.", rich_help_panel=_OUTPUT_PANEL)
    ] = False,
    valid: Annotated[
        Optional[str],
        typer.Option(
            metavar="FILE",
            help="Validation text (file or folder) instead of a share of the corpus.",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    val_split: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.9,
            metavar="FLOAT",
            help="Share of lines held out for validation.",
            show_default="from 200 lines 0.1, 0.05 from 200,000 tokens; else 0",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = _TRAINING.val_split,
    tokenizer_kind: Annotated[
        Optional[TokenizerKind],
        typer.Option(
            "--tokenizer",
            help="Tokens: words, Korean morpheme pieces (needs kiwipiepy) or characters.",
            show_default=f"morph for Korean text of {REAL_TEXT_MIN_TOKENS:,} words or more, else word",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    filters: Annotated[
        str,
        typer.Option(
            metavar="CHARS",
            help="Characters removed from the text ('' keeps them all).",
            show_default=_escaped(KERAS_FILTERS),
            rich_help_panel=_DATA_PANEL,
        ),
    ] = KERAS_FILTERS,
    lower: Annotated[
        bool, typer.Option("--lower/--no-lower", help="Lower-case the text.", rich_help_panel=_DATA_PANEL)
    ] = _TOKENIZER.lower,
    max_vocab: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Keep only the N most frequent words; the rest become <unk>.",
            show_default="every word",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = _TRAINING.max_vocab,
    min_count: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Keep only words seen at least N times; the rest become <unk>.",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = _TRAINING.min_count,
    unk_token: Annotated[
        Optional[str],
        typer.Option(
            metavar="TOKEN",
            help="The text's own unknown-word marker (PTB's <unk>): read as the unknown word, never generated. "
            "Matched after --filters and --lower, as the text is: <unk> matches the text's unk under the "
            "default filters.",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = _TRAINING.unk_token,
    cell: Annotated[CellKind, typer.Option(help="Recurrent cell.", rich_help_panel=_MODEL_PANEL)] = _ARCHITECTURE.cell,
    layers: Annotated[
        int,
        typer.Option(min=1, metavar="INTEGER", help="Stacked recurrent layers.", rich_help_panel=_MODEL_PANEL),
    ] = _ARCHITECTURE.layers,
    bidirectional: Annotated[
        bool, typer.Option("--bidirectional", help="Read each prefix both ways.", rich_help_panel=_MODEL_PANEL)
    ] = _ARCHITECTURE.bidirectional,
    embedding_dim: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Word vector size.",
            show_default=f"{SMALL_TEXT.embedding_dim}; {_REAL}, the units' (tied)",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.embedding_dim,
    units: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Units per recurrent layer.",
            show_default=f"{SMALL_TEXT.units}; {_REAL}, numpy {REGULARISED_TEXT.units}, Keras {REAL_TEXT.units}",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.units,
    dropout: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="Dropout before each layer.",
            show_default=f"{SMALL_TEXT.dropout:g}; {_REAL}, numpy {REGULARISED_TEXT.dropout:g} "
            f"(locked dropouts instead), Keras {REAL_TEXT.dropout:g}",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.dropout,
    tie_embeddings: Annotated[
        Optional[bool],
        typer.Option(
            "--tie-embeddings/--no-tie-embeddings",
            help="Share the embedding matrix with the output layer (units = dim).",
            show_default=f"off; {_REAL}, on",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.tie_embeddings,
    dropout_input: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="Locked dropout on the word vectors: one mask per line or window, the same at every step "
            "(AWD-LSTM's dropouti).",
            show_default=_regulariser_default("dropout_input"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.dropout_input,
    dropout_hidden: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="Locked dropout between stacked recurrent layers (dropouth).",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.dropout_hidden,
    dropout_output: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="Locked dropout on the last recurrent layer's outputs (AWD-LSTM's dropout).",
            show_default=_regulariser_default("dropout_output"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.dropout_output,
    dropout_embedding: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="Drop whole words: rows of the embedding matrix, anew for every batch (dropoute).",
            show_default=_regulariser_default("dropout_embedding"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.dropout_embedding,
    weight_drop: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="FLOAT",
            help="DropConnect on the recurrent kernels, one mask per batch (wdrop); numpy engine.",
            show_default=_regulariser_default("weight_drop"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.weight_drop,
    activation_regularization: Annotated[
        Optional[float],
        typer.Option(
            "--ar",
            min=0.0,
            metavar="ALPHA",
            help="Add ALPHA x the mean square of the last layer's dropped outputs to the loss (AR, alpha: 2, "
            "say); numpy engine.",
            show_default=_regulariser_default("activation_regularization"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.activation_regularization,
    temporal_activation_regularization: Annotated[
        Optional[float],
        typer.Option(
            "--tar",
            min=0.0,
            metavar="BETA",
            help="Add BETA x the mean square of the last layer's step-to-step change to the loss (TAR, beta: 1, "
            "say); numpy engine.",
            show_default=_regulariser_default("temporal_activation_regularization"),
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = _ARCHITECTURE.temporal_activation_regularization,
    epochs: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Most epochs; training stops earlier when the loss stops improving. A cosine or linear "
            "schedule ends at the last.",
            show_default=f"{UNPLANNED_EPOCHS}; cosine or linear: about {AUTO_PLANNED_UPDATES:,} updates, "
            f"{AUTO_EPOCH_BOUNDS[0]} to {AUTO_EPOCH_BOUNDS[1]} epochs ({LARGE_TEXT_EPOCHS} for the numpy engine "
            f"from {LARGE_TEXT_MIN_TOKENS:,} training tokens)",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.epochs,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Lines per update (fewer for long lines; prefixes if --bidirectional).",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.batch_size,
    max_len: Annotated[
        Optional[int],
        typer.Option(
            min=2,
            metavar="INTEGER",
            help="Longest training sequence, target included.",
            show_default="longest line + 2, at most 64; stream: 36",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.max_len,
    context: Annotated[
        ContextKind,
        typer.Option(
            help="line: each line on its own; stream: lines read on end to end, state carried.",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.context,
    learning_rate: Annotated[
        float, typer.Option(metavar="FLOAT", help="Adam's step size.", rich_help_panel=_TRAINING_PANEL)
    ] = _TRAINING.learning_rate,
    lr_decay: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="FLOAT",
            help="Multiply the learning rate by F after every epoch.",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.lr_decay,
    lr_schedule: Annotated[
        Optional[ScheduleKind],
        typer.Option(
            help="decay: --lr-decay after every epoch and halving on a plateau. cosine, linear: down to zero "
            "at the last step of --epochs.",
            show_default=f"numpy {_REAL}: cosine (decay with --lr-decay); else decay",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.lr_schedule,
    warmup_steps: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            metavar="INTEGER",
            help="Raise the learning rate linearly to its full value over the first N updates.",
            show_default=f"the cosine chosen by default: {AUTO_WARMUP_STEPS} (at most a tenth of the run); else 0",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.warmup_steps,
    ema: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99999,
            metavar="DECAY",
            help="Validate and save a moving average of the weights with this decay (0.999, say); 0: off. "
            "numpy engine.",
            show_default=f"numpy {_REAL}: 1 - 1/({AUTO_EMA_EPOCHS:g} x steps an epoch), "
            f"in [{AUTO_EMA_BOUNDS[0]:g}, {AUTO_EMA_BOUNDS[1]:g}]; else 0",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.ema,
    sampled_softmax: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            metavar="N",
            help="Score each training batch's targets against N words drawn by frequency (and the batch's "
            "targets) instead of the whole vocabulary: faster steps on large vocabularies; 0: off. numpy engine.",
            show_default=f"numpy {_REAL} and {AUTO_SAMPLED_SOFTMAX_MIN_VOCAB:,} words or more: "
            f"{AUTO_SAMPLED_SOFTMAX_DRAWS:,}; else 0",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.sampled_softmax,
    stateful: Annotated[
        bool,
        typer.Option(
            "--stateful",
            help="With --context stream: each batch goes on from the states the previous one ended in, as "
            "evaluate reads a stream, instead of shuffled windows from zero states. numpy engine.",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.stateful,
    unk_singletons: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=0.99,
            metavar="P",
            help="Read each training occurrence of a word seen once as <unk> with probability P, so that the "
            "model learns how likely a word it has never seen is in each context; 0: off. numpy engine.",
            show_default=f"numpy {_REAL}: {AUTO_UNK_SINGLETONS:g}; else 0",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.unk_singletons,
    networks: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            max=MOST_NETWORKS,
            metavar="N",
            help="Train N networks over the same lines from seeds --seed, --seed + 1, ... and merge them into "
            "one network whose logits are the mean of theirs: N times the training time, a better model. "
            "numpy engine.",
            show_default=f"numpy from {MIDSIZE_TEXT_MIN_TOKENS:,} to {LARGE_TEXT_MIN_TOKENS:,} training tokens: "
            f"{MIDSIZE_TEXT_NETWORKS}; else 1",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.networks,
    trigram: Annotated[
        bool,
        typer.Option(
            "--trigram/--no-trigram",
            help="Mix the network with a Kneser-Ney trigram of the training lines' words, weighed on the "
            "held-out lines: it remembers the word pairs and triples the network learns only vaguely. "
            "Made with the calibration (numpy engine on real text, lines held out).",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = True,
    patience: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="INTEGER",
            help="Epochs without improvement before stopping; 0 never stops early.",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = _TRAINING.patience,
    seed: Annotated[
        int,
        typer.Option(
            metavar="INTEGER", help="Random seed for weights and batch order.", rich_help_panel=_TRAINING_PANEL
        ),
    ] = _TRAINING.seed,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on from the checkpoint an interrupted run left (same options).",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = False,
    max_steps: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            metavar="INTEGER",
            help="Stop after N updates in all, a resumed run's earlier ones included, even mid-epoch.",
            show_default="no limit",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = None,
    max_time: Annotated[
        Optional[float],
        typer.Option(
            parser=_duration,
            metavar="DURATION",
            help="Stop after training this long, even mid-epoch: 90s, 30m, 1h30m, 2h, or seconds.",
            show_default="no limit",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = None,
    checkpoint_every: Annotated[
        Optional[float],
        typer.Option(
            parser=_duration,
            metavar="DURATION",
            help="Also checkpoint mid-epoch at least this often, so --resume goes on from that batch (numpy engine).",
            show_default="at epoch ends",
            rich_help_panel=_TRAINING_PANEL,
        ),
    ] = None,
    engine: Annotated[
        EngineKind,
        typer.Option(
            help="numpy: CPU, one direction, starts without TensorFlow. keras: every option but --weight-drop, "
            "--ar, --tar, --ema, --sampled-softmax, --stateful, --unk-singletons and --networks, CPU or GPU. "
            "auto: numpy where it can train the model, else keras (a GPU, --bidirectional, ...).",
            rich_help_panel=_EXECUTION_PANEL,
        ),
    ] = _EXECUTION.engine,
    device: Annotated[
        DeviceKind,
        typer.Option(
            help="auto: a GPU when one is visible; cpu hides GPUs; gpu insists on one.",
            rich_help_panel=_EXECUTION_PANEL,
        ),
    ] = _EXECUTION.device,
    distribute: Annotated[
        DistributeKind,
        typer.Option(
            help="Train on one device, on every GPU of this machine, or on the machines TF_CONFIG names.",
            rich_help_panel=_EXECUTION_PANEL,
        ),
    ] = _EXECUTION.distribute,
    precision: Annotated[
        PrecisionKind,
        typer.Option(
            help="mixed: 16-bit computation (float16 on GPU, bfloat16 on CPU), float32 weights.",
            rich_help_panel=_EXECUTION_PANEL,
        ),
    ] = _EXECUTION.precision,
    xla: Annotated[
        XlaKind,
        typer.Option(
            help="Compile the training step with XLA. auto: on a CPU for stream context, on a GPU as Keras does.",
            rich_help_panel=_EXECUTION_PANEL,
        ),
    ] = _EXECUTION.xla,
) -> None:
    """Train a model on CORPUS and save it with its vocabulary in one folder."""
    destination = output if output is not None else _default_output(corpus)
    try:
        architecture = ArchitectureConfig(
            cell=cell,
            layers=layers,
            bidirectional=bidirectional,
            embedding_dim=embedding_dim,
            units=units,
            dropout=dropout,
            tie_embeddings=tie_embeddings,
            dropout_input=dropout_input,
            dropout_hidden=dropout_hidden,
            dropout_output=dropout_output,
            dropout_embedding=dropout_embedding,
            weight_drop=weight_drop,
            activation_regularization=activation_regularization,
            temporal_activation_regularization=temporal_activation_regularization,
        )
        training = TrainingConfig(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            val_split=val_split,
            patience=patience,
            seed=seed,
            max_len=max_len,
            max_vocab=max_vocab,
            min_count=min_count,
            unk_token=unk_token,
            lr_decay=lr_decay,
            context=context,
            lr_schedule=lr_schedule,
            warmup_steps=warmup_steps,
            ema=ema,
            sampled_softmax=sampled_softmax,
            stateful=stateful,
            unk_singletons=unk_singletons,
            networks=networks,
        )
    except ValueError as error:
        raise _option_error(error) from None
    if tokenizer_kind is None and not resume:
        tokenizer_kind = _default_tokenizer_kind(corpus, quiet)
    # Resumed without --tokenizer: the interrupted run's, taken over below.
    tokenizer = TokenizerConfig(kind=tokenizer_kind or _TOKENIZER.kind, filters=filters, lower=lower)
    execution = ExecutionConfig(distribute=distribute, device=device, precision=precision, xla=xla, engine=engine)
    # This command's own: a resumed run does not take them over from the checkpoint.
    budget = TrainingBudget(max_steps=max_steps, max_time=max_time, checkpoint_every=checkpoint_every)
    from rnngen.train import TrainingRequest, run_training
    from rnngen.train.checkpoints import checkpoint_folder

    if resume:
        # The interrupted run's settings, with the options given on this command line over them.
        from rnngen.train.request import resumed_settings

        given = _options_given(invocation)
        saved = resumed_settings(destination)
        try:
            tokenizer = _given_over(saved.tokenizer, tokenizer, given, {"kind": "tokenizer_kind"})
            architecture = _given_over(saved.architecture, architecture, given)
            training = _given_over(saved.training, training, given)
            execution = _given_over(saved.execution, execution, given)
        except ValueError as error:
            raise _option_error(error) from None
        valid = valid if "valid" in given else saved.validation
    elif checkpoint_folder(destination).exists():
        _warn(f"starting over: {checkpoint_folder(destination)} holds an interrupted run (--resume goes on from it)")
    if tokenizer.kind is TokenizerKind.morph:
        from rnngen.text.korean import require_kiwipiepy

        try:
            require_kiwipiepy()
        except MissingDependencyError as error:
            raise UsageError(str(error)) from None
    request = TrainingRequest(
        corpus=corpus,
        destination=destination,
        tokenizer=tokenizer,
        architecture=architecture,
        training=training,
        execution=execution,
        budget=budget,
        validation=valid,
        resume=resume,
        replace=force,
        trigram=trigram,
    )
    reporter = None
    if not quiet:
        from rnngen.cli.progress import RichTrainingReporter

        reporter = RichTrainingReporter()
    result = run_training(request, reporter)
    if not result.chief:
        # Another worker of a multi-worker run: the chief saved the model and prints its folder.
        if not quiet:
            print("rnngen: training done; the chief worker saved the model", file=sys.stderr)
        return
    if not quiet:
        from rnngen.cli.progress import describe_metrics

        kept = int(result.metrics.get("epoch", result.epochs_run))
        held_out = f" with {result.held_out_words:,} words of the held-out lines" if result.held_out_words else ""
        mixed = (
            f", the training lines' trigram mixed in at {result.trigram_weight:.2f}" if result.trigram_weight else ""
        )
        if len(result.networks) > 1:
            _print_networks_summary(result, held_out, mixed)
        else:
            print(
                f"rnngen: saved {result.folder} (vocabulary {result.vocab_size:,}{held_out}, "
                f"{result.samples:,} training targets{mixed}); "
                f"kept epoch {kept} of {result.epochs_run}: {result.stop_reason}\n"
                f"rnngen: epoch {kept}: {describe_metrics(result.metrics)}",
                file=sys.stderr,
            )
        if result.checkpoint is not None:
            print(f"rnngen: {result.checkpoint} keeps the run: --resume goes on from there", file=sys.stderr)
    print(result.folder)


def _print_networks_summary(result: TrainingResult, held_out: str, mixed: str) -> None:
    """The summary of a run of several networks: each one's kept epoch and figures, then the merged model's
    bits per character (its only figure: the networks' cross-entropies are their own)."""
    from rnngen.cli.progress import describe_metrics

    kept = ", ".join(
        f"network {index} epoch {int(network['metrics']['epoch'])} of {network['epochs_run']}"
        for index, network in enumerate(result.networks, start=1)
    )
    lines = [
        f"rnngen: saved {result.folder} (vocabulary {result.vocab_size:,}{held_out}, "
        f"{result.samples:,} training targets, {len(result.networks)} networks merged{mixed}); "
        f"kept {kept}: {result.stop_reason}"
    ]
    for index, network in enumerate(result.networks, start=1):
        metrics = network["metrics"]
        lines.append(f"rnngen: network {index}, epoch {int(metrics['epoch'])}: {describe_metrics(metrics)}")
    scores = {name: value for name, value in result.metrics.items() if name.endswith("bits_per_char")}
    if scores:
        lines.append(f"rnngen: merged: {describe_metrics(scores)}")
    print("\n".join(lines), file=sys.stderr)


def _default_tokenizer_kind(corpus: str, quiet: bool) -> TokenizerKind:
    """The tokenizer the corpus's first megabyte asks for (rnngen.data.tokenizer_choice), said on stderr when it is
    not the word tokenizer; whole words, with a hint, where Korean text finds Kiwi missing."""
    from rnngen.data.tokenizer_choice import choose_tokenizer_kind, source_sample

    kind = choose_tokenizer_kind(source_sample(corpus))
    if kind is TokenizerKind.morph:
        from rnngen.text.korean import require_kiwipiepy

        try:
            require_kiwipiepy()
        except MissingDependencyError:
            _warn('Korean text: training on whole words; pip install "rnngen[ko]" for morpheme pieces')
            return TokenizerKind.word
        if not quiet:
            print(
                "rnngen: Korean text: training on morpheme pieces (--tokenizer word for whole words)", file=sys.stderr
            )
    return kind


Settings = TypeVar("Settings", TokenizerConfig, ArchitectureConfig, TrainingConfig, ExecutionConfig)


def _options_given(context: typer.Context) -> set[str]:
    """The parameters of this command that were given on the command line (or in the environment),
    not left at their defaults."""
    return {
        name
        for name in context.params
        if (source := context.get_parameter_source(name)) is not None and source.name not in {"DEFAULT", "DEFAULT_MAP"}
    }


def _given_over(
    saved: Settings, asked: Settings, given: set[str], parameter_of: dict[str, str] | None = None
) -> Settings:
    """``saved`` with the fields whose options were given set as ``asked`` has them (a field's option
    is the parameter of the same name, unless ``parameter_of`` names another)."""
    parameter_of = parameter_of or {}
    changes = {
        field.name: getattr(asked, field.name)
        for field in dataclasses.fields(asked)
        if parameter_of.get(field.name, field.name) in given
    }
    return dataclasses.replace(saved, **changes)


def _read_model(model: Path | None) -> StoredModel:
    """The model -m names (a folder, or a name in the models folder), or else the newest one there."""
    from rnngen.store.catalog import find_model
    from rnngen.store.folder import read_model_folder

    return read_model_folder(find_model(model))


STDIN_PROMPTS = ["-"]


def _one_prompt(words: list[str]) -> str:
    """The words of PROMPT as one prompt: `rnngen generate 오늘 영화` is `rnngen generate "오늘 영화"`."""
    return " ".join(words)


def _warn_unknown(words: list[str], line: int | None = None) -> None:
    """One warning naming a prompt's unknown words (as typed), and its line when prompts come from stdin."""
    if words:
        from rnngen.inference.generation import name_words

        where = "" if line is None else f"line {line}: "
        _warn(f"{where}unknown words skipped: {name_words(words)}")


@app.command()
@_reports_errors
def generate(
    prompt: Annotated[
        list[str],
        typer.Argument(
            metavar="PROMPT...", help="Words to continue, quoted or not; '-' reads one prompt per line from stdin."
        ),
    ],
    model: ModelOption = None,
    words: Annotated[
        int,
        typer.Option(
            "--words",
            "-n",
            min=0,
            metavar="INTEGER",
            rich_help_panel=_CONTINUATION_PANEL,
            help="Tokens to add: words, morpheme pieces or characters, as the model's tokenizer splits text.",
        ),
    ] = _GENERATION.words,
    temperature: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            metavar="FLOAT",
            help="Sample; below 1 sharper, above 1 more varied (0: argmax).",
            rich_help_panel=_DECODING_PANEL,
        ),
    ] = _GENERATION.temperature,
    top_k: Annotated[
        Optional[int],
        typer.Option(
            min=1, metavar="INTEGER", help="Sample among the K most likely words.", rich_help_panel=_DECODING_PANEL
        ),
    ] = _GENERATION.top_k,
    top_p: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="FLOAT",
            help="Sample among the most likely words totalling P.",
            rich_help_panel=_DECODING_PANEL,
        ),
    ] = _GENERATION.top_p,
    beam: Annotated[
        int,
        typer.Option(
            min=1, metavar="INTEGER", help="Beam search over N whole continuations.", rich_help_panel=_DECODING_PANEL
        ),
    ] = _GENERATION.beam,
    no_repeat_ngram: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="INTEGER",
            rich_help_panel=_DECODING_PANEL,
            help="Never complete a run of N tokens that the text, prompt included, already holds (0: off).",
        ),
    ] = _GENERATION.no_repeat_ngram,
    repetition_penalty: Annotated[
        float,
        typer.Option(
            metavar="FLOAT",
            rich_help_panel=_DECODING_PANEL,
            help="Divide the logit of every token already in the text, prompt included, by F where positive "
            "and multiply it where negative; above 1 holds repeats back (1: off).",
        ),
    ] = _GENERATION.repetition_penalty,
    seed: Annotated[
        Optional[int],
        typer.Option(
            metavar="INTEGER", help="Seed for sampling: same seed, same text.", rich_help_panel=_DECODING_PANEL
        ),
    ] = _GENERATION.seed,
    stop_at_eol: Annotated[
        bool,
        typer.Option(
            "--stop-at-eol", help="Stop early where the model ends the line.", rich_help_panel=_CONTINUATION_PANEL
        ),
    ] = _GENERATION.stop_at_eol,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse prompts with unknown words.")] = _GENERATION.strict,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per prompt, printed when its text is complete.")
    ] = False,
) -> None:
    """Continue PROMPT token by token (the most likely one, unless sampling or beam options are given).

    One prompt's text is printed as it grows (with --beam, once the search ends), except with --json.
    """
    try:
        settings = GenerationConfig(
            words=words,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            beam=beam,
            seed=seed,
            stop_at_eol=stop_at_eol,
            strict=strict,
            no_repeat_ngram=no_repeat_ngram,
            repetition_penalty=repetition_penalty,
        )
    except ValueError as error:
        raise _option_error(error) from None
    from rnngen.inference.generation import TextGenerator

    generator = TextGenerator(_read_model(model))
    from_stdin = prompt == STDIN_PROMPTS
    if not from_stdin and not as_json:
        stream = generator.stream(_one_prompt(prompt), settings)
        _warn_unknown(stream.unknown_words)
        for piece in stream.pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()  # each token as it comes: `| head -c 300` stops generation at once
        print()
        return
    if from_stdin:
        from rnngen.cli.prompts import prompt_batches

        batches = prompt_batches(sys.stdin.buffer, generator.prompts_per_batch)
    else:
        batches = iter([[_one_prompt(prompt)]])
    index = 0
    for batch in batches:
        for line, result in enumerate(
            generator.generate_batch(batch, settings, first_index=index, with_probabilities=as_json), index + 1
        ):
            _warn_unknown(result.unknown_words, line if from_stdin else None)
            print(json.dumps(result.to_json(), ensure_ascii=False) if as_json else result.text)
        index += len(batch)
        sys.stdout.flush()


@app.command("next")
@_reports_errors
def next_words(
    prompt: Annotated[
        list[str],
        typer.Argument(
            metavar="PROMPT...", help="Words so far, quoted or not; '-' reads one prompt per line from stdin."
        ),
    ],
    model: ModelOption = None,
    count: Annotated[int, typer.Option("-k", "--count", min=1, metavar="INTEGER", help="How many words to list.")] = 5,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse prompts with unknown words.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list per prompt, on one line.")] = False,
) -> None:
    """List the K most likely next words after PROMPT with their probabilities.

    With '-', each prompt's lines are followed by an empty line.
    """
    from rnngen.inference.generation import NextWord, TextGenerator

    def show(words: list[NextWord]) -> None:
        if as_json:
            listed = [{"word": word.word, "probability": word.probability} for word in words]
            print(json.dumps(listed, ensure_ascii=False))
            return
        for word in words:
            print(f"{word.probability:.4f}\t{word.word}")

    generator = TextGenerator(_read_model(model))
    if prompt != STDIN_PROMPTS:
        words, unknown = generator.next_words(_one_prompt(prompt), count, strict=strict)
        _warn_unknown(unknown)
        show(words)
        return
    from rnngen.cli.prompts import prompt_batches

    line = 0
    for batch in prompt_batches(sys.stdin.buffer, generator.prompts_per_batch):
        for words, unknown in generator.next_words_batch(batch, count, strict=strict):
            line += 1
            _warn_unknown(unknown, line)
            show(words)
            if not as_json:
                print()  # the end of this prompt's list
        sys.stdout.flush()


@app.command()
@_reports_errors
def evaluate(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Text to score (file, folder of .txt, or '-').")],
    model: ModelOption = None,
    context: Annotated[
        Optional[ContextKind],
        typer.Option(
            help="line: each line from a fresh state; stream: state carried.", show_default="as the model was trained"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score a model on FILE: perplexity, top-1/top-5 accuracy, unknown words, bits per character."""
    from rnngen.inference.evaluation import evaluate_file

    stored = _read_model(model)
    result = evaluate_file(stored, file, context)
    if result.oov_rate > UNKNOWN_WARNING_RATE:
        how = "read as <unk> in" if stored.vocabulary.unknown_id is not None else "left out of"
        _warn(
            f"{result.oov_rate:.1%} of the words are unknown to the model and {how} perplexity, which then "
            "flatters it: compare models on this text by bits_per_char, which charges for unknown words"
        )
    if as_json:
        print(json.dumps(result.to_json()))
        return
    for name, value in result.to_json().items():
        print(f"{name:<14} {value:.4f}" if isinstance(value, float) else f"{name:<14} {value}")


@app.command()
@_reports_errors
def info(model: ModelOption = None, as_json: JsonOption = False) -> None:
    """Show the model card: vocabulary, network, corpus, training and scores."""
    from rnngen.store.card import model_card

    card = model_card(_read_model(model))
    if as_json:
        print(json.dumps(card, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rnngen model {card['folder']}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for section, value in card.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                table.add_row(f"{section}.{key}", _format_value(inner))
        else:
            table.add_row(section, _format_value(value))
    Console().print(table)


@app.command("models")
@_reports_errors
def list_models(as_json: JsonOption = False) -> None:
    """List the models in the models folder ($RNNGEN_MODELS, else ./models) with their scores."""
    from rnngen.store.catalog import list_models as models_in
    from rnngen.store.catalog import models_root

    entries = models_in()
    if as_json:
        print(json.dumps([entry.to_json() for entry in entries], ensure_ascii=False))
        return
    if not entries:
        _warn(f"no trained model in {models_root()}/; train one with 'rnngen train CORPUS'")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, title_justify="left")
    for column, justify in _MODEL_COLUMNS:
        table.add_column(column, justify=justify, no_wrap=True)
    for entry in entries:
        table.add_row(
            entry.name,
            entry.tokenizer,
            entry.network,
            _number(entry.vocabulary, "{:,}"),
            (entry.created or "-")[:16].replace("T", " "),
            _number(entry.perplexity, "{:.2f}"),
            _number(entry.bits_per_char, "{:.3f}"),
            "held-out" if entry.held_out else "training",
        )
    # Wide enough never to wrap a row: the table goes to pipes and files as often as to a terminal.
    Console(width=max(Console().width, 200), soft_wrap=True).print(table)


_MODEL_COLUMNS: list[tuple[str, Any]] = [
    ("name", "left"),
    ("tokenizer", "left"),
    ("network", "left"),
    ("vocabulary", "right"),
    ("trained (UTC)", "left"),
    ("perplexity", "right"),
    ("bits/char", "right"),
    ("scored on", "left"),
]


def _number(value: float | int | None, layout: str) -> str:
    return "-" if value is None else layout.format(value)


@app.command()
@_reports_errors
def export(
    folder: Annotated[
        Optional[Path],
        typer.Argument(
            metavar="MODEL",
            help="Model folder, or the name of one in the models folder.",
            show_default="the newest there",
        ),
    ] = None,
    keras_format: Annotated[
        bool, typer.Option("--keras", help="Write FOLDER/model.keras: the model for Keras, with the folder's weights.")
    ] = False,
) -> None:
    """Write a model folder's weights in another format, and print the file's path."""
    if not keras_format:
        raise UsageError("say which format to write: --keras (the one format so far)")
    from rnngen.train.keras_engine.export import export_keras_model

    print(export_keras_model(_read_model(folder)))


@app.command("cache")
@_reports_errors
def corpus_cache(
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove every prepared corpus from the cache, but one being prepared now.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the prepared corpora that training keeps ($RNNGEN_CACHE, else ~/.cache/rnngen), or clear them."""
    from rnngen.data.corpus_cache import PARTIAL_PREFIX, cache_entries, cache_root, clear_cache, remove_leftovers

    if clear:
        freed = clear_cache()
        print(f"removed {freed / 1e6:,.1f} MB of prepared corpora from {cache_root()}", file=sys.stderr)
        return
    remove_leftovers()
    entries = cache_entries()
    if as_json:
        print(json.dumps([dataclasses.asdict(entry) for entry in entries]))
        return
    for entry in entries:
        if entry.complete:
            state = entry.tokenizer or "?"
        elif entry.name.startswith(PARTIAL_PREFIX):
            state = "being prepared"
        else:
            state = "incomplete (removed by --clear)"
        lines = "-" if entry.lines is None else f"{entry.lines:,}"
        tokens = "-" if entry.tokens is None else f"{entry.tokens:,}"
        print(f"{entry.name}\t{entry.bytes / 1e6:,.1f} MB\t{lines} lines\t{tokens} tokens\t{state}")
    total = sum(entry.bytes for entry in entries)
    print(f"{len(entries)} prepared corpora, {total / 1e6:,.1f} MB, in {cache_root()}", file=sys.stderr)


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"  # enough digits to match the progress lines and the summary
    if isinstance(value, str) and not value.isprintable():
        return json.dumps(value, ensure_ascii=False)  # shows tabs and newlines as \t and \n
    return str(value)


def main() -> None:
    """Entry point. Usage errors become one line (exit 2); the commands report their own failures;
    anything unforeseen still ends in one line rather than a traceback."""
    try:
        status = app(standalone_mode=False)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if _is_usage_error(error):
            sys.exit(_report_usage_error(error))
        if os.environ.get("RNNGEN_DEBUG"):
            raise
        _error(f"unexpected {error.__class__.__name__}: {error} (set RNNGEN_DEBUG=1 to see where)")
        _finalize_tensorflow()
        sys.exit(1)
    _finalize_tensorflow()
    sys.exit(status if isinstance(status, int) else 0)


def _finalize_tensorflow() -> None:
    """Collect what the command left of TensorFlow's objects while the interpreter is still whole.
    Otherwise the iterator Keras's fit reads batches through (a generator dataset) may be finalized
    during the interpreter's shutdown, whose garbage collection can deadlock with it: a process that has
    printed its last line and never exits (tensorflow/tensorflow#21277)."""
    if "tensorflow" in sys.modules:
        gc.collect()


def _is_usage_error(error: Exception) -> bool:
    # Typer bundles its own copy of Click, whose exception classes it does not export: recognise
    # them by their interface (every Click exception has an exit code and a formatted message).
    return hasattr(error, "format_message") and isinstance(getattr(error, "exit_code", None), int)


def _report_usage_error(error: Any) -> int:
    """One line for a bad option or argument, naming where help is; the full help when none was given."""
    if type(error).__name__ == "NoArgsIsHelpError":
        error.show()
        return int(error.exit_code)
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    _error(f"{error.format_message()}{hint}")
    return int(error.exit_code)
