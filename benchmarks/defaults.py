"""How rnngen's defaults do on corpora of several kinds and sizes: `rnngen train` with no options but the
ones given here, each run in a fresh process, scored on held-out lines.

Corpora (slices of the benchmark data, never copied into the project): the first lines of PTB train
(English, a closed 10,000-word vocabulary), the first reviews of NSMC (Korean, words and morpheme
pieces), and the bundled corpora. Each run holds out the default share of lines (0.1 from 200 lines)
and reports the validation perplexity and bits per character of the kept epoch, the epochs run and the
whole process's time. Extra options (after --) go to every `rnngen train`, so settings can be compared
side by side:

    python benchmarks/defaults.py [--max-epochs 10] [--only ptb-2k,korean] [--] [rnngen train options]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / ".." / "shared" / "data"
CORPORA = HERE.parent / "corpora"

# name: (source file, lines, extra options)
CASES: dict[str, tuple[Path, int | None, list[str]]] = {
    "seed": (CORPORA / "seed.txt", None, []),
    "korean-morph": (CORPORA / "korean.txt", None, ["--tokenizer", "morph"]),
    "ptb-2k": (DATA / "ptb" / "ptb.train.txt", 2_000, []),
    "ptb-10k": (DATA / "ptb" / "ptb.train.txt", 10_000, []),
    "nsmc-5k-word": (DATA / "nsmc" / "nsmc_train_docs.txt", 5_000, []),
    "nsmc-5k-morph": (DATA / "nsmc" / "nsmc_train_docs.txt", 5_000, ["--tokenizer", "morph"]),
}


def run_case(name: str, workspace: Path, max_epochs: int, extra: list[str]) -> dict[str, object]:
    source, lines, options = CASES[name]
    corpus = workspace / f"{name}.txt"
    with open(source, encoding="utf-8") as text:
        corpus.write_text("".join(islice(text, lines)), encoding="utf-8")
    folder = workspace / name
    command = [sys.executable, "-m", "rnngen", "train", str(corpus), "-o", str(folder), "--quiet"]
    command += ["--epochs", str(max_epochs), *options, *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    metrics = config["metrics"]
    return {
        "corpus": name,
        "lines": config["corpus"]["usable_lines"],
        "vocabulary": config["model"]["vocab_size"],
        "epochs": config["epochs_run"],
        "kept": metrics["epoch"],
        "val_ppl": metrics.get("val_perplexity"),
        "train_ppl": metrics["perplexity"],
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, extra = arguments[:split], arguments[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated corpus names")
    options = parser.parse_args(arguments)
    print(f"rnngen train options: {' '.join(extra) or '(defaults)'}; at most {options.max_epochs} epochs")
    header = ("corpus", "lines", "vocab", "epochs", "kept", "val ppl", "train ppl", "s")
    print(
        f"{header[0]:<14} {header[1]:>7} {header[2]:>7} {header[3]:>6} {header[4]:>4} "
        + " ".join(f"{name:>9}" for name in header[5:7])
        + f" {header[7]:>6}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for name in options.only.split(","):
            row = run_case(name, Path(folder), options.max_epochs, extra)
            val = "-" if row["val_ppl"] is None else f"{row['val_ppl']:.1f}"
            print(
                f"{row['corpus']:<14} {row['lines']:>7,} {row['vocabulary']:>7,} {row['epochs']:>6} {row['kept']:>4} "
                f"{val:>9} {row['train_ppl']:>9.1f} {row['seconds']:>6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
