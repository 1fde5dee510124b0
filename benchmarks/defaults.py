"""How rnngen's defaults do on corpora of several kinds and sizes, beside two count-based baselines.

Each case trains `rnngen train CUT -o FOLDER --quiet` on a cut of the benchmark data, in a fresh process
(so "train s" is the whole process: start-up, reading, training, saving), then scores the model with
`rnngen evaluate HELDOUT -m FOLDER --json` on lines that no cut contains. Beside it, on the same tokens
(rnngen's own tokenizer, with the settings the model was trained with) and by the same definition of
bits per character (DESIGN.md, "Measures that compare models"), the script scores an add-one unigram and
an interpolated Kneser-Ney trigram built from the whole cut (benchmarks/ngram_baselines.py). rnngen
holds out its default share of the cut for validation and early stopping, so it trains on a little less.

Cases (the data is read where it lies, never copied into the project):
- nsmc-1k, nsmc-10k, nsmc-100k: the first lines of NSMC's training reviews (Korean: the default tokenizer
  gives morpheme pieces, as for any Korean text of 5,000 words or more); held out: the file's last 2,000
  lines.
- ptb-1k, ptb-10k, ptb-all: the first lines of PTB train (English, a closed 10,000-word vocabulary);
  held out: PTB valid.
- seed, korean-morph (only when named): the bundled corpora; they have no held-out text, so they are
  scored on their own training text, and the "held out" column says so.

Columns: training lines; the model's vocabulary size (with --baselines-only: the distinct training
words); epochs run and the epoch kept; seconds of the training process; rnngen's held-out bits per
character and perplexity; the baselines' bits per character (and the trigram's perplexity over known
tokens, comparable to rnngen's for a model without <unk>); "vs KN3" = rnngen bpc / KN3 bpc - 1; the
held-out words missing from the model's vocabulary ("oov": rnngen's, from its training share and its
--min-count) and from the whole cut ("base oov": the baselines'); the baselines' seconds.

    python benchmarks/defaults.py [--only ptb-1k,nsmc-1k] [--max-epochs N] [--json rows.json] [--keep FOLDER]
        [-- rnngen train options]
    python benchmarks/defaults.py --baselines-only [-- --tokenizer word]   # seconds, no training

Options after `--` go to every `rnngen train` (e.g. `-- --tokenizer morph --units 256`); the baselines
read the tokenizer settings back from the trained model (with --baselines-only, from those options, or the
corpus as rnngen train would choose when they name none).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ngram_baselines import baselines

from rnngen.config import TokenizerConfig
from rnngen.data.tokenizer_choice import choose_tokenizer_kind, source_sample

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / ".." / "shared" / "data"
CORPORA = HERE.parent / "corpora"
NSMC = DATA / "nsmc" / "nsmc_train_docs.txt"
PTB_TRAIN = DATA / "ptb" / "ptb.train.txt"
PTB_VALID = DATA / "ptb" / "ptb.valid.txt"
NSMC_HELDOUT_LINES = 2_000


@dataclass(frozen=True)
class Case:
    """A training cut and the text it is scored on."""

    source: Path
    training_lines: int | None  # the first lines of source; None: all of it
    # A file; the last N lines of source (never in any cut); or None: the training text itself.
    heldout: Path | int | None
    options: tuple[str, ...] = ()  # rnngen train options of this case, before the ones given after --


CASES: dict[str, Case] = {
    "nsmc-1k": Case(NSMC, 1_000, NSMC_HELDOUT_LINES),
    "nsmc-10k": Case(NSMC, 10_000, NSMC_HELDOUT_LINES),
    "nsmc-100k": Case(NSMC, 100_000, NSMC_HELDOUT_LINES),
    "ptb-1k": Case(PTB_TRAIN, 1_000, PTB_VALID),
    "ptb-10k": Case(PTB_TRAIN, 10_000, PTB_VALID),
    "ptb-all": Case(PTB_TRAIN, None, PTB_VALID),
    "seed": Case(CORPORA / "seed.txt", None, None),
    "korean-morph": Case(CORPORA / "korean.txt", None, None, ("--tokenizer", "morph")),
}
TABLE_CASES = ["nsmc-1k", "nsmc-10k", "nsmc-100k", "ptb-1k", "ptb-10k", "ptb-all"]


@dataclass(frozen=True)
class Texts:
    """The files one case trains and is scored on, written to the workspace."""

    training: Path
    training_lines: int
    heldout: Path
    heldout_label: str


def read_lines(path: Path) -> list[str]:
    # Lines end at '\n' only, as rnngen counts them; nothing else is translated.
    with open(path, encoding="utf-8", newline="\n") as text:
        return text.readlines()


def write_texts(name: str, case: Case, workspace: Path) -> Texts:
    lines = read_lines(case.source)
    training = lines[: case.training_lines]
    training_path = workspace / f"{name}.train.txt"
    training_path.write_text("".join(training), encoding="utf-8", newline="\n")
    if case.heldout is None:
        return Texts(training_path, len(training), training_path, "training text (no held-out)")
    if isinstance(case.heldout, Path):
        return Texts(training_path, len(training), case.heldout, case.heldout.name)
    # The last lines of the source: make sure no training cut reaches them.
    first_heldout = len(lines) - case.heldout
    if len(training) > first_heldout:
        raise SystemExit(f"{name}: the training cut overlaps the last {case.heldout:,} lines it is scored on")
    heldout_path = workspace / f"{name}.heldout.txt"
    heldout_path.write_text("".join(lines[first_heldout:]), encoding="utf-8", newline="\n")
    return Texts(training_path, len(training), heldout_path, f"last {case.heldout:,} lines")


def parsed_tokenizer(options: list[str], corpus: Path) -> TokenizerConfig:
    """The tokenizer settings rnngen train would take from these options (the rest are ignored), the
    tokenizer the corpus asks for when they name none."""
    parser = argparse.ArgumentParser(add_help=False)
    defaults = TokenizerConfig()
    parser.add_argument("--tokenizer")
    parser.add_argument("--filters", default=defaults.filters)
    parser.add_argument("--lower", action=argparse.BooleanOptionalAction, default=defaults.lower)
    known, _others = parser.parse_known_args(options)
    kind = known.tokenizer or choose_tokenizer_kind(source_sample(corpus))
    return TokenizerConfig(kind=kind, filters=known.filters, lower=known.lower)


def train(texts: Texts, folder: Path, options: list[str]) -> float:
    """Train in a fresh process; its seconds."""
    command = [sys.executable, "-m", "rnngen", "train", str(texts.training), "-o", str(folder), "--quiet", *options]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def evaluate(texts: Texts, folder: Path) -> dict[str, float | int]:
    command = [sys.executable, "-m", "rnngen", "evaluate", str(texts.heldout), "-m", str(folder), "--json"]
    # Its warning that unknown words flatter perplexity is true of every row: the table says bpc, so
    # stderr is shown only when the command fails.
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"rnngen evaluate failed on {folder.name} (exit {result.returncode})")
    return json.loads(result.stdout)


def trained_facts(folder: Path) -> dict[str, object]:
    """What config.json says about the run: epochs, the kept epoch, vocabulary size, tokenizer."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return {
        "epochs_run": config["epochs_run"],
        "kept_epoch": config["metrics"]["epoch"],
        "vocab_size": config["model"]["vocab_size"],
        "tokenizer": config["tokenizer"],
    }


def run_case(name: str, workspace: Path, extra: list[str], baselines_only: bool) -> dict[str, object]:
    case = CASES[name]
    texts = write_texts(name, case, workspace)
    options = [*case.options, *extra]
    row: dict[str, object] = {
        "corpus": name,
        "train_lines": texts.training_lines,
        "heldout": texts.heldout_label,
        "options": options,
    }
    if baselines_only:
        tokenizer = parsed_tokenizer(options, texts.training)
    else:
        folder = workspace / name
        row["train_seconds"] = train(texts, folder, options)
        row.update(trained_facts(folder))
        row["rnngen"] = evaluate(texts, folder)
        # The tokens the model was trained on, whatever the options said.
        tokenizer = TokenizerConfig(**row["tokenizer"])  # type: ignore[arg-type]
    row["baselines"] = baselines(texts.training, texts.heldout, tokenizer)
    warn_if_tokens_differ(row)
    return row


def warn_if_tokens_differ(row: dict[str, object]) -> None:
    """The comparison holds only on the same tokens: say so if rnngen counted other ones.

    Unknown words may differ, and are no warning: rnngen's vocabulary comes from its training share of
    the cut only (and leaves out rare words when its --min-count is above 1).
    """
    scored = row.get("rnngen")
    if not isinstance(scored, dict):
        return
    kn3 = row["baselines"]["kn3"]  # type: ignore[index]
    for key in ("tokens", "characters"):
        if scored[key] != kn3[key]:
            print(f"warning: {row['corpus']}: rnngen counts {key} {scored[key]:,}, baselines {kn3[key]:,}")


COLUMNS = (  # heading, width
    ("corpus", 12),
    ("train lines", 11),
    ("vocab", 7),
    ("epochs", 6),
    ("kept", 4),
    ("train s", 8),
    ("rnngen bpc", 10),
    ("ppl", 7),
    ("unigram bpc", 11),
    ("KN3 bpc", 7),
    ("KN3 ppl", 7),
    ("vs KN3", 7),
    ("oov", 6),
    ("base oov", 8),
    ("base s", 6),
)


def format_line(cells: list[str]) -> str:
    first = f"{cells[0]:<{COLUMNS[0][1]}}"
    rest = (f"{cell:>{width}}" for cell, (_heading, width) in zip(cells[1:], COLUMNS[1:], strict=True))
    return "  ".join([first, *rest])


def table_cells(row: dict[str, object]) -> list[str]:
    found = row["baselines"]
    assert isinstance(found, dict)
    unigram, kn3 = found["unigram"], found["kn3"]
    scored = row.get("rnngen")
    if isinstance(scored, dict):
        trained = [
            f"{row['vocab_size']:,}",
            str(row["epochs_run"]),
            str(row["kept_epoch"]),
            f"{row['train_seconds']:.1f}",
            f"{scored['bits_per_char']:.4f}",
            f"{scored['perplexity']:.1f}",
        ]
        versus = f"{100 * (scored['bits_per_char'] / kn3['bits_per_char'] - 1):+.1f}%"
        oov = f"{100 * scored['oov_rate']:.2f}%"
    else:
        trained = [f"{found['training_vocabulary']:,}", "-", "-", "-", "-", "-"]
        versus = oov = "-"
    return [
        str(row["corpus"]),
        f"{row['train_lines']:,}",
        *trained,
        f"{unigram['bits_per_char']:.4f}",
        f"{kn3['bits_per_char']:.4f}",
        f"{kn3['perplexity']:.1f}",
        versus,
        oov,
        f"{100 * kn3['oov_rate']:.2f}%",
        f"{found['seconds']:.1f}",
    ]


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's options, and the rnngen train options given after `--`."""
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TABLE_CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--max-epochs", type=int, help="pass --epochs N to rnngen train (default: its own bound)")
    parser.add_argument("--baselines-only", action="store_true", help="skip training: only the baselines")
    parser.add_argument("--json", type=Path, help="write every row to this file")
    parser.add_argument("--keep", type=Path, help="copy each trained model folder into this folder")
    options = parser.parse_args(argv)
    unknown = [name for name in options.only.split(",") if name not in CASES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; the cases are {', '.join(CASES)}")
    if options.max_epochs is not None:
        extra = ["--epochs", str(options.max_epochs), *extra]
    return options, extra


def main(argv: list[str] | None = None) -> None:
    options, extra = parse_arguments(sys.argv[1:] if argv is None else argv)
    if options.baselines_only:
        print("baselines only (no training)")
    else:
        print(f"rnngen train options: {' '.join(extra) or '(defaults)'}")
    print(format_line([heading for heading, _width in COLUMNS]) + "  held out", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as workspace:
        for name in options.only.split(","):
            row = run_case(name, Path(workspace), extra, options.baselines_only)
            rows.append(row)
            if options.keep is not None and not options.baselines_only:
                shutil.copytree(Path(workspace) / name, options.keep / name, dirs_exist_ok=True)
            print(format_line(table_cells(row)) + f"  {row['heldout']}", flush=True)
            if options.json is not None:
                # Written after every case, so a long run that fails late keeps what it measured.
                options.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
