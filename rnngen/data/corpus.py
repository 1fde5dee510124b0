"""A training corpus: its lines read and tokenized, the validation lines held out, and the vocabulary
built from the training lines alone, as flat id streams.

The vocabulary never sees the held-out lines: their words that the training lines lack are unknown
words, scored as `rnngen evaluate` scores a new text, so validation perplexity and early stopping mean
what they say.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnngen.config import TokenizerConfig
from rnngen.data.batches import TokenStream
from rnngen.data.line_blocks import LineBlocks
from rnngen.data.vocab import Vocabulary, count_words
from rnngen.errors import CorpusError, UsageError
from rnngen.text import tokenize_lines
from rnngen.text.clean import STDIN_NAME, read_text

TokenLines = list[list[str]]


@dataclass(frozen=True)
class SourceText:
    """The normalised text of a file, of standard input, or of a folder's .txt files joined."""

    text: str
    name: str
    files: int | None = None  # how many files of a folder were read; None for one file or standard input


@dataclass(frozen=True)
class CorpusText:
    """A corpus read, normalised and tokenized: its non-empty lines' tokens."""

    source: str
    sha256: str
    token_lines: TokenLines
    files: int | None = None  # as SourceText's

    @property
    def usable_lines(self) -> int:
        return len(self.token_lines)

    @property
    def tokens(self) -> int:
        return sum(len(tokens) for tokens in self.token_lines)

    def describe(self, purpose: str = "") -> str:
        return describe_read(self.source, self.files, self.usable_lines, self.tokens, purpose)


def describe_read(source: str, files: int | None, lines: int, tokens: int, purpose: str = "") -> str:
    """What was read, in words for the progress report: the source (a folder's with how many files),
    what for (" for validation"), its lines and tokens."""
    if files is not None:
        source = f"{files:,} file{'' if files == 1 else 's'} from {os.path.join(source, '')}"
    return f"read {source}{purpose}: {lines:,} lines, {tokens:,} tokens"


@dataclass(frozen=True)
class WordCounts:
    """What the training lines' word counts tell about words the vocabulary will lack."""

    tokens: int
    singleton_tokens: int  # tokens whose word occurs once in the training lines
    distinct_characters: int  # in the training lines' tokens; prices unknown words' spelling

    @classmethod
    def of(cls, token_lines: Iterable[Sequence[str]]) -> WordCounts:
        return cls.from_counts(count_words(token_lines))

    @classmethod
    def from_counts(cls, counts: Counter[str]) -> WordCounts:
        return cls(
            tokens=sum(counts.values()),
            singleton_tokens=sum(1 for count in counts.values() if count == 1),
            distinct_characters=len({character for word in counts for character in word}),
        )

    @property
    def escape_probability(self) -> float:
        """Good-Turing's estimate of the chance that the next token is a word never seen: the share of
        training tokens whose word was seen once, at least one token's share, and short of 1 (when every
        word was seen once) so that known words keep a chance."""
        if self.tokens == 0:
            return 0.5
        return min(max(self.singleton_tokens, 1) / self.tokens, self.tokens / (self.tokens + 1))


@dataclass(frozen=True)
class Corpus:
    """What training needs to know about a corpus, validation lines held out."""

    source: str
    sha256: str
    vocabulary: Vocabulary  # from the training lines only
    # The word ids of the training lines, without boundaries: in memory, or read from a prepared corpus
    # a block at a time.
    stream: TokenStream | LineBlocks
    validation_stream: TokenStream | None  # the held-out (or --valid) lines' ids; unknown words as evaluate reads them
    # The same lines' tokens, for scoring them as text (from a prepared corpus: the first SCORED_TOKENS' worth).
    validation_lines: TokenLines | None
    training_lines: TokenLines  # from a prepared corpus: the first SCORED_TOKENS' worth, when no line is held out
    usable_lines: int  # non-empty lines of the corpus, held-out ones included
    tokens: int  # word tokens of the corpus, held-out lines included
    counts: WordCounts  # of the training lines
    unknown_tokens: int  # training tokens outside the vocabulary (cut by --max-vocab / --min-count)
    marker_tokens: int = 0  # training tokens that are the text's own unknown-word marker (--unk-token)


def text_files(folder: Path) -> list[Path]:
    """The .txt files under a folder, whatever the case of the extension (``a.TXT``), in path order."""
    return sorted(file for file in folder.rglob("*") if file.name.lower().endswith(".txt") and file.is_file())


def read_source(source: str | Path) -> SourceText:
    """The normalised text of a file, of standard input ('-'), or of a folder's .txt files."""
    if str(source) == STDIN_NAME:
        return SourceText(read_text(source), "standard input")
    path = Path(source)
    if not path.is_dir():
        return SourceText(read_text(path), str(path))
    files = text_files(path)
    if not files:
        raise CorpusError(f"{path}: the folder holds no .txt files")
    # Each file ends its last line, so files never run together into one line.
    return SourceText("\n".join(read_text(file) for file in files), str(path), len(files))


def corpus_text(source: str | Path) -> tuple[str, str]:
    """The normalised text of a file, of standard input ('-'), or of a folder's .txt files; and its name."""
    read = read_source(source)
    return read.text, read.name


def encode_lines(token_lines: Iterable[list[str]], vocabulary: Vocabulary) -> tuple[TokenStream, int]:
    """The id stream of token lines, and how many of their tokens were unknown."""
    encoded = [vocabulary.encode(tokens) for tokens in token_lines]
    unknown = sum(len(line.unknown_words) for line in encoded)
    return TokenStream.from_lines([line.ids for line in encoded if line.ids]), unknown


def read_corpus(source: str | Path, tokenizer_config: TokenizerConfig) -> CorpusText:
    """Read, normalise and tokenize a corpus.

    A corpus needs at least one line of two tokens: otherwise there is no next word to learn.
    """
    read = read_source(source)
    if not read.text.strip():
        raise CorpusError(f"{read.name}: the corpus is empty")
    token_lines = tokenize_lines(read.text, tokenizer_config)
    if not any(len(tokens) >= 2 for tokens in token_lines):
        raise CorpusError(
            f"{read.name}: no line has two or more words, so there is no next word to learn; put one sentence per line"
        )
    return CorpusText(read.name, _sha256(read.text), token_lines, read.files)


def read_validation(source: str | Path, tokenizer_config: TokenizerConfig) -> CorpusText:
    """A validation text (file, folder or standard input), read and tokenized."""
    read = read_source(source)
    token_lines = tokenize_lines(read.text, tokenizer_config)
    if not token_lines:
        raise CorpusError(f"{read.name}: the validation file has no words")
    return CorpusText(read.name, _sha256(read.text), token_lines, read.files)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unknown_marker(token: str, tokenizer_config: TokenizerConfig) -> str:
    """The text's unknown-word marker as the tokenizer reads it in the text: ``<unk>`` is ``unk`` once
    the default filters have removed the angle brackets, as it is in the text they filter.

    A marker the tokenizer cuts into several tokens, or filters away, cannot be matched: refused.
    """
    tokens = [piece for line in tokenize_lines(token, tokenizer_config) for piece in line]
    if len(tokens) != 1:
        shown = "nothing" if not tokens else " ".join(repr(piece) for piece in tokens)
        raise UsageError(
            f"--unk-token {token!r} is not one token once --filters and --lower are applied (it reads as "
            f"{shown}); give the marker as the text holds it, or keep its characters with --filters"
        )
    return tokens[0]


def held_out_line_numbers(line_count: int, fraction: float, seed: int) -> np.ndarray:
    """The sorted numbers of a seeded random ``fraction`` of the lines, whole lines, chosen for
    validation; none when that leaves no line on either side."""
    held_out = int(round(line_count * fraction))
    if fraction <= 0 or held_out == 0 or held_out >= line_count:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(line_count, size=held_out, replace=False)).astype(np.int64)


def held_out_lines(line_count: int, fraction: float, seed: int) -> np.ndarray:
    """(line_count,) bool: the lines ``held_out_line_numbers`` chooses."""
    chosen = np.zeros(line_count, dtype=bool)
    chosen[held_out_line_numbers(line_count, fraction, seed)] = True
    return chosen


def build_corpus(
    text: CorpusText,
    held_out: np.ndarray | None,
    validation_file_lines: TokenLines | None,
    max_words: int | None,
    min_count: int,
    marker: str | None = None,
) -> Corpus:
    """Hold out the chosen lines (or take a validation file's), build the vocabulary from the training
    lines alone (``marker``, the text's unknown-word marker, read as the unknown word), and encode both
    sides with it."""
    if held_out is not None and held_out.any():
        training_lines = [tokens for tokens, chosen in zip(text.token_lines, held_out, strict=True) if not chosen]
        validation_lines: TokenLines | None = [
            tokens for tokens, chosen in zip(text.token_lines, held_out, strict=True) if chosen
        ]
    else:
        training_lines, validation_lines = text.token_lines, None
    if validation_file_lines is not None:
        validation_lines = validation_file_lines
    # One count of the training words serves the vocabulary and the unknown-word estimates.
    word_counts = count_words(training_lines)
    vocabulary = Vocabulary.from_counts(word_counts, max_words=max_words, min_count=min_count, unknown_marker=marker)
    stream, unknown = encode_lines(training_lines, vocabulary)
    validation_stream = None
    if validation_lines is not None:
        validation_stream, _ = encode_lines(validation_lines, vocabulary)
        if validation_stream.line_count == 0:
            raise CorpusError(f"{text.source}: the validation lines have no words the training lines have")
    return Corpus(
        source=text.source,
        sha256=text.sha256,
        vocabulary=vocabulary,
        stream=stream,
        validation_stream=validation_stream,
        validation_lines=validation_lines,
        training_lines=training_lines,
        usable_lines=text.usable_lines,
        tokens=text.tokens,
        counts=WordCounts.from_counts(word_counts),
        unknown_tokens=unknown,
        marker_tokens=0 if marker is None else word_counts[marker],
    )
