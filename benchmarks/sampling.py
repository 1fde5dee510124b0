"""Sampling speed: `--top-p` against `--top-k` on the same prompts, whole process through `rnngen generate -`.

Trains a model for one epoch on PTB's training text (or takes `--model`), then continues the first three
words of the first `--prompts` lines of PTB's validation text by `--words` tokens with argmax, `--top-k 40`,
`--top-p 0.9` and both, each with the same seed. The commands take turns, `--runs` rounds, so that a
machine getting busier or quieter weighs on all of them alike; the table shows the median seconds of each
and its ratio to `--top-k 40`.

    python benchmarks/sampling.py [--model DIR] [--train PTB_TRAIN] [--valid PTB_VALID]
        [--prompts 2000] [--words 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PTB = HERE.parent / ".." / "shared" / "data" / "ptb"
SAMPLINGS = {
    "argmax": [],
    "--top-k 40": ["--top-k", "40"],
    "--top-p 0.9": ["--top-p", "0.9"],
    "--top-k 40 --top-p 0.9": ["--top-k", "40", "--top-p", "0.9"],
}
BASELINE = "--top-k 40"


def prompts_from(text: Path, count: int) -> str:
    """The first three words of the first ``count`` lines that have three."""
    prompts = []
    with text.open(encoding="utf-8") as lines:
        for line in lines:
            words = line.split()
            if len(words) >= 3:
                prompts.append(" ".join(words[:3]))
            if len(prompts) == count:
                break
    return "\n".join(prompts) + "\n"


def timed_generation(model: Path, prompts: str, words: int, options: list[str]) -> float:
    command = [sys.executable, "-m", "rnngen", "generate", "-", "-n", str(words), "--seed", "1", "-m", str(model)]
    started = time.perf_counter()
    result = subprocess.run([*command, *options], input=prompts, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    assert len(result.stdout.splitlines()) == prompts.count("\n"), result.stderr
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder [default: train one epoch on --train]")
    parser.add_argument("--train", type=Path, default=PTB / "ptb.train.txt")
    parser.add_argument("--valid", type=Path, default=PTB / "ptb.valid.txt", help="the prompts' source")
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    prompts = prompts_from(arguments.valid, arguments.prompts)
    with tempfile.TemporaryDirectory() as folder:
        model = arguments.model
        if model is None:
            model = Path(folder) / "ptb"
            train = [sys.executable, "-m", "rnngen", "train", str(arguments.train), "-o", str(model), "--epochs", "1"]
            subprocess.run([*train, "--quiet"], check=True)
        seconds: dict[str, list[float]] = {name: [] for name in SAMPLINGS}
        for _ in range(arguments.runs):
            for name, options in SAMPLINGS.items():
                seconds[name].append(timed_generation(model, prompts, arguments.words, options))
    baseline = statistics.median(seconds[BASELINE])
    print(f"{prompts.count(chr(10)):,} prompts x {arguments.words} tokens, whole process, {arguments.runs} runs each")
    print(f"{'sampling':<24} {'median s':>9} {'fastest':>8} {'slowest':>8} {'/ top-k':>8}")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"{name:<24} {median:>9.2f} {min(times):>8.2f} {max(times):>8.2f} {median / baseline:>8.2f}")


if __name__ == "__main__":
    main()
