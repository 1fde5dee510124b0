"""The tokenizer a corpus gets when the user names none: Korean morpheme pieces for real Korean text,
whole words for everything else and for a few sentences learned by heart.

Korean attaches particles and endings to words, so whole words leave a third of a new review unknown
even after 10,000 reviews, and each unknown word is paid for in spelling; morpheme pieces cut that to a
few percent (benchmarks/RESULTS.md, "Defaults on a user's own text"). A corpus of a few sentences, like
the notebook's, is learned by heart either way, and whole words keep `-n` counting words there.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import TextIO

from rnngen.config import REAL_TEXT_MIN_TOKENS, TokenizerKind
from rnngen.data.corpus import text_files
from rnngen.text.clean import STDIN_NAME

# How much of a corpus is read to choose: enough words to see past a title or a header, little enough
# to cost nothing next to reading the corpus itself.
SAMPLE_BYTES = 1 << 20
# Korean text: at least this share of the sample's letters are Hangul syllables or jamo.
KOREAN_LETTER_SHARE = 0.5


# What is not a Hangul syllable (가-힣) or jamo, compatibility jamo included (ㅋ, ㅠ); what is not a letter
# of any script. Removing them and measuring what is left counts in one pass of C.
_NOT_HANGUL = re.compile("[^\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")
_NOT_LETTER = re.compile(r"[\W\d_]+")


def choose_tokenizer_kind(sample: str) -> TokenizerKind:
    """morph for a sample whose letters are mostly Hangul and that holds at least REAL_TEXT_MIN_TOKENS
    whitespace-separated words; word otherwise."""
    letters = len(_NOT_LETTER.sub("", sample))
    hangul = len(_NOT_HANGUL.sub("", sample))
    is_korean = letters > 0 and hangul >= KOREAN_LETTER_SHARE * letters
    is_real_text = len(sample.split()) >= REAL_TEXT_MIN_TOKENS
    return TokenizerKind.morph if is_korean and is_real_text else TokenizerKind.word


class _ReplayedInput(io.RawIOBase):
    """Bytes already read from a stream, then the rest of the stream: standard input read from the start
    again after a sample of it was taken."""

    def __init__(self, head: bytes, original: TextIO) -> None:
        self._head = head
        # The text wrapper is held, not only its bytes, so that it is not collected (and its stream
        # closed) while the rest is read.
        self._original = original
        self._rest = original.buffer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _sample_standard_input(limit: int) -> bytes:
    """The first ``limit`` bytes of standard input, which is then put back so that reading the corpus
    still starts from its first byte."""
    head = sys.stdin.buffer.read(limit)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(_ReplayedInput(head, sys.stdin)), encoding="utf-8")
    return head


def source_sample(source: str | Path, limit: int = SAMPLE_BYTES) -> str:
    """Up to ``limit`` bytes from the start of a corpus (a file, a folder's .txt files, or standard
    input, which is read again from its start afterwards), decoded leniently."""
    if str(source) == STDIN_NAME:
        data = _sample_standard_input(limit)
    else:
        path = Path(source)
        files = text_files(path) if path.is_dir() else [path]
        parts: list[bytes] = []
        left = limit
        try:
            for file in files:
                if left <= 0:
                    break
                with file.open("rb") as stream:
                    parts.append(stream.read(left))
                left -= len(parts[-1]) + 1
        except OSError:
            return ""  # reading the corpus itself reports what is wrong with it
        # Files are read as separate lines, as the corpus reader joins them.
        data = b"\n".join(parts)
    return data.decode("utf-8", errors="ignore")
