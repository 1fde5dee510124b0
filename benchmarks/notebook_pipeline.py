"""The seed notebook's training pipeline, re-implemented faithfully: the baseline of the throughput benchmark.

The notebook (Keras 2 era) trained its next-word model like this:

1. ``Tokenizer().fit_on_texts([text])`` on the whole text (lower-case, punctuation to spaces, words
   numbered by descending count from 1);
2. every prefix of every line became a sample: ``encoded[:i + 1]`` for ``i`` in ``1 .. len - 1``;
3. all samples were left-padded with 0 to the longest one (``pad_sequences(..., padding='pre')``);
4. the last id of each row was the target, turned into a dense one-hot matrix for the WHOLE data set
   (``to_categorical(y, num_classes=vocab_size)``);
5. ``Sequential([Embedding, LSTM, Dense(softmax)])`` with no masking, ``categorical_crossentropy``,
   ``adam``, ``model.fit(X, y)``.

It is kept deliberately as it was, because its costs are what the benchmark measures against: the
one-hot targets take ``targets * vocab_size * 4`` bytes, every prefix is materialised as its own padded
row (quadratic in line length), and without masking the LSTM runs over all the padding. Keras 3 dropped
the ``Tokenizer``, ``pad_sequences`` of old and the float32 ``to_categorical``, so they are re-created
here in plain Python and numpy with Keras 2's behaviour.

Run as a script it trains on the first lines of the Penn Treebank, measures time and memory, scores
perplexity on validation lines, and prints one result (a JSON object with ``--json``) on stdout.
"""

# ruff: noqa: E402 (the clock starts before the other imports, so that their cost is counted too)
from __future__ import annotations

import time

# Taken before anything heavy is imported: process_seconds counts numpy and Keras start-up too.
PROCESS_START = time.perf_counter()

import argparse
import json
import math
import os
import resource
import sys
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Keras 2's Tokenizer default: ASCII punctuation plus tab and newline.
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

PTB_FOLDER = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptb"
DEFAULT_TRAIN = PTB_FOLDER / "ptb.train.txt"
DEFAULT_VALID = PTB_FOLDER / "ptb.valid.txt"
DEFAULT_VALID_LINES = 500
EVALUATION_BATCH = 256


def text_to_word_sequence(text: str, filters: str = KERAS_FILTERS, lower: bool = True, split: str = " ") -> list[str]:
    """Keras 2's ``text_to_word_sequence``: lower-case, filtered characters become ``split``, no empty words."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans(filters, split * len(filters)))
    return [word for word in text.split(split) if word]


class Tokenizer:
    """Keras 2's ``Tokenizer()`` with its default settings (no word limit, no OOV token)."""

    def __init__(self) -> None:
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_index: dict[str, int] = {}

    def fit_on_texts(self, texts: Iterable[str]) -> None:
        """Count words; number them from 1 by descending count, ties in order of first appearance."""
        for text in texts:
            for word in text_to_word_sequence(text):
                self.word_counts[word] = self.word_counts.get(word, 0) + 1
        # list.sort is stable, so words with equal counts keep their first-appearance order, as in Keras.
        ranked = sorted(self.word_counts.items(), key=lambda item: item[1], reverse=True)
        self.word_index = {word: index for index, (word, _) in enumerate(ranked, start=1)}

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """The ids of each text's words; words the tokenizer never saw are dropped."""
        index = self.word_index
        return [[index[word] for word in text_to_word_sequence(text) if word in index] for text in texts]


def pad_sequences(sequences: Sequence[Sequence[int]], maxlen: int) -> np.ndarray:
    """Keras's ``pad_sequences(..., maxlen=maxlen, padding='pre', truncating='pre')`` as int32 rows.

    Short rows are left-padded with 0; long rows keep their last ``maxlen`` ids.
    """
    import numpy as np

    padded = np.zeros((len(sequences), maxlen), dtype="int32")
    if maxlen == 0:
        return padded
    for row, sequence in enumerate(sequences):
        kept = sequence[-maxlen:]
        if kept:
            padded[row, maxlen - len(kept) :] = kept
    return padded


def to_categorical(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Keras 2's ``to_categorical``: a dense float32 one-hot matrix, built in place.

    Keras 3's ``keras.utils.to_categorical`` returns float64; casting that to float32 would hold both
    copies at once and charge the baseline more memory than the notebook ever used, so the Keras 2
    function is reproduced instead.
    """
    import numpy as np

    flat = np.asarray(labels, dtype="int64").reshape(-1)
    categorical = np.zeros((flat.shape[0], num_classes), dtype="float32")
    categorical[np.arange(flat.shape[0]), flat] = 1
    return categorical


def prefix_sequences(tokenizer: Tokenizer, text: str) -> list[list[int]]:
    """The notebook's samples: every prefix of at least two ids of every line."""
    sequences: list[list[int]] = []
    for line in text.split("\n"):
        encoded = tokenizer.texts_to_sequences([line])[0]
        for i in range(1, len(encoded)):
            sequences.append(encoded[: i + 1])
    return sequences


def read_lines(path: Path, count: int) -> str:
    """The first ``count`` lines of a UTF-8 file, joined by newlines."""
    with path.open(encoding="utf-8") as handle:
        return "\n".join(line.rstrip("\n") for line in islice(handle, count))


def import_keras() -> Any:
    """Keras, with TensorFlow's C++ logging silenced first."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras

    return keras


def build_model(keras: Any, vocab_size: int, max_len: int, embedding_dim: int, units: int) -> Any:
    """The notebook's model: Embedding, LSTM, softmax over the vocabulary; no masking."""
    model = keras.Sequential(
        [
            keras.Input(shape=(max_len - 1,)),
            keras.layers.Embedding(vocab_size, embedding_dim),
            keras.layers.LSTM(units),
            keras.layers.Dense(vocab_size, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def validation_perplexity(model: Any, tokenizer: Tokenizer, text: str, max_len: int) -> tuple[int, float | None]:
    """Targets and perplexity of held-out lines, prefix -> next word, with the training vocabulary.

    Unknown words are dropped from each line (as ``texts_to_sequences`` does); contexts are padded and
    truncated at the front to ``max_len - 1`` ids. The perplexity is None when there is no target.
    """
    import numpy as np

    contexts: list[list[int]] = []
    targets: list[int] = []
    for line in text.split("\n"):
        encoded = tokenizer.texts_to_sequences([line])[0]
        for i in range(1, len(encoded)):
            contexts.append(encoded[:i])
            targets.append(encoded[i])
    if not targets:
        return 0, None
    inputs = pad_sequences(contexts, maxlen=max_len - 1)
    answers = np.asarray(targets, dtype="int64")
    tiny = np.finfo("float32").tiny
    total_nll = 0.0
    for start in range(0, len(answers), EVALUATION_BATCH):
        stop = start + EVALUATION_BATCH
        probabilities = np.asarray(model(inputs[start:stop], training=False))
        chosen = probabilities[np.arange(probabilities.shape[0]), answers[start:stop]]
        total_nll -= float(np.log(np.maximum(chosen.astype("float64"), tiny)).sum())
    return len(answers), math.exp(total_nll / len(answers))


@dataclass(frozen=True)
class Settings:
    """What one benchmark run trains on and how."""

    train: Path = DEFAULT_TRAIN
    valid: Path = DEFAULT_VALID
    lines: int | None = None
    valid_lines: int = DEFAULT_VALID_LINES
    embedding_dim: int = 64
    units: int = 128
    batch_size: int = 32
    epochs: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Result:
    """What one run measured.

    ``process_seconds`` and ``seconds_to_trained`` count from the start of the process (``PROCESS_START``)
    to the end of evaluation and of ``fit``; ``fit_seconds`` is ``model.fit`` alone.
    """

    process_seconds: float
    seconds_to_trained: float
    fit_seconds: float
    targets: int
    targets_per_second: float
    onehot_bytes: int
    peak_rss_bytes: int
    vocab_size: int
    max_len: int
    valid_targets: int
    valid_perplexity: float | None
    train_loss: float


def peak_rss_bytes() -> int:
    """The process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run(settings: Settings, started: float = PROCESS_START) -> Result:
    """Train and evaluate as the notebook did; times count from ``started`` (a ``time.perf_counter`` value)."""
    import numpy as np

    text = read_lines(settings.train, settings.lines if settings.lines is not None else sys.maxsize)
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts([text])
    vocab_size = len(tokenizer.word_index) + 1

    sequences = prefix_sequences(tokenizer, text)
    if not sequences:
        raise ValueError(f"{settings.train}: no line with two or more words in the lines read")
    max_len = max(len(sequence) for sequence in sequences)
    padded = pad_sequences(sequences, maxlen=max_len)
    inputs, labels = padded[:, :-1], padded[:, -1]
    onehot = to_categorical(labels, num_classes=vocab_size)

    keras = import_keras()
    keras.utils.set_random_seed(settings.seed)
    model = build_model(keras, vocab_size, max_len, settings.embedding_dim, settings.units)
    fit_start = time.perf_counter()
    history = model.fit(inputs, onehot, epochs=settings.epochs, batch_size=settings.batch_size, verbose=0)
    trained = time.perf_counter()
    fit_seconds = trained - fit_start

    valid_text = read_lines(settings.valid, settings.valid_lines)
    valid_targets, perplexity = validation_perplexity(model, tokenizer, valid_text, max_len)
    finished = time.perf_counter()

    targets = int(labels.shape[0])
    return Result(
        process_seconds=finished - started,
        seconds_to_trained=trained - started,
        fit_seconds=fit_seconds,
        targets=targets,
        targets_per_second=targets / fit_seconds,
        onehot_bytes=int(onehot.nbytes),
        peak_rss_bytes=peak_rss_bytes(),
        vocab_size=vocab_size,
        max_len=max_len,
        valid_targets=valid_targets,
        valid_perplexity=perplexity,
        train_loss=float(np.asarray(history.history["loss"][-1])),
    )


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return number


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[Settings, bool]:
    """Settings from the command line, and whether to print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="training text (default: PTB train)")
    parser.add_argument("--valid", type=Path, default=DEFAULT_VALID, help="validation text (default: PTB valid)")
    parser.add_argument("--lines", type=_non_negative, default=None, help="train lines to read (default: all)")
    parser.add_argument("--valid-lines", type=_non_negative, default=DEFAULT_VALID_LINES, help="valid lines to read")
    parser.add_argument("--embedding-dim", type=_positive, default=64)
    parser.add_argument("--units", type=_positive, default=128)
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("--epochs", type=_positive, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    arguments = parser.parse_args(argv)
    settings = Settings(
        train=arguments.train,
        valid=arguments.valid,
        lines=arguments.lines,
        valid_lines=arguments.valid_lines,
        embedding_dim=arguments.embedding_dim,
        units=arguments.units,
        batch_size=arguments.batch_size,
        epochs=arguments.epochs,
        seed=arguments.seed,
    )
    return settings, arguments.json


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the result alone goes to stdout."""
    settings, as_json = parse_arguments(argv)
    try:
        result = run(settings)
    except (OSError, ValueError) as error:
        print(f"notebook_pipeline: {error}", file=sys.stderr)
        return 1
    values = asdict(result)
    if as_json:
        print(json.dumps(values))
    else:
        for name, value in values.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
