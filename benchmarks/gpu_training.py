"""Training speed on a GPU against the CPU: one epoch of the Penn Treebank, 2 x LSTM 650, batch 128.

Each row is `rnngen train` in a fresh process (`python -m rnngen`, with this interpreter and its
Keras backend), so each backend starts on the device it is given. The table shows the time `fit`
took (compilation included) and training targets per second; the CPU half reads only the first
--cpu-lines lines by default, since a full epoch of this model takes a long time on a CPU, and a rate
is a rate. A GPU row on a machine without a visible GPU says so instead of failing.

It runs on whatever backend KERAS_BACKEND names and never imports TensorFlow itself, so on a GPU
machine with JAX but no TensorFlow:

    KERAS_BACKEND=jax python benchmarks/gpu_training.py [PTB_TRAIN] [--lines N] [--cpu-lines N]

The model is Zaremba et al.'s "medium" PTB model in size (2 x 650, dropout 0.5) with rnngen's
training defaults otherwise (Adam, whole lines, gradient norm clipped to 5); no validation, so that
`fit` times training alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PTB_TRAIN = HERE.parent / ".." / "shared" / "data" / "ptb" / "ptb.train.txt"
MODEL_OPTIONS = ["--layers", "2", "--units", "650", "--embedding-dim", "650", "--dropout", "0.5"]
# The Keras engine on both devices (on a CPU `--engine auto` would take the numpy engine).
TRAINING_OPTIONS = ["--batch-size", "128", "--epochs", "1", "--val-split", "0", "--filters", "", "--quiet"]
TRAINING_OPTIONS += ["--engine", "keras"]
# (device, precision) rows of the table, in order.
RUNS = [("gpu", "float32"), ("gpu", "mixed"), ("cpu", "float32")]
EXIT_USAGE = 2


def first_lines(source: Path, lines: int | None, folder: Path) -> Path:
    """The corpus, or a copy of its first ``lines`` lines."""
    if lines is None:
        return source
    excerpt = folder / f"{source.stem}.first{lines}.txt"
    with open(source, encoding="utf-8") as reader, open(excerpt, "w", encoding="utf-8") as writer:
        writer.writelines(islice(reader, lines))
    return excerpt


def train(corpus: Path, device: str, precision: str, folder: Path, extra: list[str]) -> dict[str, Any]:
    """One `rnngen train` run; its figures, or why there are none."""
    output = folder / f"{device}-{precision}"
    command = [sys.executable, "-m", "rnngen", "train", str(corpus), "-o", str(output)]
    command += [*MODEL_OPTIONS, *TRAINING_OPTIONS, "--device", device, "--precision", precision, *extra]
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, encoding="utf-8")
    seconds = time.perf_counter() - started
    if process.returncode == EXIT_USAGE and "--device gpu" in process.stderr:
        return {"device": device, "precision": precision, "skipped": "no GPU visible"}
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr}")
    config = json.loads((output / "config.json").read_text(encoding="utf-8"))
    targets = config["corpus"]["training_targets"]
    return {
        "device": device,
        "precision": precision,
        "dtype_policy": config["execution"]["dtype_policy"],
        "lines": config["corpus"]["usable_lines"],
        "targets": targets,
        "fit_seconds": config["fit_seconds"],
        "process_seconds": round(seconds, 1),
        "targets_per_second": targets / config["fit_seconds"],
        "train_perplexity": config["metrics"]["perplexity"],
        "backend": config["versions"]["backend"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    header = f"{'device':<6} {'policy':<15} {'lines':>7} {'targets':>9} {'fit s':>8} {'targets/s':>10} {'train ppl':>9}"
    lines = [header, "-" * len(header)]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['device']:<6} {row['precision']:<15} {row['skipped']}")
            continue
        lines.append(
            f"{row['device']:<6} {row['dtype_policy']:<15} {row['lines']:>7,} {row['targets']:>9,} "
            f"{row['fit_seconds']:>8.1f} {row['targets_per_second']:>10,.0f} {row['train_perplexity']:>9.1f}"
        )
    measured = {(row["device"], row["precision"]): row for row in rows if "skipped" not in row}
    cpu = measured.get(("cpu", "float32"))
    for precision in ("float32", "mixed"):
        gpu = measured.get(("gpu", precision))
        if gpu and cpu:
            ratio = gpu["targets_per_second"] / cpu["targets_per_second"]
            lines.append(f"gpu {precision} / cpu float32: {ratio:.1f}x targets/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", type=Path, nargs="?", default=PTB_TRAIN, help="training text (PTB train)")
    parser.add_argument("--lines", type=int, default=None, help="GPU rows: only the first N lines [all]")
    parser.add_argument("--cpu-lines", type=int, default=5000, help="CPU row: only the first N lines [5000]")
    parser.add_argument("--runs", default=",".join(f"{d}:{p}" for d, p in RUNS), help="device:precision,...")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `rnngen train` options")
    arguments = parser.parse_args(argv)
    if not arguments.train.is_file():
        raise SystemExit(f"{arguments.train}: no such file (give the PTB training text as the first argument)")
    extra = [option for option in arguments.extra if option != "--"]
    runs = [tuple(run.split(":")) for run in arguments.runs.split(",")]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow (unless ~/.keras/keras.json says otherwise)")
    print(f"backend: {backend}; model: 2 x LSTM 650, embedding 650, dropout 0.5, batch 128, one epoch", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnngen-gpu-benchmark-") as scratch:
        folder = Path(scratch)
        for device, precision in runs:
            lines = arguments.cpu_lines if device == "cpu" else arguments.lines
            corpus = first_lines(arguments.train, lines, folder)
            rows.append(train(corpus, device, precision, folder, extra))
            print(f"  {device} {precision}: done", file=sys.stderr, flush=True)
    print(table(rows))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
