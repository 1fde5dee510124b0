"""Keeps the C allocator from handing large freed blocks back to the system between training steps.

Each training step allocates and frees tensors of batch x vocabulary floats (tens of megabytes). glibc
serves blocks that large with mmap and unmaps them on free, so every step faults the same memory back
in page by page: on PTB that is millions of page faults an epoch and about a tenth of the process's
CPU time. Raising the mmap and trim thresholds keeps those blocks in the heap for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

# glibc's ceiling for the mmap threshold on 64-bit systems (4 MiB x sizeof(long)).
_LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 1024 * 1024 * 1024
_TOP_PAD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for training; True when it took effect (False on other C libraries)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, _LARGEST_MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        (_M_TOP_PAD, _TOP_PAD),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
