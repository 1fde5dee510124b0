"""Every bad input answered: one short message on stderr, a non-zero exit, no traceback, nothing on
stdout, and no damage to the good model beside it.

Each row prepares its files in a fresh copy of one workspace that holds a good model at
models/good (the newest model, so commands without -m use it) and runs one command.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from .conftest import SEED_TEXT, rnngen

GOOD = Path("models") / "good"


@dataclass(frozen=True)
class BadInput:
    name: str
    arguments: list[str]
    exit_code: int
    message: str  # a fragment the one-line message must contain
    prepare: Callable[[Path], None] = lambda workspace: None
    stdin: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def write(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def prepare(workspace: Path) -> None:
        path = workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return prepare


def broken_model(change: Callable[[Path], None]) -> Callable[[Path], None]:
    """A copy of the good model at models/broken, then damaged by ``change``."""

    def prepare(workspace: Path) -> None:
        shutil.copytree(workspace / GOOD, workspace / "models" / "broken")
        change(workspace / "models" / "broken")

    return prepare


def edit_config(edit: Callable[[dict], object]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        replaced = edit(config)
        (folder / "config.json").write_text(json.dumps(config if replaced is None else replaced), encoding="utf-8")

    return change


def edit_weights(edit: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        with np.load(folder / "weights.npz") as archive:
            arrays = {name: archive[name] for name in archive.files}
        edit(arrays)
        np.savez(folder / "weights.npz", **arrays)  # type: ignore[arg-type]

    return change


def set_nan(arrays: dict[str, np.ndarray]) -> None:
    arrays["output.bias"][0] = np.nan


def drop_row(arrays: dict[str, np.ndarray]) -> None:
    arrays["embedding"] = arrays["embedding"][:-1]


BROKEN = ["-m", "models/broken"]
TRAIN = ["train", "corpus.txt", "--epochs", "1", "--quiet"]
WITH_CORPUS = write("corpus.txt", SEED_TEXT + "\n")

CASES = [
    # train: corpora
    BadInput("train-missing-corpus", TRAIN, 1, "no such file"),
    BadInput("train-empty-corpus", TRAIN, 1, "empty", write("corpus.txt", "")),
    BadInput("train-blank-corpus", TRAIN, 1, "empty", write("corpus.txt", " \n\t\n\n")),
    BadInput("train-binary-corpus", TRAIN, 1, "invalid UTF-8", write("corpus.txt", bytes(range(256)) * 4)),
    BadInput("train-bad-utf8-line-3", TRAIN, 1, "line 3", write("corpus.txt", b"a b\nc d\ne \xc3\x28 f\n")),
    BadInput("train-one-word-lines", TRAIN, 1, "two or more words", write("corpus.txt", "one\ntwo\nthree\n")),
    BadInput("train-folder-without-txt", ["train", "texts", "--quiet"], 1, "no .txt files", write("texts/a.md", "x y")),
    BadInput("train-stdin-empty", ["train", "-", "--quiet"], 1, "empty", stdin=""),
    BadInput(
        "train-bad-corpus-over-good-model",
        ["train", "corpus.txt", "-o", str(GOOD), "--force", "--quiet"],
        1,
        "empty",
        write("corpus.txt", ""),
    ),
    # train: options
    BadInput("train-zero-epochs", [*TRAIN, "--epochs", "0"], 2, "--epochs", WITH_CORPUS),
    BadInput("train-dropout-above-one", [*TRAIN, "--dropout", "1.5"], 2, "--dropout", WITH_CORPUS),
    BadInput("train-unknown-cell", [*TRAIN, "--cell", "transformer"], 2, "--cell", WITH_CORPUS),
    BadInput("train-unknown-tokenizer", [*TRAIN, "--tokenizer", "bpe"], 2, "--tokenizer", WITH_CORPUS),
    BadInput("train-max-len-one", [*TRAIN, "--max-len", "1"], 2, "--max-len", WITH_CORPUS),
    BadInput("train-val-split-too-big", [*TRAIN, "--val-split", "0.95"], 2, "--val-split", WITH_CORPUS),
    BadInput("train-nan-learning-rate", [*TRAIN, "--learning-rate", "nan"], 2, "learning", WITH_CORPUS),
    BadInput(
        "train-val-split-and-valid",
        [*TRAIN, "--val-split", "0.1", "--valid", "corpus.txt"],
        2,
        "alternatives",
        WITH_CORPUS,
    ),
    BadInput("train-missing-valid-file", [*TRAIN, "--valid", "nowhere.txt"], 1, "no such file", WITH_CORPUS),
    BadInput(
        "train-stream-bidirectional", [*TRAIN, "--context", "stream", "--bidirectional"], 2, "--context", WITH_CORPUS
    ),
    BadInput(
        "train-resume-without-checkpoint", [*TRAIN, "--resume", "-o", "fresh"], 1, "nothing to resume", WITH_CORPUS
    ),
    BadInput("train-output-is-a-file", [*TRAIN, "-o", "corpus.txt"], 1, "is not a folder", WITH_CORPUS),
    BadInput("train-output-under-a-file", [*TRAIN, "-o", "corpus.txt/model"], 1, "cannot write", WITH_CORPUS),
    # generate: options and input
    BadInput("generate-negative-words", ["generate", "오늘", "-n", "-1"], 2, "-n"),
    BadInput("generate-negative-temperature", ["generate", "오늘", "--temperature", "-1"], 2, "--temperature"),
    BadInput("generate-top-p-above-one", ["generate", "오늘", "--top-p", "1.5"], 2, "--top-p"),
    BadInput("generate-zero-beam", ["generate", "오늘", "--beam", "0"], 2, "--beam"),
    BadInput("generate-strict-unknown-word", ["generate", "없는말", "--strict"], 1, "unknown words"),
    BadInput("generate-stdin-bad-utf8", ["generate", "-"], 1, "invalid UTF-8", extra={"stdin_bytes": "ff fe 0a"}),
    BadInput("generate-missing-model", ["generate", "오늘", "-m", "nowhere"], 1, "no such model folder"),
    BadInput(
        "generate-model-is-a-file", ["generate", "오늘", "-m", "corpus.txt"], 1, "no such model folder", WITH_CORPUS
    ),
    BadInput(
        "generate-empty-folder", ["generate", "오늘", "-m", "empty"], 1, "config.json is missing", write("empty/x", "")
    ),
    # generate: damaged model folders
    BadInput(
        "model-format-version",
        ["generate", "오늘", *BROKEN],
        1,
        "version",
        broken_model(edit_config(lambda config: config.update(format_version=99))),
    ),
    BadInput(
        "model-foreign-config",
        ["generate", "오늘", *BROKEN],
        1,
        "not an rnngen model folder",
        broken_model(edit_config(lambda config: config.update(format="something-else"))),
    ),
    BadInput(
        "model-config-is-a-list",
        ["generate", "오늘", *BROKEN],
        1,
        "not an rnngen model folder",
        broken_model(edit_config(lambda config: [1, 2, 3])),
    ),
    BadInput(
        "model-negative-units",
        ["generate", "오늘", *BROKEN],
        1,
        "invalid settings",
        broken_model(edit_config(lambda config: config["model"].update(units=-4))),
    ),
    BadInput(
        "model-units-as-text",
        ["generate", "오늘", *BROKEN],
        1,
        "invalid settings",
        broken_model(edit_config(lambda config: config["model"].update(units="128"))),
    ),
    BadInput(
        "model-unknown-cell",
        ["generate", "오늘", *BROKEN],
        1,
        "invalid settings",
        broken_model(edit_config(lambda config: config["model"].update(cell="transformer"))),
    ),
    BadInput("model-nan-weights", ["generate", "오늘", *BROKEN], 1, "NaN", broken_model(edit_weights(set_nan))),
    BadInput(
        "model-weights-shape", ["generate", "오늘", *BROKEN], 1, "wrong shape", broken_model(edit_weights(drop_row))
    ),
    BadInput(
        "model-truncated-weights",
        ["generate", "오늘", *BROKEN],
        1,
        "weights are damaged",
        broken_model(lambda folder: (folder / "weights.npz").write_bytes((folder / "weights.npz").read_bytes()[:300])),
    ),
    BadInput(
        "model-missing-vocabulary",
        ["generate", "오늘", *BROKEN],
        1,
        "vocabulary.json is missing",
        broken_model(lambda folder: (folder / "vocabulary.json").unlink()),
    ),
    BadInput(
        "model-vocabulary-of-another-size",
        ["generate", "오늘", *BROKEN],
        1,
        "vocabulary has",
        broken_model(
            lambda folder: (folder / "vocabulary.json").write_text(
                '{"padding_id": 0, "end_of_line_id": 2, "unknown_id": null, "words": ["a"]}', encoding="utf-8"
            )
        ),
    ),
    # next, evaluate, info
    BadInput("next-zero-count", ["next", "오늘", "-k", "0"], 2, "-k"),
    BadInput(
        "next-damaged-model",
        ["next", "오늘", *BROKEN],
        1,
        "unreadable",
        broken_model(lambda folder: (folder / "config.json").write_text("{not json", encoding="utf-8")),
    ),
    BadInput("evaluate-missing-file", ["evaluate", "nowhere.txt"], 1, "no such file"),
    BadInput("evaluate-empty-file", ["evaluate", "empty.txt"], 1, "no words", write("empty.txt", "\n\n")),
    BadInput("evaluate-bad-utf8", ["evaluate", "bad.txt"], 1, "invalid UTF-8", write("bad.txt", b"ok line\n\xff\n")),
    BadInput(
        "evaluate-unknown-context", ["evaluate", "corpus.txt", "--context", "paragraph"], 2, "--context", WITH_CORPUS
    ),
    BadInput(
        "info-damaged-model",
        ["info", *BROKEN],
        1,
        "not an rnngen model folder",
        broken_model(edit_config(lambda config: config.update(format=None))),
    ),
    BadInput("info-missing-model", ["info", "-m", "nowhere"], 1, "no such model folder"),
]


def fingerprint(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def workspace_template(seed_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = tmp_path_factory.mktemp("bad-inputs")
    shutil.copytree(seed_model, template / GOOD)
    return template


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 25
    assert {case.arguments[0] for case in CASES} >= {"train", "generate", "next", "evaluate", "info"}
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_one_short_message(case: BadInput, workspace_template: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(workspace_template, workspace)
    before = fingerprint(workspace / GOOD)
    case.prepare(workspace)
    if "stdin_bytes" in case.extra:
        result = rnngen_bytes(workspace, case.arguments, bytes.fromhex(case.extra["stdin_bytes"]))
    else:
        result = rnngen(*case.arguments, cwd=workspace, stdin=case.stdin, timeout=120)
    assert result.returncode == case.exit_code, result.stderr
    assert case.message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    assert fingerprint(workspace / GOOD) == before
    # Nothing half-written is left behind beside the models.
    assert not [path.name for path in (workspace / "models").iterdir() if ".partial-" in path.name]


def rnngen_bytes(workspace: Path, arguments: list[str], stdin: bytes):  # type: ignore[no-untyped-def]
    import subprocess

    from .conftest import Completed

    process = subprocess.run(["rnngen", *arguments], cwd=workspace, input=stdin, capture_output=True, timeout=60)
    return Completed(process.returncode, process.stdout.decode(), process.stderr.decode("utf-8", "replace"))
