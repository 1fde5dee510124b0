"""The counts of a prepared corpus's training lines for one choice of held-out lines, kept in the
prepared corpus's folder, so that a later run holding out the same lines (same corpus, --val-split and
--seed) builds its vocabulary without another pass over every id.

A file per choice, ``split-<key>.npz``, its key the sha256 of the held-out line numbers. It is written
under a temporary name and renamed into place, and carries a CRC-32 of each of its arrays: a file that
cannot be read, does not fit the corpus or fails its checksums is removed and counted again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnngen.data.prepared import PreparedCorpus

ARRAYS = ("counts", "first", "held_out_ids", "held_out_lengths")


@dataclass(frozen=True)
class SplitCounts:
    """What one pass over a prepared corpus's ids tells about its training and held-out lines."""

    counts: np.ndarray  # (provisional ids,) int64: occurrences in the training lines
    first: np.ndarray  # (provisional ids,) int64: first position among the training tokens (int64 max: none)
    held_out_ids: np.ndarray  # the held-out lines' provisional ids, in order
    held_out_lengths: np.ndarray  # (held-out lines,) uint32

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}


def _path(prepared: PreparedCorpus, held_out: np.ndarray) -> Path:
    key = hashlib.sha256(np.ascontiguousarray(held_out, dtype=np.int64).tobytes()).hexdigest()[:32]
    return prepared.folder / f"split-{key}.npz"


def _checksums(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.array([zlib.crc32(np.ascontiguousarray(arrays[name]).tobytes()) for name in ARRAYS], dtype=np.int64)


def load_split(prepared: PreparedCorpus, held_out: np.ndarray) -> SplitCounts | None:
    """The counts kept for these held-out lines, or None when there are none (or none to trust)."""
    path = _path(prepared, held_out)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in ARRAYS}
            checksums = stored["checksums"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)
        return None
    words = len(prepared.words)
    fits = (
        len(arrays["counts"]) == len(arrays["first"]) == words
        and len(arrays["held_out_lengths"]) == len(held_out)
        and int(arrays["held_out_lengths"].sum()) == len(arrays["held_out_ids"])
    )
    if not fits or not np.array_equal(checksums, _checksums(arrays)):
        path.unlink(missing_ok=True)
        return None
    return SplitCounts(**arrays)


def save_split(prepared: PreparedCorpus, held_out: np.ndarray, split: SplitCounts) -> None:
    """Keep the counts for a later run; a cache that cannot be written is no reason to fail a run."""
    path = _path(prepared, held_out)
    arrays = split.arrays()
    staging: Path | None = None
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=".partial-split-", suffix=".npz")
        staging = Path(name)
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, checksums=_checksums(arrays), **arrays)  # type: ignore[arg-type]
        os.replace(staging, path)
    except OSError:
        if staging is not None:
            staging.unlink(missing_ok=True)
