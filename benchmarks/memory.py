"""Peak memory of `rnngen train` on a small and a large share of the Penn Treebank.

The notebook's pipeline needs one-hot targets for the whole corpus (about 35 GB for all of PTB's
training text); rnngen builds arrays one batch at a time, so its peak should not grow with the
corpus. This trains LSTM 200 / embedding 200, batch 64, one epoch, on the first eighth of PTB train
and on all of it, each in a fresh process, and prints the peak resident memory of each.

    python benchmarks/memory.py [--train ../shared/data/ptb/ptb.train.txt]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TRAIN = HERE.parent / ".." / "shared" / "data" / "ptb" / "ptb.train.txt"
LIMIT_BYTES = 1.5e9


def train_measured(corpus: Path, output: Path) -> tuple[float, int]:
    """Wall-clock seconds and peak resident bytes of one `rnngen train` process."""
    command = [
        sys.executable,
        "-m",
        "rnngen",
        "train",
        str(corpus),
        "-o",
        str(output),
        "--embedding-dim",
        "200",
        "--units",
        "200",
        "--batch-size",
        "64",
        "--epochs",
        "1",
        "--val-split",
        "0",
        "--filters",
        "",
        "--quiet",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(process.stderr.read().decode() if process.stderr else "training failed")
    return time.perf_counter() - started, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN)
    arguments = parser.parse_args()
    lines = arguments.train.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for share in (8, 1):
            corpus = Path(folder) / f"part{share}.txt"
            corpus.write_text("".join(lines[: len(lines) // share]), encoding="utf-8")
            words = sum(len(line.split()) for line in lines[: len(lines) // share])
            seconds, peak = train_measured(corpus, Path(folder) / f"model{share}")
            rows.append((f"1/{share}" if share > 1 else "all", words, seconds, peak))
    print(f"{'PTB train':<10} {'words':>9} {'seconds':>8} {'peak RSS MB':>12}  within 1.5 GB")
    for name, words, seconds, peak in rows:
        print(f"{name:<10} {words:>9,} {seconds:>8.0f} {peak / 1e6:>12,.0f}  {'yes' if peak <= LIMIT_BYTES else 'NO'}")


if __name__ == "__main__":
    main()
