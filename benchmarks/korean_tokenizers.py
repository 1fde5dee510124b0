"""Word, morph and char tokenizers on Korean movie reviews (NSMC): speed, vocabulary, unknown tokens,
bits per character and per-eojeol perplexity at the same training budget.

The last 10% of the file's non-empty lines are held out for evaluation. Each tokenizer trains the same
network (LSTM, same embedding and units, same batch size and learning rate) on the same first
``--train-lines`` of the rest for the same number of epochs, with the same ``--max-vocab`` (which only
binds for word and morph: the file has fewer distinct characters), the default filters and lower-casing,
and no validation split. Then `rnngen evaluate` scores each model on the held-out lines.

Measures that compare across tokenizers (their tokens differ, so perplexity per token does not):

- bits per character, as `rnngen evaluate` reports it (an unknown token costs its spelling too);
- per-eojeol perplexity: exp(total nats / (eojeols + lines)), the same total cost spread over the
  whitespace-separated words plus one end of line per line, the same count for every tokenizer;
- unknown tokens (`oov_rate`) and eojeols holding at least one unknown token.

Tokenizing speed is measured over the whole file in this process, the morph tokenizer with an empty
word cache and its Kiwi already started (its start-up is printed apart); with ``--speed-runs N`` each
kind is timed N times, alternating kinds, and the median is reported with the slowest and fastest
run. ``--speed-only`` stops after the speeds, without training.

    python benchmarks/korean_tokenizers.py [../shared/data/nsmc/nsmc_train_docs.txt]
    python benchmarks/korean_tokenizers.py --speed-only --speed-runs 5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path("../shared/data/nsmc/nsmc_train_docs.txt")
KINDS = ("word", "morph", "char")

sys.path.insert(0, str(REPOSITORY))  # the rnngen beside this script, not another installed one

from rnngen.config import TokenizerConfig  # noqa: E402
from rnngen.store.folder import read_model_folder  # noqa: E402
from rnngen.text import korean, tokenize_lines  # noqa: E402
from rnngen.text.clean import read_text  # noqa: E402
from rnngen.text.tokenizers import WORD_START  # noqa: E402


def tokenizing_speed(text: str, kind: str) -> tuple[int, float]:
    """Tokens of the whole text and seconds to cut them (morph: Kiwi started, word cache empty)."""
    if kind == "morph":
        korean.forget_analyses()
    started = time.perf_counter()
    token_lines = tokenize_lines(text, TokenizerConfig(kind=kind))
    seconds = time.perf_counter() - started
    return sum(len(tokens) for tokens in token_lines), seconds


def rnngen(*arguments: str) -> str:
    """Run the command line of the rnngen beside this script; its stdout."""
    process = subprocess.run(
        [sys.executable, "-m", "rnngen", *arguments], cwd=REPOSITORY, capture_output=True, text=True, encoding="utf-8"
    )
    if process.returncode != 0:
        raise SystemExit(f"rnngen {' '.join(arguments)} failed:\n{process.stderr}")
    return process.stdout


def eojeols_with_unknown_tokens(held_out: str, model: Path) -> tuple[int, int]:
    """Held-out eojeols that hold a token outside the model's vocabulary, and all eojeols."""
    stored = read_model_folder(model)
    unknown = total = 0
    for tokens in tokenize_lines(held_out, stored.tokenizer):
        if stored.tokenizer.kind.value == "word":
            words = [[token] for token in tokens]
        else:
            words = []
            for token in tokens:
                if token.startswith(WORD_START) or not words:
                    words.append([])
                if token != WORD_START:  # a char model's space token only separates words
                    words[-1].append(token)
        total += len(words)
        unknown += sum(any(stored.vocabulary.id_of(token) is None for token in word) for word in words)
    return unknown, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--train-lines", type=int, default=30_000, help="training lines (from the first 90%%)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-vocab", type=int, default=10_000)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--speed-runs", type=int, default=1, help="times each tokenizer's speed is measured")
    parser.add_argument("--speed-only", action="store_true", help="measure tokenizing speed only, no training")
    arguments = parser.parse_args()
    script_started = time.perf_counter()

    text = read_text(arguments.corpus)
    lines = [line for line in text.split("\n") if line.strip()]
    boundary = len(lines) - len(lines) // 10
    training_text = "\n".join(lines[: min(boundary, arguments.train_lines)]) + "\n"
    held_out_text = "\n".join(lines[boundary:]) + "\n"
    eojeols = sum(len(tokens) for tokens in tokenize_lines(held_out_text, TokenizerConfig()))
    held_out_lines = len(lines) - boundary
    print(
        f"{arguments.corpus}: {len(lines):,} lines; training on the first {arguments.train_lines:,}, "
        f"evaluating on the last {held_out_lines:,} ({eojeols:,} eojeols)",
        flush=True,
    )

    started = time.perf_counter()
    korean.analyse_words(["시작"])
    kiwi_start = time.perf_counter() - started
    runs: dict[str, list[tuple[int, float]]] = {kind: [] for kind in arguments.kinds}
    for _ in range(arguments.speed_runs):
        for kind in arguments.kinds:
            runs[kind].append(tokenizing_speed(text, kind))
            tokens, seconds = runs[kind][-1]
            print(f"tokenizing, {kind}: {tokens:,} tokens in {seconds:.2f} s", flush=True)
    speeds = {
        kind: (timings[0][0], statistics.median(seconds for _, seconds in timings)) for kind, timings in runs.items()
    }
    if arguments.speed_runs > 1 or arguments.speed_only:
        print(
            f"\n{'tokenizer':<9} {'tokens/s, median':>16} {'slowest':>10} {'fastest':>10}"
            f"  ({arguments.speed_runs} runs)"
        )
        for kind, timings in runs.items():
            rates = sorted(tokens / seconds for tokens, seconds in timings)
            print(f"{kind:<9} {statistics.median(rates):>16,.0f} {rates[0]:>10,.0f} {rates[-1]:>10,.0f}")
        print(f"Kiwi start-up (once per process, not in the morph speed): {kiwi_start:.1f} s")
    if arguments.speed_only:
        return

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        training_file = Path(folder) / "train.txt"
        training_file.write_text(training_text, encoding="utf-8")
        held_out_file = Path(folder) / "held_out.txt"
        held_out_file.write_text(held_out_text, encoding="utf-8")
        for kind in arguments.kinds:
            model = Path(folder) / kind
            started = time.perf_counter()
            rnngen(
                "train", str(training_file), "-o", str(model), "--tokenizer", kind,
                "--max-vocab", str(arguments.max_vocab), "--epochs", str(arguments.epochs),
                "--embedding-dim", str(arguments.embedding_dim), "--units", str(arguments.units),
                "--val-split", "0", "--patience", "0", "--quiet",
            )  # fmt: skip
            training_seconds = time.perf_counter() - started
            scores = json.loads(rnngen("evaluate", str(held_out_file), "--json", "-m", str(model)))
            vocabulary = len(read_model_folder(model).vocabulary.words)
            unknown_eojeols, eojeol_count = eojeols_with_unknown_tokens(held_out_text, model)
            total_nats = scores["bits_per_char"] * scores["characters"] * math.log(2)
            tokens, seconds = speeds[kind]
            rows.append(
                {
                    "kind": kind,
                    "vocabulary": vocabulary,
                    "oov_rate": scores["oov_rate"],
                    "unknown_eojeols": unknown_eojeols / eojeol_count,
                    "bits_per_char": scores["bits_per_char"],
                    "eojeol_perplexity": math.exp(total_nats / (eojeols + held_out_lines)),
                    "token_perplexity": scores["perplexity"],
                    "tokens_per_second": tokens / seconds,
                    "training_seconds": training_seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)

    print()
    print(
        f"{'tokenizer':<9} {'vocabulary':>10} {'unknown tokens':>14} {'unknown eojeols':>15} {'bits/char':>9} "
        f"{'ppl/eojeol':>10} {'ppl/token':>9} {'tokenizing tokens/s':>19} {'training s':>10}"
    )
    for row in rows:
        print(
            f"{row['kind']:<9} {row['vocabulary']:>10,} {row['oov_rate']:>14.2%} {row['unknown_eojeols']:>15.2%} "
            f"{row['bits_per_char']:>9.3f} {row['eojeol_perplexity']:>10,.0f} {row['token_perplexity']:>9.1f} "
            f"{row['tokens_per_second']:>19,.0f} {row['training_seconds']:>10.0f}"
        )
    print(f"\nKiwi start-up (once per process, not in the morph speed): {kiwi_start:.1f} s")
    print(f"whole script: {time.perf_counter() - script_started:.0f} s")


if __name__ == "__main__":
    main()
