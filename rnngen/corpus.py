"""A training corpus read into token lines, its vocabulary and its flat id stream."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnngen.config import TokenizerConfig
from rnngen.errors import CorpusError
from rnngen.sequences import TokenStream
from rnngen.text import make_tokenizer, read_text
from rnngen.vocab import Vocabulary


@dataclass(frozen=True)
class Corpus:
    """What training needs to know about a corpus."""

    source: str
    sha256: str
    vocabulary: Vocabulary
    stream: TokenStream  # one entry per line of two or more tokens
    characters: int

    @property
    def usable_lines(self) -> int:
        return len(self.stream.line_starts) - 1


def load_corpus(source: str | Path, tokenizer_config: TokenizerConfig) -> Corpus:
    """Read, normalise and tokenize a corpus file (or '-' for standard input).

    Lines of fewer than two tokens hold no (prefix, next word) pair, so they are left out; a corpus
    without any line of two tokens is an error the user must fix.
    """
    text = read_text(source)
    name = "standard input" if str(source) == "-" else str(source)
    if not text.strip():
        raise CorpusError(f"{name}: the corpus is empty")
    tokenizer = make_tokenizer(tokenizer_config)
    token_lines = [tokenizer.split(line) for line in text.split("\n")]
    token_lines = [tokens for tokens in token_lines if len(tokens) >= 2]
    if not token_lines:
        raise CorpusError(
            f"{name}: no line has two or more words, so there is no next word to learn; put one sentence per line"
        )
    vocabulary = Vocabulary.build(token_lines)
    id_lines = [vocabulary.encode(tokens).ids for tokens in token_lines]
    return Corpus(
        source=name,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        vocabulary=vocabulary,
        stream=TokenStream.from_lines(id_lines),
        characters=len(text),
    )


def split_lines(stream: TokenStream, fraction: float, seed: int) -> tuple[TokenStream, TokenStream | None]:
    """Hold out a seeded random ``fraction`` of the lines for validation (at least one line)."""
    line_count = len(stream.line_starts) - 1
    held_out = int(round(line_count * fraction))
    if fraction <= 0 or held_out == 0 or held_out >= line_count:
        return stream, None
    chosen = np.zeros(line_count, dtype=bool)
    chosen[np.random.default_rng(seed).choice(line_count, size=held_out, replace=False)] = True
    lines = [stream.ids[stream.line_starts[i] : stream.line_starts[i + 1]].tolist() for i in range(line_count)]
    training = TokenStream.from_lines([line for line, hold in zip(lines, chosen, strict=True) if not hold])
    validation = TokenStream.from_lines([line for line, hold in zip(lines, chosen, strict=True) if hold])
    return training, validation
