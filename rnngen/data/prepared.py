"""A corpus prepared on disk: its tokens as ids in order of first appearance, written while the text is
read in pieces, so that no corpus is ever held in memory as text or as token strings.

A prepared corpus is a folder of four files:

- ``ids.bin``: every token of every non-empty line, end to end, as a provisional id (uint16 when the
  distinct tokens fit, else uint32): the token's rank by first appearance in the corpus;
- ``lengths.bin``: (lines,) uint32, the tokens of each non-empty line;
- ``words.json``: the distinct tokens in provisional id order, the only part that stays in memory;
- ``meta.json``: format version, the normalised text's sha256 (as ``CorpusText.sha256``), counts,
  each file's size and CRC-32, and a CRC-32 of its own fields, all checked before the folder is used
  (checksums against damage, not digests against tampering: CRC-32 reads several times faster than
  SHA-256, and a second run's start waits for it).

Preparation reads a file, a folder's .txt files in path order, or a spooled copy of standard input in
pieces of whole lines, normalises each as ``read_text`` normalises a whole text, and tokenizes it
with the tokenizer the settings describe: the tokens are those ``read_corpus`` gives, line for line.
Word and character tokenizing runs in a pool of processes, a piece each; Kiwi (morph) already
analyses on every core from one process, and keeps its cache of distinct words there.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import itertools
import json
import multiprocessing
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.config import TokenizerConfig, TokenizerKind, to_json_dict
from rnngen.text import tokenize_text
from rnngen.text.clean import invalid_utf8, line_chunks, normalize_text

FORMAT_VERSION = 2
IDS_FILE = "ids.bin"
LENGTHS_FILE = "lengths.bin"
WORDS_FILE = "words.json"
META_FILE = "meta.json"
DATA_FILES = (IDS_FILE, LENGTHS_FILE, WORDS_FILE)

# Text read, normalised and tokenized at once: large enough that a worker's start-up and the
# transfer of its result are small beside its work, small enough that a few in flight cost little memory.
CHUNK_BYTES = 1 << 22
# Below this much text a pool of processes costs more to start than it saves.
POOL_MIN_BYTES = 16 << 20
# Tokens read at once when a prepared corpus is scanned: a few tens of megabytes of ids.
SCAN_TOKENS = 1 << 23
# Line lengths read at once when a prepared corpus is scanned: 4 MB of them.
SCAN_LINES = 1 << 20
UINT16_WORDS = 1 << 16


@dataclass(frozen=True)
class SourceFiles:
    """The files a corpus is read from, in order, and the name it is known by."""

    files: tuple[Path, ...]
    name: str
    folder_files: int | None  # how many files of a folder were read; None for one file or standard input


@dataclass(frozen=True)
class _Piece:
    """One piece of text as a worker returns it: its tokens as ids local to the piece, in a form that
    pickles fast (one string and a few arrays rather than a list of strings)."""

    error_line: int | None  # the line, counted in the piece, of its first invalid UTF-8 byte
    normalised: bytes | None  # the normalised text as UTF-8, when it differs from the bytes read
    has_text: bool  # any character other than whitespace
    joined_words: str  # the piece's distinct tokens in order of first appearance, each ended by '\n'
    ids: np.ndarray  # (tokens,) uint16 or uint32 indices into the words
    lengths: np.ndarray  # (non-empty lines,) uint32

    def words(self) -> list[str]:
        # No token holds a '\n': every tokenizer cuts at whitespace, and '\n' ends a line.
        return self.joined_words.split("\n")[:-1]


def _piece_ids(tokens: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct tokens in order of first appearance, and (tokens,) each token's index among them."""
    first_seen: dict[str, int] = {}
    # One dictionary pass in C: setdefault gives each token the position where its word first appears...
    positions = np.fromiter(map(first_seen.setdefault, tokens, itertools.count()), dtype=np.int64, count=len(tokens))
    # ... and those positions, in the order they were first given, become 0, 1, 2, ...
    dtype = np.uint16 if len(first_seen) <= UINT16_WORDS else np.uint32
    rank = np.zeros(len(tokens), dtype=dtype)
    rank[np.fromiter(first_seen.values(), dtype=np.int64, count=len(first_seen))] = np.arange(len(first_seen))
    return list(first_seen), rank[positions]


def _tokenize_piece(data: bytes, starts_text: bool, tokenizer_config: TokenizerConfig) -> _Piece:
    """Decode, normalise and tokenize a piece of whole lines (in a worker process, or in this one)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        empty = np.zeros(0, np.uint32)
        return _Piece(data.count(b"\n", 0, error.start) + 1, None, False, "", empty, empty)
    normalised = normalize_text(text, starts_text)
    encoded = None if normalised == text else normalised.encode("utf-8")
    tokens, lengths = tokenize_text(normalised, tokenizer_config)
    words, ids = _piece_ids(tokens)
    joined_words = "\n".join(words) + "\n" if words else ""
    return _Piece(None, encoded, bool(normalised.strip()), joined_words, ids, lengths.astype(np.uint32))


def _worker_count(total_bytes: int, tokenizer_config: TokenizerConfig) -> int:
    if tokenizer_config.kind is TokenizerKind.morph or total_bytes < POOL_MIN_BYTES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


def _pieces(source: SourceFiles, tokenizer_config: TokenizerConfig) -> Iterator[tuple[Path, int, bytes, _Piece]]:
    """Each piece of each file with its file, its first line's number and its bytes, tokenized in order."""
    jobs = (
        (file, index == 0, data) for file in source.files for index, data in enumerate(line_chunks(file, CHUNK_BYTES))
    )
    total = sum(file.stat().st_size for file in source.files)
    workers = _worker_count(total, tokenizer_config)
    lines_before: dict[Path, int] = collections.defaultdict(int)

    def numbered(file: Path, data: bytes) -> int:
        first_line = lines_before[file] + 1
        lines_before[file] += data.count(b"\n")
        return first_line

    if workers == 1:
        for file, starts_text, data in jobs:
            yield file, numbered(file, data), data, _tokenize_piece(data, starts_text, tokenizer_config)
        return
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        # A few pieces in flight per worker, so that reading never runs ahead of tokenizing.
        in_flight: collections.deque[tuple[Path, int, bytes, concurrent.futures.Future[_Piece]]] = collections.deque()
        for file, starts_text, data in jobs:
            future = pool.submit(_tokenize_piece, data, starts_text, tokenizer_config)
            in_flight.append((file, numbered(file, data), data, future))
            if len(in_flight) >= 2 * workers:
                file, line, data, future = in_flight.popleft()
                yield file, line, data, future.result()
        while in_flight:
            file, line, data, future = in_flight.popleft()
            yield file, line, data, future.result()


class _IdWriter:
    """Appends provisional ids to a file as uint16, widening what was written to uint32 once a
    provisional id no longer fits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dtype: type[np.unsignedinteger[Any]] = np.uint16
        self.file = path.open("wb")

    def write(self, ids: np.ndarray, distinct: int) -> None:
        if self.dtype is np.uint16 and distinct > UINT16_WORDS:
            self._widen()
        # The array's own buffer, without the copy that tobytes makes.
        self.file.write(np.ascontiguousarray(ids, dtype=self.dtype).data)

    def _widen(self) -> None:
        self.file.close()
        wide = self.path.with_suffix(".wide")
        with self.path.open("rb") as narrow, wide.open("wb") as output:
            while block := narrow.read(SCAN_TOKENS * 2):
                output.write(np.frombuffer(block, dtype=np.uint16).astype(np.uint32).tobytes())
        os.replace(wide, self.path)
        self.dtype = np.uint32
        self.file = self.path.open("ab")

    def close(self) -> None:
        self.file.close()


def _provisional_ids(piece: _Piece, word_index: dict[str, int]) -> np.ndarray:
    """(tokens,) the piece's tokens as provisional ids (uint16 while they fit, else uint32), its words
    new to ``word_index`` added there with the next free ids, in the piece's order of first appearance."""
    words = piece.words()
    # Loops in C rather than a Python step per word: a piece of Korean text brings 100,000 distinct words.
    new_words = list(itertools.filterfalse(word_index.__contains__, words))
    word_index.update(zip(new_words, itertools.count(len(word_index))))
    dtype = np.uint16 if len(word_index) <= UINT16_WORDS else np.uint32
    remap = np.fromiter(map(word_index.__getitem__, words), dtype=dtype, count=len(words))
    # Gathered straight into the width written, rather than gathered wide and narrowed after.
    return remap[piece.ids]


def file_checksum(path: Path) -> int:
    """The CRC-32 of a file's bytes, read a few megabytes at a time."""
    checksum = 0
    with path.open("rb") as file:
        while block := file.read(1 << 22):
            checksum = zlib.crc32(block, checksum)
    return checksum


def prepare_corpus(source: SourceFiles, tokenizer_config: TokenizerConfig, folder: Path) -> None:
    """Read, normalise and tokenize a corpus into ``folder`` (which must exist, empty); see the module."""
    text_digest = hashlib.sha256()
    word_index: dict[str, int] = {}
    writer = _IdWriter(folder / IDS_FILE)
    lines = tokens = longest = 0
    has_text = False
    previous_file: Path | None = None
    with (folder / LENGTHS_FILE).open("wb") as lengths_file:
        for file, first_line, data, piece in _pieces(source, tokenizer_config):
            if piece.error_line is not None:
                writer.close()
                raise invalid_utf8(str(file), first_line + piece.error_line - 1)
            if previous_file is not None and file != previous_file:
                text_digest.update(b"\n")  # the folder's files joined by a line end, as read_source joins them
            previous_file = file
            text_digest.update(data if piece.normalised is None else piece.normalised)
            has_text = has_text or piece.has_text
            writer.write(_provisional_ids(piece, word_index), len(word_index))
            lengths_file.write(np.ascontiguousarray(piece.lengths).data)
            lines += len(piece.lengths)
            tokens += len(piece.ids)
            if len(piece.lengths):
                longest = max(longest, int(piece.lengths.max()))
    writer.close()
    words = list(word_index)
    (folder / WORDS_FILE).write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    meta = {
        "format_version": FORMAT_VERSION,
        "sha256": text_digest.hexdigest(),
        "tokenizer": to_json_dict(tokenizer_config),
        "has_text": has_text,
        "lines": lines,
        "tokens": tokens,
        "longest_line": longest,
        "distinct_words": len(words),
        "id_dtype": np.dtype(writer.dtype).name,
        "files": {
            name: {"bytes": (folder / name).stat().st_size, "crc32": file_checksum(folder / name)}
            for name in DATA_FILES
        },
    }
    meta["checksum"] = _meta_checksum(meta)
    (folder / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _meta_checksum(meta: dict[str, Any]) -> int:
    """The CRC-32 of meta.json's fields but its own, so that damage to meta.json itself is found too."""
    fields = {name: value for name, value in meta.items() if name != "checksum"}
    return zlib.crc32(json.dumps(fields, sort_keys=True).encode("utf-8"))


class PreparedCorpus:
    """A prepared corpus folder, checked and opened: see the module's docstring.

    Nothing per line or per token is loaded when it is opened: the line lengths and the ids are read a
    range of lines at a time (``read``, ``scan``), so a corpus of any size opens in the same memory.
    """

    def __init__(self, folder: Path) -> None:
        """Open a prepared folder; ValueError when it is incomplete, of another format, or damaged."""
        self.folder = folder
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"unreadable {META_FILE}: {error}") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("another format version")
        if meta.get("checksum") != _meta_checksum(meta):
            raise ValueError(f"{META_FILE} is damaged")
        for name in DATA_FILES:
            expected = meta["files"][name]
            path = folder / name
            if (
                not path.is_file()
                or path.stat().st_size != expected["bytes"]
                or file_checksum(path) != expected["crc32"]
            ):
                raise ValueError(f"{name} is missing or damaged")
        self.meta = meta
        self.sha256: str = meta["sha256"]
        self.words: list[str] = json.loads((folder / WORDS_FILE).read_text(encoding="utf-8"))
        self.id_dtype = np.dtype(meta["id_dtype"])
        if len(self.words) != meta["distinct_words"] or (folder / LENGTHS_FILE).stat().st_size != meta["lines"] * 4:
            raise ValueError("the counts do not match the files")
        if (folder / IDS_FILE).stat().st_size != meta["tokens"] * self.id_dtype.itemsize:
            raise ValueError("the id file does not hold every token")

    @property
    def lines(self) -> int:
        return int(self.meta["lines"])

    @property
    def tokens(self) -> int:
        return int(self.meta["tokens"])

    @property
    def longest_line(self) -> int:
        return int(self.meta["longest_line"])

    @property
    def has_text(self) -> bool:
        return bool(self.meta["has_text"])

    def line_lengths(self, first: int = 0, end: int | None = None) -> np.ndarray:
        """(end - first,) uint32: the tokens of lines ``first`` to ``end`` (all lines by default)."""
        end = self.lines if end is None else end
        if end <= first:
            return np.zeros(0, dtype=np.uint32)
        return np.fromfile(self.folder / LENGTHS_FILE, dtype=np.uint32, count=end - first, offset=4 * first)

    def read(self, first_token: int, count: int) -> np.ndarray:
        """``count`` provisional ids from token ``first_token`` on."""
        if count <= 0:
            return np.zeros(0, dtype=self.id_dtype)
        offset = first_token * self.id_dtype.itemsize
        return np.fromfile(self.folder / IDS_FILE, dtype=self.id_dtype, count=count, offset=offset)

    def length_pieces(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first line, lengths) of every line, SCAN_LINES lines at a time."""
        for first in range(0, self.lines, SCAN_LINES):
            yield first, self.line_lengths(first, min(first + SCAN_LINES, self.lines))

    def scan(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first line, the lines' lengths, their ids) for consecutive runs of whole lines of about
        SCAN_TOKENS tokens (one line when a line is longer), read (not mapped) in turn, so that a pass
        over the corpus holds a few megabytes whatever its size."""
        with (self.folder / IDS_FILE).open("rb") as ids_file:
            for first, lengths in self.length_pieces():
                ends = np.cumsum(lengths, dtype=np.int64)
                run_start = 0
                while run_start < len(lengths):
                    before = int(ends[run_start - 1]) if run_start else 0
                    run_end = int(np.searchsorted(ends, before + SCAN_TOKENS, side="right"))
                    run_end = min(max(run_end, run_start + 1), len(lengths))
                    ids = np.fromfile(ids_file, dtype=self.id_dtype, count=int(ends[run_end - 1]) - before)
                    yield first + run_start, lengths[run_start:run_end], ids
                    run_start = run_end
