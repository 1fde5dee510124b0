"""Start-up time of the command line: `rnngen generate` and `rnngen --help`, now and at another commit.

Shell completion, help panels and `--version` live in the command line's set-up, which every command
pays; this script shows what they cost. It trains the seed corpus once, then times whole processes
(median of many runs, fastest beside it) of this checkout and, with `--against REV`, of a checkout of
REV made in a temporary folder (run with PYTHONPATH pointing at it, so the same interpreter and
packages serve both).

    python benchmarks/startup.py --against HEAD~5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
SEED_CORPUS = REPOSITORY / "corpora" / "seed.txt"

RUN_CLI = "import sys; from rnngen.cli import main; sys.argv[0] = 'rnngen'; main()"


def timed_runs(arguments: list[str], source: Path, runs: int, cwd: Path) -> list[float]:
    """Seconds per whole process of `rnngen ARGUMENTS`, importing rnngen from ``source``."""
    environment = {**os.environ, "PYTHONPATH": str(source)}
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-c", RUN_CLI, *arguments], cwd=cwd, env=environment, capture_output=True
        )
        seconds.append(time.perf_counter() - started)
        if completed.returncode != 0:
            raise SystemExit(f"rnngen {' '.join(arguments)} failed: {completed.stderr.decode()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also time this git revision")
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model = work / "seed-model"
        subprocess.run(
            [sys.executable, "-c", RUN_CLI, "train", str(SEED_CORPUS), "-o", str(model), "-q"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )
        sources = {"this checkout": REPOSITORY}
        if options.against:
            other = work / "other"
            subprocess.run(
                ["git", "-C", str(REPOSITORY), "worktree", "add", "-q", "--detach", str(other), options.against],
                check=True,
            )
            sources[options.against] = other
        commands = {
            "generate 오늘 -n 3": ["generate", "오늘", "-n", "3", "-m", str(model)],
            "--help": ["--help"],
        }
        try:
            print(f"| command | {' | '.join(f'{name} median s (fastest)' for name in sources)} |")
            print(f"| --- | {' | '.join('---:' for _ in sources)} |")
            for label, arguments in commands.items():
                cells = []
                # Interleave the checkouts' runs so that the machine's load falls on both alike.
                results: dict[str, list[float]] = {name: [] for name in sources}
                for _ in range(options.runs):
                    for name, source in sources.items():
                        results[name] += timed_runs(arguments, source, 1, work)
                for name in sources:
                    cells.append(f"{statistics.median(results[name]):.3f} ({min(results[name]):.3f})")
                print(f"| `rnngen {label}` | {' | '.join(cells)} |")
        finally:
            if options.against:
                subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(other)], check=False)


if __name__ == "__main__":
    main()
