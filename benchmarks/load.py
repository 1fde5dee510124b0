"""Steady under load: 100,000 prompts through `rnngen generate -` with flat memory and ordered output.

Feeds the prompts from one thread while another reads the answers, samples the generator's resident
memory (/proc/PID/status) as it goes, and checks that answer i continues prompt i. The model is the
PTB-size one of benchmarks/generation.py (random weights; shapes, not training, set time and memory).

    python benchmarks/load.py [--prompts 100000] [--words 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from generation import ptb_size_model


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prompt(index: int) -> str:
    # Two in-vocabulary words, a different pair for every index below 9,999^2.
    return f"w{index % 9_999} w{index // 9_999}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=5)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder_name:
        model = ptb_size_model(Path(folder_name))
        command = [sys.executable, "-m", "rnngen", "generate", "-", "-n", str(arguments.words), "-m", str(model)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert process.stdin is not None and process.stdout is not None
        stdin = process.stdin

        def feed() -> None:
            for index in range(arguments.prompts):
                stdin.write(prompt(index) + "\n")
            stdin.close()

        started = time.perf_counter()
        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        samples: list[tuple[int, float]] = []
        in_order = True
        answers = 0
        for line in process.stdout:
            if not line.startswith(prompt(answers) + " ") or len(line.split()) != 2 + arguments.words:
                in_order = False
            answers += 1
            if answers % 5_000 == 1:
                samples.append((answers, resident_mb(process.pid)))
        seconds = time.perf_counter() - started
        process.wait()

    first_answers, first_mb = samples[1] if len(samples) > 1 else samples[0]
    last_answers, last_mb = samples[-1]
    peak_mb = max(mb for _, mb in samples)
    print(f"{'measure':<44} value")
    print(f"{'prompts answered (of ' + format(arguments.prompts, ',') + ')':<44} {answers:,}")
    print(f"{'answers in order, one line each':<44} {'yes' if in_order and answers == arguments.prompts else 'NO'}")
    print(f"{'resident memory after ' + format(first_answers, ',') + ' answers (MB)':<44} {first_mb:,.0f}")
    print(f"{'resident memory after ' + format(last_answers, ',') + ' answers (MB)':<44} {last_mb:,.0f}")
    print(f"{'peak of ' + str(len(samples)) + ' samples (MB)':<44} {peak_mb:,.0f}")
    print(f"{'growth from first to last sample (MB)':<44} {last_mb - first_mb:+,.0f}")
    print(f"{'whole run (s)':<44} {seconds:,.1f}")
    print(f"{'words per second':<44} {answers * arguments.words / seconds:,.0f}")
    print(f"exit code {process.returncode}")


if __name__ == "__main__":
    main()
