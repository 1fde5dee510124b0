"""Cutting lines into tokens (words, characters) and putting tokens back into text."""

from __future__ import annotations

import functools
import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

# Marks a token that begins a word (SentencePiece's convention) for the char and morph tokenizers,
# which therefore read this one character in the input as WORD_START_STAND_IN.
WORD_START = "\u2581"
WORD_START_STAND_IN = "_"

# Lines cleaned together: one pass of lower() and of the filter pattern over many lines is several
# times faster than one per line, and the morph tokenizer analyses the new words of a chunk at once.
LINES_PER_CHUNK = 8192

# No code point above this one is whitespace to str.split (U+3000 IDEOGRAPHIC SPACE is the last).
LAST_WHITESPACE = 0x3000


@dataclass(frozen=True)
class LineTokenizer(ABC):
    """Cuts lines into tokens and puts tokens back into text.

    Every kind first lower-cases (``lower``) and turns each ``filters`` character into a space, as
    the old Keras Tokenizer did; runs of whitespace then separate words.
    """

    filters: str
    lower: bool
    _filter_pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _filter_table: dict[int, str] = field(init=False, repr=False, compare=False)

    # Whether WORD_START in the input is read as WORD_START_STAND_IN, because tokens use it as a mark.
    reserves_word_start: ClassVar[bool] = False

    def __post_init__(self) -> None:
        # A regular expression replaces a character class in one C loop, several times faster than
        # str.translate on Korean text. The newline is left alone: it separates the lines of a chunk,
        # and within a line it is whitespace anyway.
        kept = sorted(set(self.filters) - {"\n"})
        pattern = re.compile("[" + "".join(re.escape(character) for character in kept) + "]") if kept else None
        object.__setattr__(self, "_filter_pattern", pattern)
        # On ASCII text str.translate takes a fast path that is ten times faster than the pattern.
        object.__setattr__(self, "_filter_table", dict.fromkeys(map(ord, kept), " "))

    def clean(self, text: str) -> str:
        """The text lower-cased (if asked) with every filtered character turned into a space."""
        if self.lower:
            text = text.lower()
        if self.reserves_word_start and WORD_START in text:
            text = text.replace(WORD_START, WORD_START_STAND_IN)
        if self._filter_pattern is not None:
            text = text.translate(self._filter_table) if text.isascii() else self._filter_pattern.sub(" ", text)
        return text

    def split(self, line: str) -> list[str]:
        """The tokens of one line, in order."""
        return next(self.split_lines([line]))

    def split_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """The tokens of each line, in order: one list per line, empty for a line without words."""
        iterator = iter(lines)
        while chunk := list(itertools.islice(iterator, LINES_PER_CHUNK)):
            joined = "\n".join(chunk)
            if joined.count("\n") != len(chunk) - 1:
                # A line holds a newline of its own (a prompt can): there it only separates words.
                joined = "\n".join(line.replace("\n", " ") for line in chunk)
            yield from self._split_cleaned(self.clean(joined).split("\n"))

    def split_text(self, text: str) -> tuple[list[str], np.ndarray]:
        """The tokens of every line of a text ('\\n' ends a line), end to end, and (lines,) int64 how
        many of them each line holds, 0 for a line without tokens: ``split_lines`` flattened."""
        lines = list(self.split_lines(text.split("\n")))
        counts = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        return list(itertools.chain.from_iterable(lines)), counts

    @abstractmethod
    def _split_cleaned(self, lines: Sequence[str]) -> Iterable[list[str]]:
        """The tokens of lines that are already lower-cased and filtered."""

    @abstractmethod
    def join(self, tokens: Iterable[str]) -> str:
        """Tokens back into a line of text."""

    def extend(self, text: str, tokens: Iterable[str]) -> str:
        """``text`` continued by ``tokens``, each joined to it the way this tokenizer cut them."""
        return "".join(self.extend_pieces(text, tokens))

    @abstractmethod
    def extend_pieces(self, text: str, tokens: Iterable[str]) -> Iterator[str]:
        """``extend(text, tokens)`` piece by piece, as the tokens come: the text, then what each token
        adds to it (nothing, for a leading space that the whole text would not start with)."""


@dataclass(frozen=True)
class WordTokenizer(LineTokenizer):
    """The old Keras Tokenizer's word splitting: lower-case, filtered characters become spaces.

    Keras split on the space character alone; splitting on any whitespace gives the same words for
    the default filters (which already turn tabs and newlines into spaces) and does the sensible
    thing when the user keeps tabs with --filters "".
    """

    def _split_cleaned(self, lines: Sequence[str]) -> Iterable[list[str]]:
        return map(str.split, lines)

    def split_text(self, text: str) -> tuple[list[str], np.ndarray]:
        # One split of the whole text, without a list per line, takes half the time; '\n' is
        # whitespace, so no token reaches across a line end, and each line's count is that of the
        # token starts between its ends.
        cleaned = self.clean(text)
        return cleaned.split(), tokens_per_line(cleaned)

    def join(self, tokens: Iterable[str]) -> str:
        return " ".join(tokens)

    def extend_pieces(self, text: str, tokens: Iterable[str]) -> Iterator[str]:
        if text:
            yield text
        separator = " " if text else ""
        for token in tokens:
            yield separator + token
            separator = " "


@functools.cache
def _whitespace_table() -> np.ndarray:
    """(LAST_WHITESPACE + 2,) bool: which code points str.split separates words at; the last entry
    stands for every code point above LAST_WHITESPACE."""
    return np.array([chr(code).isspace() for code in range(LAST_WHITESPACE + 2)])


def tokens_per_line(text: str) -> np.ndarray:
    """(lines,) int64: how many of ``text.split()``'s tokens each of ``text.split("\\n")``'s lines
    holds, counted from the code points with numpy rather than by splitting each line."""
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        # ASCII whitespace is two runs of codes, '\t' to '\r' and the separators '\x1c' to ' ':
        # four comparisons cost a quarter of a table look-up.
        in_word = ((codes < 9) | (codes > 13)) & ((codes < 28) | (codes > 32))
    else:
        wide = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        codes = np.minimum(wide, LAST_WHITESPACE + 1)
        in_word = ~_whitespace_table()[codes]
    # A token starts at a character of a word that the text's start or whitespace comes before.
    token_starts = np.flatnonzero(in_word[1:] > in_word[:-1]) + 1
    if len(in_word) and in_word[0]:
        token_starts = np.concatenate(([0], token_starts))
    line_ends = np.flatnonzero(codes == ord("\n"))
    starts_before_each_end = np.searchsorted(token_starts, line_ends)
    return np.diff(starts_before_each_end, prepend=0, append=len(token_starts))


def join_marked(tokens: Iterable[str]) -> str:
    """Tokens whose word starts carry WORD_START back into text: each mark becomes a space, none at the start."""
    return "".join(tokens).replace(WORD_START, " ").lstrip(" ")


def extend_marked_pieces(text: str, tokens: Iterable[str]) -> Iterator[str]:
    """``text`` continued by marked tokens, piece by piece: a first token without the mark continues
    the text's last word. Without a text, the spaces before the first word are left out, as in
    ``join_marked``."""
    if text:
        yield text
    leading = not text
    for token in tokens:
        piece = token.replace(WORD_START, " ")
        if leading:
            piece = piece.lstrip(" ")
            leading = not piece
        if piece:
            yield piece


@dataclass(frozen=True)
class CharTokenizer(LineTokenizer):
    """One token per character; the space between words is the token WORD_START.

    Runs of whitespace become one space and the line's ends are stripped, so ``join(split(line))``
    gives the cleaned line with its words separated by single spaces.
    """

    reserves_word_start: ClassVar[bool] = True

    def _split_cleaned(self, lines: Sequence[str]) -> Iterable[list[str]]:
        return [list(WORD_START.join(line.split())) for line in lines]

    def split_text(self, text: str) -> tuple[list[str], np.ndarray]:
        # Each line's tokens as one string first: a single list of characters at the end, not one a line.
        lines = [WORD_START.join(line.split()) for line in self.clean(text).split("\n")]
        counts = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        return list("".join(lines)), counts

    def join(self, tokens: Iterable[str]) -> str:
        return join_marked(tokens)

    def extend_pieces(self, text: str, tokens: Iterable[str]) -> Iterator[str]:
        return extend_marked_pieces(text, tokens)
