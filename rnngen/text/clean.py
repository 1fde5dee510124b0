"""Text hygiene: reading a file or standard input as UTF-8, with one canonical form for any text."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

from rnngen.errors import CorpusError

STDIN_NAME = "-"


def normalize_text(text: str) -> str:
    """One canonical form for any text: no BOM, '\\n' line endings, composed Unicode (NFC).

    NFC matters for Korean: a syllable typed on one system may arrive as separate jamo from another,
    and both spellings must map to the same word.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def decode_utf8(data: bytes, source: str) -> str:
    """Decode UTF-8, naming the line of the first invalid byte rather than its byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_number = data.count(b"\n", 0, error.start) + 1
        raise CorpusError(
            f"{source}: invalid UTF-8 on line {line_number}; save the file as UTF-8 and try again"
        ) from None


def read_text(source: str | Path) -> str:
    """The normalised text of a file, or of standard input when the source is '-'."""
    if str(source) == STDIN_NAME:
        return normalize_text(decode_utf8(sys.stdin.buffer.read(), "standard input"))
    path = Path(source)
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror})") from None
    return normalize_text(decode_utf8(data, str(path)))
