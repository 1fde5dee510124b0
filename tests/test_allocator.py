"""The allocator setting that training relies on: large freed blocks are kept for reuse."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates two 20 MB arrays, frees both, 50 times over, and prints the page faults that cost. (Two
# at once, as a training step holds several: their 40 MB free top of the heap is what glibc trims.)
FAULTS_OF_REPEATED_ALLOCATIONS = """
import resource, sys
import numpy as np
from rnngen.train.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
def step():
    first = np.ones(5_000_000, dtype=np.float32)
    second = np.ones(5_000_000, dtype=np.float32)
    return float(first[0] + second[0])
step()  # the first allocations fault their pages in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_REPEATED_ALLOCATIONS, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is tuned on Linux only")
def test_large_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    pages_per_allocation = 20_000_000 // 4096
    # Untuned, glibc hands the freed memory back to the system and faults it in again next time.
    assert page_faults("default") > 5 * pages_per_allocation
    assert page_faults("tuned") < pages_per_allocation


def test_importing_keras_tunes_the_allocator_first() -> None:
    # In a process of its own: Keras can only be imported once per process.
    script = """
import sys
from rnngen.train.keras_engine import backend as keras_backend
calls = []
keras_backend.keep_freed_memory = lambda: calls.append("keras" in sys.modules) or True
keras_backend.import_keras()
print(calls)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[False]"  # called once, before Keras was imported
