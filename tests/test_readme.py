"""The README's console examples run as written and print what the README shows.

Every ```console block of the README is a session: each `$ rnngen ...` line is run, in order, in one
temporary folder holding a copy of `corpora/` (so a block may use the model an earlier one trained), with
the engine the defaults pick, and its stdout must be the lines printed under it. The examples are also
run with `--seed 1` to `--seed 4` added to every `rnngen train`: an example that worked only by a lucky
seed would fail there. Across seeds the continuations must be the same; `next`'s probabilities may differ
in their last digits (at most 0.01) and in the order of words below 1 %, which the README says.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPOSITORY, rnngen

README = REPOSITORY / "README.md"
# Probabilities of next words may differ from seed to seed by this much.
PROBABILITY_TOLERANCE = 0.01


@dataclass(frozen=True)
class Example:
    """One command of a console block and the stdout the README shows for it."""

    line: int  # in README.md, for messages
    arguments: list[str]  # after "rnngen"
    stdout: str


def console_examples(markdown: str) -> list[Example]:
    """The `$ rnngen ...` commands of every ```console block, in order, each with the lines under it."""
    examples: list[Example] = []
    lines = markdown.split("\n")
    inside = False
    current: tuple[int, list[str], list[str]] | None = None
    for number, line in enumerate(lines, start=1):
        if not inside:
            inside = line.strip() == "```console"
            continue
        if line.strip() == "```" or line.startswith("$ "):
            if current is not None:
                examples.append(Example(current[0], current[1], "".join(text + "\n" for text in current[2])))
                current = None
            if line.strip() == "```":
                inside = False
                continue
            words = shlex.split(line[2:])
            assert words[0] == "rnngen", f"README.md:{number}: a console example runs rnngen only"
            current = (number, words[1:], [])
            continue
        assert current is not None, f"README.md:{number}: output before any command"
        current[2].append(line)
    return examples


def with_seed(arguments: list[str], seed: int) -> list[str]:
    return [*arguments, "--seed", str(seed)] if seed and arguments[0] == "train" else arguments


def next_word_lines(stdout: str) -> list[tuple[float, str]]:
    return [(float(probability), word) for probability, word in (line.split("\t") for line in stdout.splitlines())]


def assert_same_next_words(shown: str, printed: str, where: str) -> None:
    """The same words above 1 %, with probabilities within PROBABILITY_TOLERANCE; the rest below 1 %."""
    expected, actual = next_word_lines(shown), next_word_lines(printed)
    assert len(actual) == len(expected), where
    for (expected_probability, expected_word), (probability, word) in zip(expected, actual, strict=True):
        assert abs(probability - expected_probability) <= PROBABILITY_TOLERANCE, (where, printed)
        if expected_probability >= PROBABILITY_TOLERANCE:
            assert word == expected_word, (where, printed)


def test_the_readme_has_console_examples() -> None:
    examples = console_examples(README.read_text(encoding="utf-8"))
    commands = [example.arguments[0] for example in examples]
    assert commands.count("train") >= 2 and "generate" in commands and "next" in commands


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_the_readme_console_examples_print_what_the_readme_shows(tmp_path: Path, seed: int) -> None:
    shutil.copytree(REPOSITORY / "corpora", tmp_path / "corpora")
    for example in console_examples(README.read_text(encoding="utf-8")):
        where = f"README.md:{example.line} with --seed {seed}: rnngen {shlex.join(example.arguments)}"
        result = rnngen(*with_seed(example.arguments, seed), cwd=tmp_path)
        assert result.returncode == 0, (where, result.stderr)
        if seed and example.arguments[0] == "next":
            assert_same_next_words(example.stdout, result.stdout, where)
        else:
            assert result.stdout == example.stdout, (where, result.stdout)


def test_the_parser_reads_commands_and_their_output() -> None:
    markdown = 'text\n```console\n$ rnngen train a.txt\nmodels/a\n$ rnngen next "x y" -k 2\n0.5\tb\n0.4\tc\n```\n'
    examples = console_examples(markdown)
    assert [(example.arguments, example.stdout) for example in examples] == [
        (["train", "a.txt"], "models/a\n"),
        (["next", "x y", "-k", "2"], "0.5\tb\n0.4\tc\n"),
    ]
