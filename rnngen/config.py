"""Frozen settings for tokenizing, modelling, training and generating: the only home of defaults."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

# The old Keras Tokenizer's default filters: ASCII punctuation plus tab and newline.
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


class CellKind(str, Enum):
    """The recurrent cell of every layer of a model."""

    simple = "simple"
    lstm = "lstm"
    gru = "gru"


class TokenizerKind(str, Enum):
    """How text is cut into the units the model predicts."""

    word = "word"  # whitespace-separated words (the notebook's)
    morph = "morph"  # Korean morpheme pieces of each word (needs kiwipiepy)
    char = "char"  # single characters


class ContextKind(str, Enum):
    """What a prediction may look back on."""

    # Each line on its own, read from a fresh state: the notebook's model of independent sentences.
    line = "line"
    # The whole text as one stream, lines separated by end-of-line tokens: trained on windows cut
    # across lines, scored with the state carried from line to line (the Penn Treebank literature's
    # protocol, where the sentence before helps predict the next).
    stream = "stream"


@dataclass(frozen=True)
class TokenizerConfig:
    """How lines become tokens; saved with the model so prompts are split the same way."""

    kind: TokenizerKind = TokenizerKind.word
    filters: str = KERAS_FILTERS
    lower: bool = True

    def __post_init__(self) -> None:
        # Accept plain strings ("morph") from Python callers; tokenizers compare enum members.
        object.__setattr__(self, "kind", TokenizerKind(self.kind))


# The rates of ArchitectureConfig's AWD-LSTM regularisers, named as their options are.
REGULARISER_RATES = ("dropout_input", "dropout_hidden", "dropout_output", "dropout_embedding", "weight_drop")
# The scales of its penalties on the last layer's activations (any value from 0 up).
ACTIVATION_PENALTIES = ("activation_regularization", "temporal_activation_regularization")
# The regularisers the corpus and the engine choose when the user names none (SizeDefaults).
AUTO_REGULARISERS = (
    "dropout_input",
    "dropout_output",
    "dropout_embedding",
    "weight_drop",
    *ACTIVATION_PENALTIES,
)


@dataclass(frozen=True)
class ArchitectureConfig:
    """The network a user asks for, before the corpus fixes the vocabulary and sequence length.

    The sizes, dropout and tying left at None are chosen by the corpus's size when training starts
    (rnngen.train.setup.resolve_architecture): SMALL_TEXT's network for a few sentences, REAL_TEXT's for
    a real corpus.
    """

    cell: CellKind = CellKind.lstm
    layers: int = 1
    bidirectional: bool = False
    embedding_dim: int | None = None
    units: int | None = None
    dropout: float | None = None
    # Share the embedding matrix with the output layer; needs a last-layer width of embedding_dim.
    tie_embeddings: bool | None = None
    # AWD-LSTM's regularisers (Merity et al. 2018); each is a rate in [0, 1), and kept values are scaled
    # by 1 / (1 - rate), so nothing changes where they are off (validation). Those left at None are
    # chosen by the corpus's size and the engine, like the sizes above: on for real text with the numpy
    # engine (REGULARISED_TEXT), off otherwise.
    # Locked (variational) dropout: one mask per sequence, the same at every time step (Gal and
    # Ghahramani 2016), on the embedding's outputs (AWD-LSTM's dropouti), between recurrent layers
    # (dropouth) and on the last layer's outputs (its dropout).
    dropout_input: float | None = None
    dropout_hidden: float = 0.0
    dropout_output: float | None = None
    # Word-level embedding dropout (dropoute): whole rows of the embedding matrix dropped per batch, so
    # a word is dropped wherever it occurs in the batch.
    dropout_embedding: float | None = None
    # DropConnect on the recurrent kernels (wdrop, weight drop): one mask per batch and layer.
    weight_drop: float | None = None
    # Penalties added to the training loss (Merity et al. 2017, "Revisiting Activation Regularization
    # for Language RNNs"; AWD-LSTM's alpha and beta): AR, this times the mean square of the last layer's
    # outputs after its dropout, keeps activations small; TAR, this times the mean square of the change
    # of its outputs (before dropout) from one step to the next, keeps the state from jumping about.
    activation_regularization: float | None = None
    temporal_activation_regularization: float | None = None

    def __post_init__(self) -> None:
        # Accept plain strings ("gru") from Python callers; the engine compares enum members.
        object.__setattr__(self, "cell", CellKind(self.cell))
        for name in ("layers", "embedding_dim", "units"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("dropout", *REGULARISER_RATES):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        for name in ACTIVATION_PENALTIES:
            value = getattr(self, name)
            if value is not None and value < 0.0:
                raise ValueError(f"{name} must be at least 0")
        if self.tie_embeddings and self.units is not None and self.embedding_dim is not None:
            width = self.units * (2 if self.bidirectional else 1)
            if width != self.embedding_dim:
                raise ValueError(
                    f"tie_embeddings needs the last layer's width ({width}) to equal embedding_dim "
                    f"({self.embedding_dim})"
                )


@dataclass(frozen=True)
class SizeDefaults:
    """The network sizes, dropout, tying and regularisers a corpus of some size gets when the user names
    none."""

    embedding_dim: int
    units: int
    dropout: float
    tie_embeddings: bool
    dropout_input: float = 0.0
    dropout_output: float = 0.0
    dropout_embedding: float = 0.0
    weight_drop: float = 0.0
    activation_regularization: float = 0.0
    temporal_activation_regularization: float = 0.0


# Below REAL_TEXT_MIN_TOKENS training tokens (a handful of sentences, like the notebook's) the model is
# meant to learn the lines by heart: the notebook's small network, no dropout, no tying.
SMALL_TEXT = SizeDefaults(embedding_dim=64, units=128, dropout=0.0, tie_embeddings=False)
# From there on it must generalise to text it has not seen: a tied network with dropout, which on the
# cuts of PTB and NSMC in benchmarks/RESULTS.md scored fewer held-out bits per character.
REAL_TEXT = SizeDefaults(embedding_dim=128, units=128, dropout=0.3, tie_embeddings=True)
REAL_TEXT_MIN_TOKENS = 5_000
# The numpy engine has every AWD-LSTM regulariser, and with them a wider network generalises better
# instead of learning the training lines by heart: on PTB's first 10,000 lines 256 units with locked
# dropouts, word dropout, weight drop, AR and TAR (and the planned cosine below) scored 1.533 held-out
# bits per character against 1.562 for REAL_TEXT's network; over 15 and 20 epochs of a cosine, 128 units
# with them scored 1.547 in less than half the time of 256 units' 1.537, and 512 units with heavier
# rates 1.544 (benchmarks/RESULTS.md). The Keras engine lacks weight drop, AR and TAR, so it keeps
# REAL_TEXT's.
REGULARISED_TEXT = SizeDefaults(
    embedding_dim=256,
    units=256,
    dropout=0.0,
    tie_embeddings=True,
    dropout_input=0.25,
    dropout_output=0.4,
    dropout_embedding=0.1,
    weight_drop=0.3,
    activation_regularization=2.0,
    temporal_activation_regularization=1.0,
)
# A larger corpus regularises the network itself, so the dropouts fall as the training tokens grow:
# from MIDSIZE_TEXT_MIN_TOKENS about three quarters of REGULARISED_TEXT's, from LARGE_TEXT_MIN_TOKENS about
# a third. With REGULARISED_TEXT's rates (tuned when the network had no moving average, no <unk> training
# and fewer epochs) NSMC's first 100,000 reviews (1.7 million morpheme pieces) and the whole of PTB
# (890,000 tokens) were still improving at the last epoch; LARGE_TEXT's fitted both better from the second
# epoch on. On the 10,000-line cuts of PTB (210,000 tokens) and NSMC (170,000) MIDSIZE_TEXT's scored 0.2 %
# fewer held-out bits per character; the 1,000-line cuts (20,000) keep REGULARISED_TEXT's
# (benchmarks/RESULTS.md). The thresholds sit between the cuts measured.
MIDSIZE_TEXT_MIN_TOKENS = 100_000
MIDSIZE_TEXT = dataclasses.replace(
    REGULARISED_TEXT, dropout_input=0.19, dropout_output=0.3, dropout_embedding=0.075, weight_drop=0.22
)
LARGE_TEXT_MIN_TOKENS = 500_000
LARGE_TEXT = dataclasses.replace(
    REGULARISED_TEXT, dropout_input=0.1, dropout_output=0.15, dropout_embedding=0.0, weight_drop=0.1
)


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a trained network; together with the weights it rebuilds the model."""

    vocab_size: int
    # Length of a training sequence, target included, as in the notebook: the model sees at most
    # max_len - 1 words of context when it is trained.
    max_len: int
    cell: CellKind
    layers: int
    bidirectional: bool
    embedding_dim: int
    units: int
    dropout: float
    tie_embeddings: bool = False
    # ArchitectureConfig's regularisers: training alone uses them.
    dropout_input: float = 0.0
    dropout_hidden: float = 0.0
    dropout_output: float = 0.0
    dropout_embedding: float = 0.0
    weight_drop: float = 0.0
    activation_regularization: float = 0.0
    temporal_activation_regularization: float = 0.0

    def __post_init__(self) -> None:
        ArchitectureConfig.__post_init__(self)  # type: ignore[arg-type]
        if self.vocab_size < 2:
            raise ValueError("vocab_size must be at least 2 (padding and one word)")
        if self.max_len < 2:
            raise ValueError("max_len must be at least 2 (one context word and the target)")

    @classmethod
    def for_corpus(cls, architecture: ArchitectureConfig, vocab_size: int, max_len: int) -> ModelConfig:
        """The model of an architecture whose sizes are settled (see resolve_architecture); a regulariser
        still left open is off, as for a network built outside a training run."""
        fields = dataclasses.asdict(architecture)
        for name in AUTO_REGULARISERS:
            if fields[name] is None:
                fields[name] = 0.0
        return cls(vocab_size=vocab_size, max_len=max_len, **fields)

    @property
    def context_len(self) -> int:
        """How many words of context a training sample holds (the notebook's X width)."""
        return self.max_len - 1

    @property
    def draws_masks(self) -> bool:
        """Whether training draws random masks (any dropout or weight drop)."""
        return self.dropout > 0 or any(getattr(self, name) > 0 for name in REGULARISER_RATES)


# Longest training sequence when the user gives no --max-len: the corpus's longest line, but no
# more than this, so one very long line cannot make every batch wide and slow.
MAX_LEN_CAP = 64
# In stream context the windows are 35 positions long (max_len 36), as in the Penn Treebank
# literature's truncated back-propagation through time.
STREAM_MAX_LEN = 36

# Validation is held out by default only from corpora with at least this many usable lines: a tiny
# corpus such as the notebook's three lines is all training data.
AUTO_VALIDATION_MIN_LINES = 200
AUTO_VALIDATION_SPLIT = 0.1
# A larger corpus holds out less, down to AUTO_VALIDATION_MIN_SPLIT: a line held out is a line the model
# never learns from. AUTO_VALIDATION_ENOUGH_TOKENS held-out tokens already tell one epoch from the next
# (every epoch is scored on the same lines) and fit the calibration's twelve numbers (train/calibration.py).
# On PTB's first 10,000 lines, holding out 5 % instead of 10 % scored 0.5 % fewer held-out bits per
# character, and 2.5 % instead of 5 % 0.1 % fewer; on 10,000 NSMC reviews 2.5 % instead of 5.8 % scored
# 0.2 % fewer (benchmarks/RESULTS.md). A tenth up to 50,000 tokens, a fortieth from 200,000.
AUTO_VALIDATION_MIN_SPLIT = 0.025
AUTO_VALIDATION_ENOUGH_TOKENS = 5_000
# ... and no more than about this many tokens. A quarter of a million held-out tokens measure perplexity
# to about half a percent, and already take a few minutes to score on a CPU with a 10,000-word
# vocabulary; a tenth of a large corpus would make every epoch's validation take hours (and be held
# in memory, 4 bytes a token).
AUTO_VALIDATION_MAX_TOKENS = 250_000


class ScheduleKind(str, Enum):
    """How the learning rate moves from step to step (after any warm-up)."""

    # The rate of the epoch: --learning-rate, times --lr-decay after every epoch, halved on a plateau.
    decay = "decay"
    # From --learning-rate down to zero at the run's last step along half a cosine (Loshchilov and
    # Hutter's SGDR without restarts), or along a straight line; neither is halved on a plateau.
    cosine = "cosine"
    linear = "linear"


# Settings younger than the first model folders and checkpoints, with the values that mean off: a folder
# or checkpoint that lacks one trained without it. Model settings sit in config.json's "model" section,
# training settings in its "training" section; a checkpoint keeps both together.
LATER_MODEL_SETTINGS: dict[str, Any] = {name: 0.0 for name in (*REGULARISER_RATES, *ACTIVATION_PENALTIES)}
LATER_TRAINING_SETTINGS: dict[str, Any] = {
    "lr_schedule": ScheduleKind.decay.value,
    "warmup_steps": 0,
    "ema": 0.0,
    "sampled_softmax": 0,
    "stateful": False,
    "unk_singletons": 0.0,
    "networks": 1,
}


# Settings the numpy engine chooses for real text (REAL_TEXT_MIN_TOKENS training tokens or more) when the
# user names none; the Keras engine has neither, and a few sentences learned by heart need neither.
# The moving average of the weights spans about AUTO_EMA_EPOCHS epochs of steps: decay 1 - 1 / (epochs x
# steps), within these bounds. Validated and saved instead of the raw weights, it settles the noise of the
# last steps: over one epoch, 0.7 % fewer held-out bits per character on PTB's first 10,000 lines and 1.0 %
# on 10,000 of NSMC's reviews in morpheme pieces; over two and a half, a further 0.1 % and 0.2 %, and five
# gained nothing more (benchmarks/RESULTS.md).
AUTO_EMA_EPOCHS = 2.5
AUTO_EMA_BOUNDS = (0.9, 0.999)
# A vocabulary this large is trained with a sampled softmax of AUTO_SAMPLED_SOFTMAX_DRAWS words: the
# full one's output layer would make each step several times slower for the same held-out figure.
AUTO_SAMPLED_SOFTMAX_MIN_VOCAB = 16_384
AUTO_SAMPLED_SOFTMAX_DRAWS = 2_048
# Each training occurrence of a word seen once is read as <unk> with this probability, so that the
# model learns how likely a word it has never seen is in each context (and what follows one) instead
# of charging every unknown word the same escape probability: on 10,000 of NSMC's reviews in morpheme
# pieces 5.004 held-out bits per character against 5.080, on PTB's first 10,000 lines 1.531 against
# 1.533 (benchmarks/RESULTS.md). Such a run is then calibrated on its held-out lines (train/calibration.py):
# 4.965 and 1.510 with today's other defaults.
AUTO_UNK_SINGLETONS = 0.5

# Real text trained with the numpy engine follows a cosine schedule (after a warm-up of
# AUTO_WARMUP_STEPS updates, at most a tenth of the run) over a number of epochs planned from the batches
# an epoch: about AUTO_PLANNED_UPDATES updates, within AUTO_EPOCH_BOUNDS epochs. The run's length is
# known when it starts, and the rate's last fall settles the weights: on PTB's first 10,000 lines (156
# batches an epoch) validation reached its floor after about 1,700 updates of a 20-epoch cosine
# (benchmarks/RESULTS.md). A large corpus still got 12 passes, far more than 2,000 updates: with the
# heavier dropouts of the time, all of PTB scored 5.6 % fewer held-out bits per character than a trigram
# over 12 epochs, 4.9 % over 8 (but see LARGE_TEXT_EPOCHS). Without a
# plan, UNPLANNED_EPOCHS is an upper bound for early stopping.
AUTO_PLANNED_UPDATES = 2_000
AUTO_EPOCH_BOUNDS = (12, 40)
# With LARGE_TEXT's lighter dropouts a large corpus fits in fewer passes: over 12 epochs NSMC's first
# 100,000 reviews and all of PTB reached their best validation at epochs 5 and 6, the rate still at two
# thirds and half of its height, and overfit after. Planned over LARGE_TEXT_EPOCHS, the rate falls while
# the network is still improving: validation cross-entropy 4.7458 against 4.7794 and 4.5841 against 4.5956,
# held-out bits per character 3.950 against 3.971 and 1.283 against 1.288, in 7 epochs instead of 10 and 11
# (benchmarks/RESULTS.md).
LARGE_TEXT_EPOCHS = 7
AUTO_WARMUP_STEPS = 100
# Two networks of different seeds, merged (--networks), for the numpy engine from MIDSIZE_TEXT_MIN_TOKENS
# to LARGE_TEXT_MIN_TOKENS training tokens, where a network trains in under an hour: on the 10,000-line cuts
# of NSMC and PTB two scored 0.6 % and 0.9 % fewer held-out bits per character than one (4.867 against
# 4.898, 1.473 against 1.487), for twice the updates. Above, one network takes an hour or more and is
# already 5 % below the trigram baseline; below, a second network was not measured, and the notebook's
# sentences need none (benchmarks/RESULTS.md).
MIDSIZE_TEXT_NETWORKS = 2
MOST_NETWORKS = 8
UNPLANNED_EPOCHS = 200

# The halving on a plateau waits for at least this many updates without improvement (and at least
# reduce_lr_patience epochs): on a small corpus an epoch is a step or two, and one noisy epoch is no
# plateau. Halved after single epochs of two steps, the README's Korean example stalled for good.
PLATEAU_MIN_STEPS = 50


@dataclass(frozen=True)
class TrainingConfig:
    """How the model is fitted."""

    # An upper bound: training stops earlier once the monitored loss stops improving. None: UNPLANNED_EPOCHS,
    # or with a cosine or linear schedule a length planned from the batches an epoch (resolve_schedule).
    epochs: int | None = None
    batch_size: int = 64
    # Well above Adam's customary 0.001: a batch holds whole lines (about 1,500 words on PTB), so an
    # epoch has few updates, and with clipping and halving on a plateau a larger step converges several
    # times faster; 0.01 beat 0.005 on PTB's first 2,000 and 10,000 lines (benchmarks/RESULTS.md).
    learning_rate: float = 0.01
    # None: hold out AUTO_VALIDATION_SPLIT of the lines when the corpus is large enough.
    val_split: float | None = None
    patience: int = 5
    seed: int = 0
    # None: the corpus's longest line (with its two boundaries), capped at MAX_LEN_CAP.
    max_len: int | None = None
    # Vocabulary limits; left-out words are read as the unknown word. None: keep every word.
    max_vocab: int | None = None
    # 1 keeps every word: held-out text is scored in bits per character, which charge a word read as
    # <unk> for its spelling, and on PTB's first 10,000 lines --min-count 2 cost 6 % more bits than
    # keeping the singletons (benchmarks/RESULTS.md).
    min_count: int = 1
    # The token with which the text marks unknown words itself (PTB's "<unk>"): read as the unknown word
    # (the id --max-vocab and --min-count also read left-out words as, never generated) rather than as a
    # word. Matched after the tokenizer's filters and lower-casing, as the text's tokens are. None: none.
    unk_token: str | None = None
    # Halve the learning rate when the monitored loss has not improved for this many epochs
    # (0: never); it helps the last epochs settle.
    reduce_lr_patience: int = 1
    reduce_lr_factor: float = 0.5
    # The learning rate is also multiplied by this after every epoch (1: kept as it is).
    lr_decay: float = 1.0
    # Gradients are rescaled to at most this global norm: recurrent nets occasionally produce huge
    # gradients that would undo epochs of progress in one step.
    clip_norm: float | None = 5.0
    # Lines on their own, or one stream cut into windows of max_len - 1 positions.
    context: ContextKind = ContextKind.line
    # The rate's course through the run (ScheduleKind), and the steps of a linear warm-up from
    # --learning-rate / warmup_steps to the full rate at the start of the run (0: none). None: chosen by
    # the corpus and the engine (rnngen.train.setup.resolve_schedule).
    lr_schedule: ScheduleKind | None = None
    warmup_steps: int | None = None
    # The decay of an exponential moving average of the weights, taken after every step, which
    # validation, early stopping, checkpoints' best weights and the saved model use while the raw
    # weights go on training (Polyak averaging; 0: off, the raw weights are used). None: chosen by the
    # corpus and the engine (rnngen.train.setup.resolve_ema).
    ema: float | None = None
    # Words drawn for each training batch's sampled softmax (sampled_softmax.py): each target is scored
    # against the draws and the batch's other targets instead of the whole vocabulary (0: the full
    # softmax). Only training steps use it; validation and the saved model score every word. None:
    # chosen by the vocabulary's size and the engine (rnngen.train.setup.resolve_sampled_softmax).
    sampled_softmax: int | None = None
    # Stream context only: each batch row goes on where the previous batch's row stopped, from its end
    # states (track_batches.py), instead of windows read in shuffled order from zero states. Validation
    # reads its stream the same way, so its figure is the one `evaluate` gives in stream context.
    stateful: bool = False
    # The probability with which each training occurrence of a word seen once in the training lines is
    # read as the unknown word, input and target alike, drawn afresh every epoch (0: never). The
    # vocabulary then has an unknown-word id, and the model's own P(<unk> | context) prices the words
    # it has never seen, in `evaluate` and validation; the words themselves stay in the vocabulary.
    # None: chosen by the corpus and the engine (rnngen.train.setup.resolve_unk_singletons).
    unk_singletons: float | None = None
    # Networks trained from seeds seed, seed + 1, ... on the same lines (the same held-out ones), then
    # merged into one network whose logits are the mean of theirs (rnngen.network.merged). None: chosen
    # by the corpus and the engine (rnngen.train.setup.resolve_networks).
    networks: int | None = None

    def __post_init__(self) -> None:
        # Accept plain strings ("cosine") from Python callers and from checkpoints' settings.
        object.__setattr__(self, "context", ContextKind(self.context))
        if self.lr_schedule is not None:
            object.__setattr__(self, "lr_schedule", ScheduleKind(self.lr_schedule))
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("epochs must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")
        if self.val_split is not None and not 0.0 <= self.val_split < 1.0:
            raise ValueError("val_split must be in [0, 1)")
        if self.patience < 0:
            raise ValueError("patience must be at least 0")
        if self.max_len is not None and self.max_len < 2:
            raise ValueError("max_len must be at least 2")
        if self.max_vocab is not None and self.max_vocab < 1:
            raise ValueError("max_vocab must be at least 1")
        if self.min_count < 1:
            raise ValueError("min_count must be at least 1")
        if self.unk_token is not None and not self.unk_token.strip():
            raise ValueError("unk_token must be a token, not empty")
        if self.reduce_lr_patience < 0 or not 0.0 < self.reduce_lr_factor < 1.0:
            raise ValueError("reduce_lr_patience must be at least 0 and reduce_lr_factor in (0, 1)")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError("lr_decay must be in (0, 1]")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError("clip_norm must be positive")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError("warmup_steps must be at least 0")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1) (0: off)")
        if self.sampled_softmax is not None and self.sampled_softmax < 0:
            raise ValueError("sampled_softmax must be at least 0 (0: the full softmax)")
        if self.unk_singletons is not None and not 0.0 <= self.unk_singletons < 1.0:
            raise ValueError("unk_singletons must be in [0, 1) (0: off)")
        if self.networks is not None and not 1 <= self.networks <= MOST_NETWORKS:
            raise ValueError(f"networks must be from 1 to {MOST_NETWORKS}")
        if self.lr_schedule is not None and self.lr_schedule is not ScheduleKind.decay and self.lr_decay < 1.0:
            raise ValueError(
                f"lr_schedule {self.lr_schedule.value} takes the rate to zero itself; leave --lr-decay at 1"
            )

    @property
    def planned_epochs(self) -> int:
        """The epochs of a run whose settings are resolved (rnngen.train.setup.resolve_schedule)."""
        if self.epochs is None:
            raise ValueError("the epochs are not resolved yet")
        return self.epochs

    @property
    def schedule(self) -> ScheduleKind:
        """The schedule of a run whose settings are resolved."""
        if self.lr_schedule is None:
            raise ValueError("the learning-rate schedule is not resolved yet")
        return self.lr_schedule


# A duration as --max-time and --checkpoint-every take it: hours, minutes and seconds, each at most once
# and in that order (90s, 30m, 1h30m, 2h, 1.5h); a bare number is seconds.
_DURATION = re.compile(
    r"(?:(?P<hours>\d+(?:\.\d+)?)h)?(?:(?P<minutes>\d+(?:\.\d+)?)m)?(?:(?P<seconds>\d+(?:\.\d+)?)s)?"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """The seconds a duration such as ``90s``, ``30m``, ``1h30m``, ``2h`` or ``45`` stands for;
    ValueError for anything else (spaces, other units, units out of order, nothing but zeros)."""
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration (write it as 90s, 30m, 1h30m, 2h, or seconds)")
        parts = {name: float(value or 0) for name, value in match.groupdict().items()}
        seconds = parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{text!r} is not a duration longer than zero")
    return seconds


def duration_text(seconds: float) -> str:
    """A duration written as parse_duration reads it, in whole hours and minutes where it can be:
    5400 -> ``1h30m``, 90 -> ``1m30s``, 0.5 -> ``0.5s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [f"{int(hours)}h" if hours else "", f"{int(minutes)}m" if minutes else ""]
    if rest or not (hours or minutes):
        parts.append(f"{round(rest, 3):g}s")
    return "".join(parts)


@dataclass(frozen=True)
class TrainingBudget:
    """How long a training command may go on, and how often it checkpoints in the middle of an epoch.

    None of it changes what a step computes, so a resumed run may be given other budgets: they belong
    to the command, not to the run, and are not taken over from the checkpoint. A budget that is
    spent ends training after the batch under way, in the middle of an epoch if need be.
    """

    # Updates in all, a resumed run's earlier ones included (None: no limit).
    max_steps: int | None = None
    # Seconds this command may train (None: no limit).
    max_time: float | None = None
    # Seconds at most between checkpoints, in the middle of an epoch too (None: at epoch ends only).
    checkpoint_every: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        for name in ("max_time", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds")


class DistributeKind(str, Enum):
    """Over which devices and machines one model is trained (tf.distribute strategies)."""

    none = "none"  # one device, no strategy
    mirrored = "mirrored"  # every GPU of this machine (or its CPU devices), one replica each
    multiworker = "multiworker"  # several machines, described by the TF_CONFIG environment variable


class DeviceKind(str, Enum):
    """Where training runs."""

    auto = "auto"  # a GPU when one is visible, else the CPU
    cpu = "cpu"  # the CPU even when a GPU is visible
    gpu = "gpu"  # a GPU, or a usage error when none is visible


class PrecisionKind(str, Enum):
    """The number format of the computation; weights are always kept (and saved) as float32."""

    float32 = "float32"
    # float16 on a GPU, bfloat16 on a CPU; logits, softmax and loss stay float32.
    mixed = "mixed"


class XlaKind(str, Enum):
    """Whether the training step is compiled with XLA (TensorFlow's compiler; JAX always compiles)."""

    auto = "auto"  # on a CPU for many stream-window steps (see the Keras engine), on a GPU as Keras chooses
    on = "on"
    off = "off"


class EngineKind(str, Enum):
    """What computes the training steps."""

    # numpy where it can train the request (one direction, the CPU, float32, one device, no XLA),
    # Keras otherwise (see rnngen.train.engines.choose_engine)
    auto = "auto"
    keras = "keras"  # Keras's fit on its backend (TensorFlow, JAX, PyTorch): every option, CPU or GPU
    numpy = "numpy"  # backpropagation in numpy on the CPU: starts without TensorFlow; one direction only


@dataclass(frozen=True)
class ExecutionConfig:
    """How and where a model is trained. Apart from the engine, none of it changes what is learned
    beyond rounding, so a run may be resumed with other settings here (on more machines, say)."""

    distribute: DistributeKind = DistributeKind.none
    device: DeviceKind = DeviceKind.auto
    precision: PrecisionKind = PrecisionKind.float32
    xla: XlaKind = XlaKind.auto
    engine: EngineKind = EngineKind.auto

    def __post_init__(self) -> None:
        # Accept plain strings ("mirrored") from Python callers.
        object.__setattr__(self, "distribute", DistributeKind(self.distribute))
        object.__setattr__(self, "device", DeviceKind(self.device))
        object.__setattr__(self, "precision", PrecisionKind(self.precision))
        object.__setattr__(self, "xla", XlaKind(self.xla))
        object.__setattr__(self, "engine", EngineKind(self.engine))


@dataclass(frozen=True)
class GenerationConfig:
    """How continuations are chosen. With no temperature, top-k or top-p, the most likely word wins."""

    words: int = 10
    temperature: float | None = None  # 0 is the same as argmax
    top_k: int | None = None
    top_p: float | None = None
    beam: int = 1
    seed: int | None = None  # None: a fresh random seed for each run
    stop_at_eol: bool = False
    strict: bool = False
    # Never complete an n-gram of this many tokens that the text (prompt included) already holds; 0: off.
    no_repeat_ngram: int = 0
    # CTRL's repetition penalty on the logits of the tokens the text already holds; 1.0: off.
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.words < 0:
            raise ValueError("words must be at least 0")
        if self.no_repeat_ngram < 0:
            raise ValueError("no_repeat_ngram must be at least 0 (0: off)")
        if not self.repetition_penalty > 0:
            raise ValueError("repetition_penalty must be above 0 (1: off)")
        if self.temperature is not None and self.temperature < 0:
            raise ValueError("temperature must be at least 0")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if self.beam < 1:
            raise ValueError("beam must be at least 1")
        if self.beam > 1 and self.samples:
            raise ValueError("beam searches for the most likely text; it cannot be combined with sampling options")

    @property
    def samples(self) -> bool:
        """Whether words are drawn at random rather than taken as the most likely."""
        return bool(self.temperature) or self.top_k is not None or self.top_p is not None


def to_json_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as plain JSON values (enums by their value)."""
    return {
        key: (value.value if isinstance(value, Enum) else value) for key, value in dataclasses.asdict(settings).items()
    }
