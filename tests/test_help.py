"""The command line's own conveniences: --version, -h, shell completion, and help that reads well."""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import Completed, rnngen

COMMANDS = ["train", "generate", "next", "evaluate", "info", "models", "export"]


def help_of(*arguments: str, cwd: Path, columns: int = 100) -> Completed:
    environment = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    process = subprocess.run(
        ["rnngen", *arguments], cwd=cwd, capture_output=True, text=True, encoding="utf-8", env=environment
    )
    return Completed(process.returncode, process.stdout, process.stderr)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, tmp_path: Path) -> None:
    result = rnngen(flag, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == f"rnngen {version('rnngen')}\n" and result.stderr == ""


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_dash_h_is_help(command: list[str], tmp_path: Path) -> None:
    short, long = help_of(*command, "-h", cwd=tmp_path), help_of(*command, "--help", cwd=tmp_path)
    assert short.returncode == 0 and short.stdout == long.stdout and "Usage: rnngen" in short.stdout


def test_command_summaries_are_whole(tmp_path: Path) -> None:
    listing = help_of("--help", cwd=tmp_path, columns=80).stdout
    commands = listing[listing.index("Commands") :]
    assert "..." not in commands
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", listing).split())
    assert "Continue PROMPT token by token (the most likely one, unless sampling or beam options are given)." in flat
    for name in COMMANDS:
        assert re.search(rf"│ {name} ", listing), name


def test_train_help_groups_its_options_into_panels(tmp_path: Path) -> None:
    text = help_of("train", "--help", cwd=tmp_path, columns=120).stdout
    panels = re.findall(r"╭─ (.+?) ─", text)
    assert panels == ["Arguments", "Options", "Output", "Data and tokenizer", "Model", "Training", "Execution"]

    def panel(name: str) -> str:
        return text[text.index(f"╭─ {name} ") : text.index("╰", text.index(f"╭─ {name} "))]

    assert "--force" in panel("Output") and "--tokenizer" in panel("Data and tokenizer")
    assert "--units" in panel("Model") and "--learning-rate" in panel("Training") and "--engine" in panel("Execution")


def test_help_uses_plain_metavars_and_escaped_defaults(tmp_path: Path) -> None:
    for command in ("train", "generate", "next", "evaluate"):
        text = help_of(command, "--help", cwd=tmp_path, columns=160).stdout
        assert not re.search(r"<(int|float|path)( range)?>|range>", text), command
    train = help_of("train", "--help", cwd=tmp_path, columns=160).stdout
    assert re.search(r"--epochs\s+INTEGER", train) and re.search(r"--learning-rate\s+FLOAT", train)
    assert re.search(r"--valid\s+FILE", train)
    # The filters' default ends in a tab and a newline, shown as escapes rather than as blank space.
    assert "~\\t\\n" in train


def test_n_counts_tokens(tmp_path: Path) -> None:
    text = " ".join(help_of("generate", "--help", cwd=tmp_path, columns=200).stdout.split())
    assert "Words to add" not in text and "tokens" in text


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete")])
def test_completion_scripts_for_each_shell(shell: str, marker: str, tmp_path: Path) -> None:
    environment = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    process = subprocess.run(
        ["rnngen", "--show-completion", shell], cwd=tmp_path, capture_output=True, text=True, env=environment
    )
    assert process.returncode == 0 and marker in process.stdout and "_RNNGEN_COMPLETE" in process.stdout


def test_completion_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        environment = {
            **os.environ,
            "_RNNGEN_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        process = subprocess.run(["rnngen"], cwd=tmp_path, capture_output=True, text=True, env=environment)
        return process.stdout.split()

    assert complete("rnngen ge") == ["generate"]
    assert complete("rnngen train --tok") == ["--tokenizer"]
    assert complete("rnngen train x --cell l") == ["lstm"]
