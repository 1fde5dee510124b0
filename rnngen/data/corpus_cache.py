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

A partial folder or file is named ``.partial-<pid>@<host>.<random>`` after the process writing it.
What a process killed by kill -9 or a power loss leaves behind is removed by the next run: a leftover
of a process of this host that is gone, or one untouched for a day (another host's, or one without
an owner in its name). ``--clear`` removes every partial but those a live process may be writing
(of a live process of this host, or another host's written within the day).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnngen.config import TokenizerConfig, to_json_dict
from rnngen.data.prepared import FORMAT_VERSION, PreparedCorpus, SourceFiles, prepare_corpus
from rnngen.errors import CorpusError
from rnngen.processes import process_is_gone
from rnngen.text.clean import STDIN_NAME

CORPORA = "corpora"
SOURCES = "sources"
PARTIAL_PREFIX = ".partial-"
# A partial's owner, from its name: ".partial-<pid>@<host>.<random>".
_PARTIAL_OWNER = re.compile(r"^\.partial-(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.")
# A partial untouched this long is left over, whoever wrote it: a preparation writes every few seconds.
STALE_SECONDS = 24 * 60 * 60


def cache_root() -> Path:
    """The cache folder: $RNNGEN_CACHE, else $XDG_CACHE_HOME/rnngen, else ~/.cache/rnngen."""
    if os.environ.get("RNNGEN_CACHE"):
        return Path(os.environ["RNNGEN_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rnngen"
    return Path.home() / ".cache" / "rnngen"


def _host() -> str:
    """This machine's name, kept to the characters a partial's name may hold."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())


def _partial_prefix() -> str:
    """The start of the name of a partial folder or file this process writes."""
    return f"{PARTIAL_PREFIX}{os.getpid()}@{_host()}."


def _last_written(path: Path) -> float:
    """The latest modification time of a file, or of a folder and anything in it."""
    times = [path.lstat().st_mtime]
    if path.is_dir():
        times.extend(inner.lstat().st_mtime for inner in path.rglob("*"))
    return max(times)


def _is_left_over(path: Path) -> bool:
    """Whether a partial was abandoned by its writer: see the module's docstring."""
    owner = _PARTIAL_OWNER.match(path.name)
    try:
        if owner is not None and owner["host"] == _host():
            return process_is_gone(int(owner["pid"]))
        return time.time() - _last_written(path) > STALE_SECONDS
    except OSError:
        return False  # removed meanwhile, or unreadable: not ours to judge


def _may_be_written(path: Path) -> bool:
    """Whether a partial names its writer and that writer may still be at work."""
    return _PARTIAL_OWNER.match(path.name) is not None and not _is_left_over(path)


def _partials(root: Path) -> list[Path]:
    """The partial folders and files in the cache: entries, source records and spooled input."""
    folders = (root, root / CORPORA, root / SOURCES)
    return [path for folder in folders if folder.is_dir() for path in folder.glob(PARTIAL_PREFIX + "*")]


def _remove(path: Path) -> int:
    """Remove a file or folder; the bytes freed."""
    try:
        size = _folder_bytes(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    return size


def remove_leftovers() -> int:
    """Remove what preparations killed midway left in the cache (never a live one's); the bytes freed."""
    return sum(_remove(path) for path in _partials(cache_root()) if _is_left_over(path))


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([FORMAT_VERSION, *parts], sort_keys=True).encode()).hexdigest()[:32]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=_partial_prefix())
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
    descriptor, spooled = tempfile.mkstemp(dir=root, prefix=_partial_prefix() + "stdin-")
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
    remove_leftovers()
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
    staging = Path(tempfile.mkdtemp(dir=corpora, prefix=_partial_prefix()))
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
    """Remove every prepared corpus, leftover and source record, but what a live process is writing
    (removing that would break its run); the bytes freed."""
    root = cache_root()
    in_progress = {path for path in _partials(root) if _may_be_written(path)}
    freed = 0
    for part in (CORPORA, SOURCES):
        folder = root / part
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path not in in_progress:
                freed += _remove(path)
    for path in _partials(root):
        if path not in in_progress:
            freed += _remove(path)
    return freed
