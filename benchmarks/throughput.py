"""Training throughput: rnngen against the notebook's pipeline, side by side, whole process each.

Both sides train the same model (Embedding 64 -> LSTM 128 -> Dense softmax, Adam) for one epoch on
the same lines of the Penn Treebank, each in its own fresh process, one after the other. The table
shows wall-clock time, peak memory, targets per second, and the validation perplexity each model
reached on the notebook's own targets (every prefix -> next word of the validation lines), so that
speed bought with useless updates would show.

rnngen also predicts each line's first word and its end (the notebook's targets plus two per
line), so it does a little more work per line than the baseline, not less.

    python benchmarks/throughput.py [--lines 2000] [--valid-lines 500] [--batch-size N] [--engine auto|keras|numpy]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from rnngen.network.forward import NumpyLanguageModel
from rnngen.store.folder import read_model_folder
from rnngen.text import tokenize_lines

HERE = Path(__file__).resolve().parent
PTB_FOLDER = HERE.parent / ".." / "shared" / "data" / "ptb"
EMBEDDING_DIM = 64
UNITS = 128


def run_measured(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run a command; return its wall-clock seconds, its peak resident memory (bytes) and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stdout = process.stdout.read() if process.stdout else ""
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr}")
    return seconds, usage.ru_maxrss * 1024, stdout


def notebook_target_perplexity(model_folder: Path, valid_file: Path) -> tuple[float, int]:
    """Perplexity of an rnngen model on the notebook's validation targets (prefix -> next word).

    As the notebook's ``texts_to_sequences``, words outside the vocabulary are dropped from a line.
    """
    stored = read_model_folder(model_folder)
    engine = NumpyLanguageModel(stored.model, stored.weights)
    vocabulary = stored.vocabulary
    text = valid_file.read_text(encoding="utf-8")
    sequences = []
    for tokens in tokenize_lines(text, stored.tokenizer):
        ids = [word_id for word_id in (vocabulary.id_of(token) for token in tokens) if word_id is not None]
        if len(ids) >= 2:
            sequences.append([vocabulary.end_of_line_id, *ids])
    nats, count = 0.0, 0
    for outputs, sequence in zip(engine.sequence_outputs(sequences), sequences, strict=True):
        # After reading <eol> w1 .. wj (output j) the target is w(j+1), for j = 1 .. k - 1.
        probabilities = engine.output_distribution(outputs[1:-1])
        targets = np.asarray(sequence[2:])
        nats -= float(np.log(probabilities[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    return math.exp(nats / count), count


def matmul_gflops() -> float:
    """float32 matrix-multiply speed of this machine through TensorFlow, in GFLOP/s."""
    script = (
        "import time, os\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
        "import tensorflow as tf\n"
        "a = tf.random.normal((2048, 2048)); b = tf.random.normal((2048, 2048))\n"
        "f = tf.function(lambda a, b: tf.matmul(a, b)); f(a, b).numpy()\n"
        "started = time.perf_counter()\n"
        "for _ in range(20): f(a, b).numpy()\n"
        "print(20 * 2 * 2048 ** 3 / (time.perf_counter() - started) / 1e9)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


def training_flops_per_target(vocab_size: int) -> float:
    """Forward plus backward (about 3x forward) multiply-adds x 2 for one target of this model."""
    lstm = 2 * 4 * UNITS * (EMBEDDING_DIM + UNITS)
    dense = 2 * UNITS * vocab_size
    return 3.0 * (lstm + dense)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=PTB_FOLDER / "ptb.train.txt")
    parser.add_argument("--valid", type=Path, default=PTB_FOLDER / "ptb.valid.txt")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--valid-lines", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=None, help="rnngen's batch size (default: its own)")
    parser.add_argument("--learning-rate", type=float, default=None, help="rnngen's learning rate (default: its own)")
    parser.add_argument(
        "--engine", choices=["auto", "keras", "numpy"], default="auto", help="rnngen's training engine (auto: no flag)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        train_file, valid_file = workspace / "train.txt", workspace / "valid.txt"
        with open(arguments.train, encoding="utf-8") as source:
            train_file.write_text("".join(islice(source, arguments.lines)), encoding="utf-8")
        with open(arguments.valid, encoding="utf-8") as source:
            valid_file.write_text("".join(islice(source, arguments.valid_lines)), encoding="utf-8")

        print("running the notebook's pipeline ...", file=sys.stderr)
        notebook_command = [
            sys.executable,
            str(HERE / "notebook_pipeline.py"),
            "--train",
            str(train_file),
            "--valid",
            str(valid_file),
            "--lines",
            str(arguments.lines),
            "--valid-lines",
            str(arguments.valid_lines),
            "--embedding-dim",
            str(EMBEDDING_DIM),
            "--units",
            str(UNITS),
            "--batch-size",
            "32",
            "--json",
        ]
        notebook_wall, notebook_rss, notebook_output = run_measured(notebook_command, workspace)
        notebook = json.loads(notebook_output)

        print("running rnngen train ...", file=sys.stderr)
        rnngen_command = [
            sys.executable,
            "-m",
            "rnngen",
            "train",
            str(train_file),
            "-o",
            str(workspace / "model"),
            "--embedding-dim",
            str(EMBEDDING_DIM),
            "--units",
            str(UNITS),
            "--epochs",
            "1",
            "--val-split",
            "0",
            "--quiet",
        ]
        if arguments.engine != "auto":
            rnngen_command += ["--engine", arguments.engine]
        if arguments.batch_size is not None:
            rnngen_command += ["--batch-size", str(arguments.batch_size)]
        if arguments.learning_rate is not None:
            rnngen_command += ["--learning-rate", str(arguments.learning_rate)]
        rnngen_wall, rnngen_rss, _ = run_measured(rnngen_command, workspace)
        config = json.loads((workspace / "model" / "config.json").read_text(encoding="utf-8"))
        rnngen_perplexity, rnngen_valid_targets = notebook_target_perplexity(workspace / "model", valid_file)
        _, _, evaluate_output = run_measured(
            [sys.executable, "-m", "rnngen", "evaluate", str(valid_file), "-m", str(workspace / "model"), "--json"],
            workspace,
        )
        protocol_perplexity = json.loads(evaluate_output)["perplexity"]

    gflops = matmul_gflops()
    vocab_size = config["model"]["vocab_size"]
    rnngen_targets = config["corpus"]["training_targets"]
    rnngen_fit = config["fit_seconds"]
    # The notebook's whole process up to a trained model (its own clock, so without its evaluation
    # and interpreter start) against rnngen's whole `train` process as seen from outside.
    notebook_whole = notebook["seconds_to_trained"]
    ceiling = gflops * 1e9 / training_flops_per_target(vocab_size)
    figures: dict[str, Any] = {
        "lines": arguments.lines,
        "notebook": {**notebook, "wall_seconds_with_evaluation": notebook_wall, "rss_bytes_measured": notebook_rss},
        "rnngen": {
            "whole_process_seconds": rnngen_wall,
            "fit_seconds": rnngen_fit,
            "targets": rnngen_targets,
            "targets_per_second": rnngen_targets / rnngen_fit,
            "peak_rss_bytes": rnngen_rss,
            "valid_perplexity_notebook_targets": rnngen_perplexity,
            "valid_targets": rnngen_valid_targets,
            "valid_perplexity_ptb_protocol": protocol_perplexity,
            "batch_size": config["training"]["batch_size"],
            "engine": config["execution"]["engine"],
            "engine_requested": arguments.engine,
        },
        "matmul_gflops": gflops,
        "ceiling_targets_per_second": ceiling,
        "whole_process_ratio": notebook_whole / rnngen_wall,
    }
    rows = [
        (
            "whole process, s (to a trained model)",
            f"{notebook_whole:.1f}",
            f"{rnngen_wall:.1f}",
            f"{notebook_whole / rnngen_wall:.1f}x",
        ),
        (
            "fit, s",
            f"{notebook['fit_seconds']:.1f}",
            f"{rnngen_fit:.1f}",
            f"{notebook['fit_seconds'] / rnngen_fit:.1f}x",
        ),
        ("training targets", f"{notebook['targets']:,}", f"{rnngen_targets:,}", ""),
        (
            "targets/s during fit",
            f"{notebook['targets_per_second']:,.0f}",
            f"{rnngen_targets / rnngen_fit:,.0f}",
            f"{(rnngen_targets / rnngen_fit) / notebook['targets_per_second']:.1f}x",
        ),
        (
            "share of the matmul ceiling",
            f"{notebook['targets_per_second'] / ceiling:.1%}",
            f"{rnngen_targets / rnngen_fit / ceiling:.1%}",
            "",
        ),
        ("one-hot targets, MB", f"{notebook['onehot_bytes'] / 1e6:,.0f}", "per batch only", ""),
        (
            "peak RSS, MB",
            f"{notebook_rss / 1e6:,.0f}",
            f"{rnngen_rss / 1e6:,.0f}",
            f"{notebook_rss / rnngen_rss:.1f}x less",
        ),
        ("valid perplexity, notebook targets", f"{notebook['valid_perplexity']:.1f}", f"{rnngen_perplexity:.1f}", ""),
    ]
    width = max(len(row[0]) for row in rows)
    rnngen_name = f"rnngen {config['execution']['engine']}"
    print(f"{'measure':<{width}}  {'notebook':>10}  {rnngen_name:>14}  ratio")
    for name, left, right, ratio in rows:
        print(f"{name:<{width}}  {left:>10}  {right:>14}  {ratio}")
    flops = training_flops_per_target(vocab_size)
    print(
        f"\nmatmul {gflops:.0f} GFLOP/s (float32, TensorFlow); training cost {flops / 1e6:.1f} MFLOP per target;"
        f" ceiling {ceiling:,.0f} targets/s. rnngen's PTB-protocol validation perplexity"
        f" (first words and line ends included): {protocol_perplexity:.1f}."
    )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
