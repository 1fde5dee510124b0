"""The cache of prepared corpora: a corpus is tokenized once per tokenizer setting, and every later
run on the same text and settings opens the prepared folder instead.

Where: ``$RNNGEN_CACHE``, else ``$XDG_CACHE_HOME/rnngen``, else ``~/.cache/rnngen``. Inside:

- ``corpora/<key>/``: a prepared corpus (prepared.py), its key made of the normalised text's sha256
  and the tokenizer settings, so equal texts share an entry whatever their file names;
- ``sources/<key>.json``: which entry a source was prepared into, its key made of the files' paths,
  sizes and modification times (nanoseconds) and the tokenizer settings. It lets a second run find its
  entry without reading the text (hashing 500 MB alone takes about a second); a file changed since
  has another size or time, misses, and is prepared again (a file merely touched is re-tokenized, and
  then lands on its old entry). Standard input is keyed by the sha256 of its bytes as spooled.

An entry is written into a ``.partial-*`` folder and renamed into place only when complete, so a
preparation killed midway leaves nothing that is ever looked up. Each use checks the entry's format
version and every file's size and checksum; an entry that fails is removed and prepared again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnngen.config import TokenizerConfig, to_json_dict
from rnngen.data.prepared import FORMAT_VERSION, PreparedCorpus, SourceFiles, prepare_corpus
from rnngen.errors import CorpusError
from rnngen.text.clean import STDIN_NAME

CORPORA = "corpora"
SOURCES = "sources"
PARTIAL_PREFIX = ".partial-"


def cache_root() -> Path:
    """The cache folder: $RNNGEN_CACHE, else $XDG_CACHE_HOME/rnngen, else ~/.cache/rnngen."""
    if os.environ.get("RNNGEN_CACHE"):
        return Path(os.environ["RNNGEN_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rnngen"
    return Path.home() / ".cache" / "rnngen"


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([FORMAT_VERSION, *parts], sort_keys=True).encode()).hexdigest()[:32]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=PARTIAL_PREFIX)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(staging, path)


@dataclass(frozen=True)
class Opened:
    """A prepared corpus, and whether it came from the cache as it was (no tokenizing)."""

    corpus: PreparedCorpus
    from_cache: bool


def _open_entry(folder: Path) -> PreparedCorpus | None:
    """The entry in ``folder``, or None when there is none; a damaged one is removed."""
    if not folder.is_dir():
        return None
    try:
        return PreparedCorpus(folder)
    except (ValueError, KeyError, TypeError, OSError):
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _spool_stdin(root: Path) -> tuple[Path, str]:
    """Standard input copied into a file under the cache, and the sha256 of its bytes."""
    root.mkdir(parents=True, exist_ok=True)
    descriptor, spooled = tempfile.mkstemp(dir=root, prefix=PARTIAL_PREFIX + "stdin-")
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "wb") as file:
        while block := sys.stdin.buffer.read(1 << 22):
            digest.update(block)
            file.write(block)
    return Path(spooled), digest.hexdigest()


def source_files(source: str | Path) -> SourceFiles:
    """The files a corpus source names (a file, or a folder's .txt files), in reading order."""
    from rnngen.data.corpus import text_files

    path = Path(source)
    if not path.is_dir():
        if not path.exists():
            raise CorpusError(f"{path}: no such file")
        return SourceFiles((path,), str(path), None)
    files = text_files(path)
    if not files:
        raise CorpusError(f"{path}: the folder holds no .txt files")
    return SourceFiles(tuple(files), str(path), len(files))


def open_prepared(
    source: str | Path, tokenizer_config: TokenizerConfig, on_prepare: Callable[[], None] | None = None
) -> tuple[Opened, SourceFiles]:
    """The prepared form of a corpus (file, folder, or standard input '-'), from the cache when it holds
    it, else prepared now and kept there. ``on_prepare`` is called before tokenizing starts."""
    root = cache_root()
    tokenizer = to_json_dict(tokenizer_config)
    spooled: Path | None = None
    try:
        if str(source) == STDIN_NAME:
            spooled, raw_sha256 = _spool_stdin(root)
            files = SourceFiles((spooled,), "standard input", None)
            source_key = _key("stdin", raw_sha256, tokenizer)
        else:
            files = source_files(source)
            stamps = []
            for file in files.files:
                status = file.stat()
                stamps.append([str(file.resolve()), status.st_size, status.st_mtime_ns])
            source_key = _key("files", stamps, tokenizer)
        index = root / SOURCES / f"{source_key}.json"
        if index.is_file():
            try:
                entry_name = json.loads(index.read_text(encoding="utf-8"))["entry"]
            except (OSError, ValueError, KeyError, TypeError):
                entry_name = None
            if isinstance(entry_name, str) and entry_name.isalnum():
                prepared = _open_entry(root / CORPORA / entry_name)
                if prepared is not None:
                    return Opened(prepared, from_cache=True), files
        if on_prepare is not None:
            on_prepare()
        prepared = _prepare_entry(root, files, tokenizer_config)
        _write_atomically(index, json.dumps({"entry": prepared.folder.name}))
        return Opened(prepared, from_cache=False), files
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)


def _prepare_entry(root: Path, files: SourceFiles, tokenizer_config: TokenizerConfig) -> PreparedCorpus:
    """Prepare a corpus into a partial folder and rename it into place as its entry."""
    corpora = root / CORPORA
    corpora.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=corpora, prefix=PARTIAL_PREFIX))
    try:
        prepare_corpus(files, tokenizer_config, staging)
        sha256 = json.loads((staging / "meta.json").read_text(encoding="utf-8"))["sha256"]
        entry = corpora / _key("text", sha256, to_json_dict(tokenizer_config))
        existing = _open_entry(entry)
        if existing is not None:
            return existing  # the same text under another name, or a file touched but not changed
        try:
            os.rename(staging, entry)
        except OSError:
            # Another process renamed the same entry into place first.
            existing = _open_entry(entry)
            if existing is None:
                raise
            return existing
        return PreparedCorpus(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class CacheEntry:
    """One prepared corpus in the cache, for `rnngen cache`."""

    name: str
    bytes: int
    lines: int | None
    tokens: int | None
    tokenizer: str | None
    complete: bool


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def cache_entries() -> list[CacheEntry]:
    """The cache's prepared corpora (and leftovers of interrupted preparations), largest first."""
    corpora = cache_root() / CORPORA
    entries = []
    for folder in sorted(corpora.iterdir()) if corpora.is_dir() else []:
        meta: dict[str, object] = {}
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        tokenizer = meta.get("tokenizer") if isinstance(meta, dict) else None
        entries.append(
            CacheEntry(
                name=folder.name,
                bytes=_folder_bytes(folder),
                lines=meta.get("lines") if isinstance(meta.get("lines"), int) else None,  # type: ignore[arg-type]
                tokens=meta.get("tokens") if isinstance(meta.get("tokens"), int) else None,  # type: ignore[arg-type]
                tokenizer=tokenizer.get("kind") if isinstance(tokenizer, dict) else None,
                complete=not folder.name.startswith(PARTIAL_PREFIX) and bool(meta),
            )
        )
    return sorted(entries, key=lambda entry: entry.bytes, reverse=True)


def clear_cache() -> int:
    """Remove every prepared corpus, leftover and source record; the bytes freed."""
    root = cache_root()
    freed = 0
    for part in (CORPORA, SOURCES):
        folder = root / part
        if folder.exists():
            freed += _folder_bytes(folder)
            shutil.rmtree(folder)
    for leftover in root.glob(PARTIAL_PREFIX + "*") if root.is_dir() else []:
        freed += _folder_bytes(leftover)
        leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return freed
