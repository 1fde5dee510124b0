"""Large corpora: `rnngen train` on PTB's training text repeated to 50 MB, 500 MB and 2 GB.

For each size, two whole runs of `rnngen train ... --max-steps 20` (the model the task names: LSTM 200,
embedding 200), the first preparing the corpus into an empty cache and the second finding it there:

- start: seconds from the command to its first progress line about training ("training with the ..."),
  which comes after reading, tokenizing and caching the corpus, counting the vocabulary and planning
  the batches; the first run's MB/s is the corpus's size over this time;
- peak RSS: the largest resident memory of the rnngen process (its VmHWM), and the largest sum of
  proportional set sizes over it and its worker processes (preparation tokenizes in a pool; pages
  they share are counted once), sampled every 20 ms, through training, validation, scoring and saving;
- CPU s: the CPU seconds the process and its ended workers used until the start (on a shared
  machine a steadier figure than the time);
- total: seconds until the process ends.

The corpora and the cache live in a temporary folder (or --scratch), removed afterwards.

    python benchmarks/large_corpus.py [--sizes 50,500,2000] [--ptb ../shared/data/ptb/ptb.train.txt]
        [--scratch DIR] [--until-start]

With --until-start each run is stopped when training starts: the start times alone, quickly (the
"total" and memory columns then cover the start only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_LINE = "training with the "
POLL_SECONDS = 0.02


def build_corpus(ptb: Path, megabytes: int, destination: Path) -> Path:
    """PTB's training text repeated until the file holds at least ``megabytes`` MB."""
    text = ptb.read_bytes()
    target = megabytes * 1_000_000
    with destination.open("wb") as file:
        written = 0
        while written < target:
            file.write(text)
            written += len(text)
    return destination


def _status_mb(pid: int, field: str) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float | None:
    """User and system time of a process and of its children that it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command's name: utime, stime, cutime and cstime are the 12th to 15th fields, in ticks.
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _proportional_mb(pid: int) -> float:
    """The process's proportional set size: its resident pages, those shared with the processes it
    forked counted once between them, so that a sum over the tree is what the tree holds."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Run:
    start_seconds: float
    start_cpu_seconds: float | None
    total_seconds: float
    peak_mb: float  # the rnngen process's VmHWM
    tree_peak_mb: float  # the largest sum of proportional set sizes over the process and its children


def train_once(corpus: Path, cache: Path, workdir: Path, options: list[str], until_start: bool = False) -> Run:
    """One `rnngen train`, watched; ``until_start`` kills it once training starts (times to start only)."""
    environment = {**os.environ, "RNNGEN_CACHE": str(cache)}
    log = workdir / "train.log"
    started = time.monotonic()
    start_seconds = None
    start_cpu = None
    peak = tree_peak = 0.0
    with log.open("w") as output:
        process = subprocess.Popen(
            ["rnngen", "train", str(corpus), "-o", str(workdir / "model"), "--force", *options],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=output,
            env=environment,
        )
        while process.poll() is None:
            peak = max(peak, _status_mb(process.pid, "VmHWM"))
            tree = [process.pid, *_children(process.pid)]
            tree_peak = max(tree_peak, sum(_proportional_mb(pid) for pid in tree))
            if start_seconds is None and START_LINE in log.read_text(errors="replace"):
                start_seconds = time.monotonic() - started
                start_cpu = cpu_seconds(process.pid)
                if until_start:
                    process.kill()
            time.sleep(POLL_SECONDS)
    total = time.monotonic() - started
    if start_seconds is None or (process.returncode != 0 and not until_start):
        raise RuntimeError(f"rnngen train failed:\n{log.read_text()}")
    return Run(start_seconds, start_cpu, total, peak, tree_peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500,2000", help="corpus sizes in MB, comma-separated")
    parser.add_argument("--ptb", type=Path, default=Path("../shared/data/ptb/ptb.train.txt"))
    parser.add_argument("--scratch", type=Path, default=None, help="where the corpora and the cache go")
    parser.add_argument("--options", default="--units 200 --embedding-dim 200 --max-steps 20")
    parser.add_argument("--until-start", action="store_true", help="stop each run when training starts")
    arguments = parser.parse_args()
    options = arguments.options.split()
    scratch = Path(tempfile.mkdtemp(prefix="rnngen-large-", dir=arguments.scratch))
    print("| size MB | run | start s | MB/s | CPU s | total s | peak RSS MB | with workers MB |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for megabytes in (int(size) for size in arguments.sizes.split(",")):
            corpus = build_corpus(arguments.ptb, megabytes, scratch / f"ptb-{megabytes}mb.txt")
            size = corpus.stat().st_size / 1e6
            cache = scratch / "cache"
            for name in ("first", "second"):
                run = train_once(corpus, cache, scratch, options, arguments.until_start)
                rate = f"{size / run.start_seconds:.1f}" if name == "first" else ""
                cpu = "-" if run.start_cpu_seconds is None else f"{run.start_cpu_seconds:.1f}"
                print(
                    f"| {size:,.0f} | {name} | {run.start_seconds:.2f} | {rate} | {cpu} | {run.total_seconds:.1f} "
                    f"| {run.peak_mb:,.0f} | {run.tree_peak_mb:,.0f} |",
                    flush=True,
                )
            shutil.rmtree(cache)
            corpus.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
