"""Large corpora: `rnngen train` on PTB's training text repeated to 50 MB, 500 MB and 2 GB.

For each size: the whole process's time from the command to the first batch (reading, tokenizing and
writing the ids to the cache, counting the vocabulary, planning the batches) and its rate in MB/s; the
peak resident memory (VmHWM) up to there; the CPU seconds the process and its ended workers used
up to there (on a shared machine a steadier figure than the time); and the same for a second run on
the same corpus, which finds it in the cache. Training is stopped at its first batch: what grows with
the corpus is the data, not the model. The corpora and the cache live in a temporary folder, removed
afterwards.

    python benchmarks/large_corpus.py [--sizes 50,500,2000] [--ptb ../shared/data/ptb/ptb.train.txt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

FIRST_BATCH_LINE = "training with the "
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


def peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """User and system time of a process and of its children that it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command's name: utime, stime, cutime and cstime are the 12th to 15th fields, in ticks.
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def until_first_batch(
    corpus: Path, cache: Path, workdir: Path, options: list[str]
) -> tuple[float, float, float | None]:
    """Seconds from the command to its first batch, the peak resident MB and the CPU seconds until then."""
    environment = {**os.environ, "RNNGEN_CACHE": str(cache)}
    log = workdir / "train.log"
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen(
            ["rnngen", "train", str(corpus), "-o", str(workdir / "model"), "--force", *options],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=output,
            env=environment,
        )
        peak = 0.0
        try:
            while True:
                peak = max(peak, peak_rss_mb(process.pid) or 0.0)
                if FIRST_BATCH_LINE in log.read_text(errors="replace"):
                    seconds = time.monotonic() - started
                    peak = max(peak, peak_rss_mb(process.pid) or 0.0)
                    cpu = cpu_seconds(process.pid)
                    break
                if process.poll() is not None:
                    raise RuntimeError(f"rnngen train ended early:\n{log.read_text()}")
                time.sleep(POLL_SECONDS)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
    return seconds, peak, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500,2000", help="corpus sizes in MB, comma-separated")
    parser.add_argument("--ptb", type=Path, default=Path("../shared/data/ptb/ptb.train.txt"))
    parser.add_argument("--options", default="--units 200 --embedding-dim 200 --engine numpy")
    arguments = parser.parse_args()
    options = arguments.options.split()
    scratch = Path(tempfile.mkdtemp(prefix="rnngen-large-"))
    print("size MB | first run s | MB/s | CPU s | peak RSS MB | second run s | second peak RSS MB")
    try:
        for megabytes in (int(size) for size in arguments.sizes.split(",")):
            corpus = build_corpus(arguments.ptb, megabytes, scratch / f"ptb-{megabytes}mb.txt")
            size = corpus.stat().st_size / 1e6
            cache = scratch / "cache"
            first, first_peak, first_cpu = until_first_batch(corpus, cache, scratch, options)
            second, second_peak, _ = until_first_batch(corpus, cache, scratch, options)
            cpu = "-" if first_cpu is None else f"{first_cpu:.1f}"
            first_figures = f"{size:,.0f} | {first:.1f} | {size / first:.1f} | {cpu} | {first_peak:,.0f}"
            print(f"{first_figures} | {second:.2f} | {second_peak:,.0f}")
            shutil.rmtree(cache)
            corpus.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
