"""End to end through the installed console script, in temporary folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnngen.config import TokenizerConfig
from rnngen.data.corpus_cache import open_prepared

from .conftest import SEED_TEXT, python_module, rnngen

NOTEBOOK_CONTINUATIONS = [
    ("오늘", "3", "오늘 날씨가 정말 좋다"),
    ("집", "5", "집 앞 공원에 사람들이 모여 있다"),
    ("아이들이", "4", "아이들이 놀이터에서 신나게 뛰어놀고 있다"),
]


def assert_clean_failure(result, exit_code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4


def test_train_writes_the_model_folder(trained_workspace: Path, seed_model: Path) -> None:
    # The numpy engine trained it (the default on a CPU): no model.keras, which `rnngen export --keras` writes.
    assert sorted(path.name for path in seed_model.iterdir()) == [
        "config.json",
        "training.png",
        "vocabulary.json",
        "weights.npz",
    ]
    config = json.loads((seed_model / "config.json").read_text(encoding="utf-8"))
    assert config["execution"]["engine"] == "numpy" and config["execution"]["engine_requested"] == "auto"
    # The notebook's 15 ids plus the end-of-line id; lines are framed by it (<eol> w1 .. wk <eol>),
    # so the longest training sequence is the notebook's 6 plus 2, and the notebook's 12 targets
    # grow by each line's first word and its end (3 + 3).
    assert config["model"]["vocab_size"] == 16
    assert config["model"]["max_len"] == 8
    assert config["corpus"]["training_targets"] == 18
    # Nothing half-written is left beside the model.
    assert [path.name for path in (trained_workspace / "models").iterdir()] == ["seed"]


@pytest.mark.parametrize(("prompt", "words", "expected"), NOTEBOOK_CONTINUATIONS)
def test_generate_reproduces_the_notebook(trained_workspace: Path, prompt: str, words: str, expected: str) -> None:
    result = rnngen("generate", prompt, "-n", words, cwd=trained_workspace)
    assert result.returncode == 0
    assert result.stdout == expected + "\n"
    assert result.stderr == ""


def test_generate_from_another_folder_with_model_option(seed_model: Path, tmp_path: Path) -> None:
    for prompt, words, expected in NOTEBOOK_CONTINUATIONS:
        result = rnngen("generate", prompt, "-n", words, "-m", str(seed_model), cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (0, expected + "\n", "")


def test_python_dash_m_works(seed_model: Path, tmp_path: Path) -> None:
    result = python_module("generate", "오늘", "-n", "3", "-m", str(seed_model), cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "오늘 날씨가 정말 좋다\n", "")


def test_unknown_prompt_words_are_named_in_one_warning(trained_workspace: Path) -> None:
    result = rnngen("generate", "거북이 오늘", "-n", "3", cwd=trained_workspace)
    assert result.returncode == 0
    assert result.stdout == "거북이 오늘 날씨가 정말 좋다\n"
    assert result.stderr.strip().splitlines() == ["rnngen: warning: unknown words skipped: 거북이"]


def test_strict_refuses_unknown_words(trained_workspace: Path) -> None:
    assert_clean_failure(rnngen("generate", "거북이", "--strict", cwd=trained_workspace), 1, "거북이")


def test_prompts_from_stdin_get_one_line_each(trained_workspace: Path) -> None:
    result = rnngen("generate", "-", "-n", "3", cwd=trained_workspace, stdin="오늘\n집\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["오늘 날씨가 정말 좋다", "집 앞 공원에 사람들이"]


def test_generate_never_loads_tensorflow(seed_model: Path) -> None:
    probe = (
        "import sys\n"
        "from rnngen.cli import main\n"
        "sys.argv = ['rnngen', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(name for name in ('tensorflow', 'keras') if name in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    for arguments in (
        ["--help"],
        ["generate", "--help"],
        ["generate", "오늘", "-n", "3", "-m", str(seed_model)],
        ["generate", "오늘", "--beam", "3", "-m", str(seed_model)],
        ["next", "오늘", "-m", str(seed_model)],
        ["info", "-m", str(seed_model)],
        ["evaluate", str(seed_model / "vocabulary.json"), "-m", str(seed_model)],
    ):
        process = subprocess.run(
            [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, encoding="utf-8"
        )
        assert "HEAVY []" in process.stderr, (arguments, process.stderr)


def test_train_writes_to_the_output_option_and_is_quiet_when_asked(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT, encoding="utf-8")
    result = rnngen("train", "seed.txt", "-o", "out/model", "--epochs", "2", "--cell", "gru", "--quiet", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == str(Path("out/model"))
    assert (tmp_path / "out" / "model" / "weights.npz").is_file()
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "empty"),
        ("   \n\n\t\n", "empty"),
        ("하나\n둘\n셋.\n", "no line has two or more words"),
        (b"\xff\xfe\x00bad bytes here\n", "invalid UTF-8 on line 1"),
    ],
    ids=["missing", "empty", "blank", "one-word-lines", "not-utf8"],
)
def test_bad_corpora_get_one_line_and_exit_1(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    corpus = tmp_path / "corpus.txt"
    if isinstance(content, bytes):
        corpus.write_bytes(content)
    elif content is not None:
        corpus.write_text(content, encoding="utf-8")
    result = rnngen("train", "corpus.txt", "--epochs", "1", cwd=tmp_path)
    assert_clean_failure(result, 1, message)
    assert not (tmp_path / "models" / "corpus").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["--epochs", "0"],
        ["--cell", "transformer"],
        ["--batch-size", "-3"],
        ["--learning-rate", "0"],
        ["--dropout", "1.5"],
        ["--no-such-option"],
    ],
)
def test_bad_training_options_are_usage_errors(tmp_path: Path, arguments: list[str]) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT, encoding="utf-8")
    result = rnngen("train", "seed.txt", *arguments, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_model_folder(tmp_path: Path) -> None:
    assert_clean_failure(rnngen("generate", "오늘", "-m", "nowhere", cwd=tmp_path), 1, "no such model folder")
    assert_clean_failure(rnngen("generate", "오늘", cwd=tmp_path), 1, "no trained model under models")


def copy_model(source: Path, destination: Path) -> Path:
    destination.mkdir(parents=True)
    for path in source.iterdir():
        (destination / path.name).write_bytes(path.read_bytes())
    return destination


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "config.json").unlink(), "config.json is missing"),
        (lambda folder: (folder / "config.json").write_text("{not json", encoding="utf-8"), "unreadable"),
        (lambda folder: (folder / "weights.npz").write_bytes(b"PK\x03\x04 truncated"), "weights are damaged"),
        (lambda folder: (folder / "weights.npz").unlink(), "weights.npz is missing"),
        (
            lambda folder: (folder / "vocabulary.json").write_text(
                '{"padding_id": 0, "end_of_line_id": 2, "unknown_id": null, "words": ["a"]}', encoding="utf-8"
            ),
            "vocabulary has 3 ids",
        ),
    ],
    ids=["no-config", "bad-json", "truncated-weights", "no-weights", "vocabulary-mismatch"],
)
def test_broken_model_folders_are_reported(seed_model: Path, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    broken = copy_model(seed_model, tmp_path / "broken")
    damage(broken)
    assert_clean_failure(rnngen("generate", "오늘", "-m", str(broken), cwd=tmp_path), 1, message)


def test_an_unusable_output_is_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "seed.txt").write_text(SEED_TEXT, encoding="utf-8")
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    result = rnngen("train", "seed.txt", "-o", "taken", "--epochs", "500", cwd=tmp_path, timeout=60)
    assert_clean_failure(result, 1, "is not a folder")
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "a file, not a folder"
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner").write_text("x", encoding="utf-8")
    result = rnngen("train", "seed.txt", "-o", "locked/inner/model", "--epochs", "500", cwd=tmp_path, timeout=60)
    assert_clean_failure(result, 1, "cannot write the model folder here")


def test_unknown_words_are_named_as_typed_once_each_and_briefly(trained_workspace: Path) -> None:
    long_word = "거북이" * 14  # 42 characters
    many = " ".join(f"새{index}" for index in range(12))
    prompt = f"Turtle, 거북이 오늘 거북이 {long_word} {many}"
    result = rnngen("generate", prompt, "-n", "1", cwd=trained_workspace)
    assert result.returncode == 0
    assert result.stdout == f"{prompt} 날씨가\n"
    named = " ".join(["Turtle,", "거북이", long_word[:27] + "...", *[f"새{index}" for index in range(7)]])
    assert result.stderr.splitlines() == [f"rnngen: warning: unknown words skipped: {named} and 5 more"]


def test_unknown_words_of_prompts_from_stdin_name_their_line(trained_workspace: Path) -> None:
    for command in (["generate", "-", "-n", "1"], ["next", "-", "-k", "1"]):
        result = rnngen(*command, cwd=trained_workspace, stdin="오늘\n\n거북이 집\n오늘 빵 빵\n")
        assert result.returncode == 0
        assert result.stderr.splitlines() == [
            "rnngen: warning: line 3: unknown words skipped: 거북이",
            "rnngen: warning: line 4: unknown words skipped: 빵",
        ]


def test_several_unquoted_words_are_one_prompt(trained_workspace: Path) -> None:
    quoted = rnngen("generate", "집 앞", "-n", "3", cwd=trained_workspace)
    unquoted = rnngen("generate", "집", "앞", "-n", "3", cwd=trained_workspace)
    assert (unquoted.returncode, unquoted.stdout, unquoted.stderr) == (0, "집 앞 공원에 사람들이 모여\n", "")
    assert quoted.stdout == unquoted.stdout
    listed = rnngen("next", "집", "앞", "-k", "1", cwd=trained_workspace)
    assert listed.returncode == 0 and listed.stdout.endswith("\t공원에\n")


def test_next_reads_prompts_from_stdin(trained_workspace: Path) -> None:
    plain = rnngen("next", "-", "-k", "2", cwd=trained_workspace, stdin="집\n아이들이 놀이터에서\n")
    assert plain.returncode == 0 and plain.stderr == ""
    blocks = plain.stdout.split("\n\n")
    # Each prompt's K lines, then an empty line.
    assert len(blocks) == 3 and blocks[2] == ""
    assert [len(block.splitlines()) for block in blocks[:2]] == [2, 2]
    assert blocks[0].splitlines()[0].endswith("\t앞") and blocks[1].splitlines()[0].endswith("\t신나게")
    alone = rnngen("next", "집", "-k", "2", cwd=trained_workspace)
    assert blocks[0] + "\n" == alone.stdout
    as_json = rnngen("next", "-", "-k", "2", "--json", cwd=trained_workspace, stdin="집\n아이들이 놀이터에서\n")
    lists = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [[entry["word"] for entry in listed][0] for listed in lists] == ["앞", "신나게"]
    assert all(len(listed) == 2 for listed in lists)


def test_words_counts_tokens_in_the_help(tmp_path: Path) -> None:
    result = rnngen("generate", "--help", cwd=tmp_path)
    assert "Tokens to add" in " ".join(result.stdout.split())


def test_cache_lists_and_clears_its_entries_through_the_command_line(tmp_path: Path, fresh_corpus_cache: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SEED_TEXT, encoding="utf-8")
    opened, _ = open_prepared(corpus, TokenizerConfig())
    listed = rnngen("cache", cwd=tmp_path)
    assert listed.returncode == 0
    # Results on stdout, one tab-separated line an entry; the summary on stderr.
    (line,) = listed.stdout.splitlines()
    assert line.split("\t") == [opened.corpus.folder.name, "0.0 MB", "3 lines", "15 tokens", "word"]
    assert listed.stderr == f"1 prepared corpora, 0.0 MB, in {fresh_corpus_cache}\n"
    as_json = rnngen("cache", "--json", cwd=tmp_path)
    assert (as_json.returncode, as_json.stderr) == (0, "")
    (entry,) = json.loads(as_json.stdout)
    assert (entry["name"], entry["lines"], entry["tokens"], entry["complete"]) == (
        opened.corpus.folder.name,
        3,
        15,
        True,
    )
    cleared = rnngen("cache", "--clear", cwd=tmp_path)
    assert (cleared.returncode, cleared.stdout) == (0, "")
    assert cleared.stderr.startswith("removed ") and cleared.stderr.endswith(
        f"MB of prepared corpora from {fresh_corpus_cache}\n"
    )
    assert not opened.corpus.folder.exists()
    empty = rnngen("cache", cwd=tmp_path)
    assert (empty.returncode, empty.stdout, empty.stderr) == (
        0,
        "",
        f"0 prepared corpora, 0.0 MB, in {fresh_corpus_cache}\n",
    )


def test_cache_with_an_unknown_option_is_bad_usage(tmp_path: Path) -> None:
    result = rnngen("cache", "--everything", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert "--everything" in result.stderr and "Traceback" not in result.stderr
