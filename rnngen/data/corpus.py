"""A training corpus read into token lines, its vocabulary and its flat id stream."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnngen.config import TokenizerConfig
from rnngen.data.batches import TokenStream
from rnngen.data.vocab import Vocabulary
from rnngen.errors import CorpusError
from rnngen.text import tokenize_lines
from rnngen.text.clean import STDIN_NAME, read_text


@dataclass(frozen=True)
class Corpus:
    """What training needs to know about a corpus."""

    source: str
    sha256: str
    vocabulary: Vocabulary
    stream: TokenStream  # the word ids of every non-empty line, without boundaries
    tokens: int  # word tokens, unknown ones included
    unknown_tokens: int  # tokens outside the vocabulary (cut by --max-vocab / --min-count)
    distinct_characters: int  # in the text as the tokenizer keeps it; prices unknown words' spelling

    @property
    def usable_lines(self) -> int:
        return self.stream.line_count


def corpus_text(source: str | Path) -> tuple[str, str]:
    """The normalised text of a file, of standard input ('-'), or of a folder's .txt files; and its name."""
    if str(source) == STDIN_NAME:
        return read_text(source), "standard input"
    path = Path(source)
    if not path.is_dir():
        return read_text(path), str(path)
    files = sorted(file for file in path.rglob("*.txt") if file.is_file())
    if not files:
        raise CorpusError(f"{path}: the folder holds no .txt files")
    # Each file ends its last line, so files never run together into one line.
    return "\n".join(read_text(file) for file in files), str(path)


def encode_lines(token_lines: Iterable[list[str]], vocabulary: Vocabulary) -> tuple[TokenStream, int]:
    """The id stream of token lines, and how many of their tokens were unknown."""
    encoded = [vocabulary.encode(tokens) for tokens in token_lines]
    unknown = sum(len(line.unknown_words) for line in encoded)
    return TokenStream.from_lines([line.ids for line in encoded if line.ids]), unknown


def load_corpus(
    source: str | Path, tokenizer_config: TokenizerConfig, max_words: int | None = None, min_count: int = 1
) -> Corpus:
    """Read, normalise and tokenize a corpus, and build its vocabulary.

    A corpus needs at least one line of two tokens: otherwise there is no next word to learn.
    """
    text, name = corpus_text(source)
    if not text.strip():
        raise CorpusError(f"{name}: the corpus is empty")
    token_lines = tokenize_lines(text, tokenizer_config)
    if not any(len(tokens) >= 2 for tokens in token_lines):
        raise CorpusError(
            f"{name}: no line has two or more words, so there is no next word to learn; put one sentence per line"
        )
    vocabulary = Vocabulary.build(token_lines, max_words=max_words, min_count=min_count)
    stream, unknown = encode_lines(token_lines, vocabulary)
    return Corpus(
        source=name,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        vocabulary=vocabulary,
        stream=stream,
        tokens=sum(len(tokens) for tokens in token_lines),
        unknown_tokens=unknown,
        distinct_characters=len({character for tokens in token_lines for token in tokens for character in token}),
    )


def load_validation(source: str | Path, tokenizer_config: TokenizerConfig, vocabulary: Vocabulary) -> TokenStream:
    """A validation file's lines, encoded with the training vocabulary."""
    text, name = corpus_text(source)
    stream, _ = encode_lines(tokenize_lines(text, tokenizer_config), vocabulary)
    if stream.line_count == 0:
        raise CorpusError(f"{name}: the validation file has no words the model knows")
    return stream


def split_lines(stream: TokenStream, fraction: float, seed: int) -> tuple[TokenStream, TokenStream | None]:
    """Hold out a seeded random ``fraction`` of the lines for validation (whole lines)."""
    line_count = stream.line_count
    held_out = int(round(line_count * fraction))
    if fraction <= 0 or held_out == 0 or held_out >= line_count:
        return stream, None
    chosen = np.zeros(line_count, dtype=bool)
    chosen[np.random.default_rng(seed).choice(line_count, size=held_out, replace=False)] = True
    return stream.select_lines(np.flatnonzero(~chosen)), stream.select_lines(np.flatnonzero(chosen))
