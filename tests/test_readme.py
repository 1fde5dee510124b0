"""The README's examples print what the README shows (the quick start's are in test_cli.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import REPOSITORY, rnngen


def test_the_korean_morph_example(tmp_path: Path) -> None:
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    shutil.copy(REPOSITORY / "corpora" / "korean.txt", corpora / "korean.txt")
    trained = rnngen("train", "corpora/korean.txt", "--tokenizer", "morph", "--quiet", cwd=tmp_path)
    assert (trained.returncode, trained.stdout) == (0, "models/korean\n"), trained.stderr
    for prompt, expected in (
        ("날씨", "날씨가 추워서 두꺼운 옷을 입었다"),
        ("영화가", "영화가 너무 길어서 조금 지루했다"),
    ):
        result = rnngen("generate", prompt, "-n", "20", "--stop-at-eol", cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (0, expected + "\n", "")
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    listed = rnngen("next", "날씨", "-k", "3", cwd=tmp_path)
    assert listed.returncode == 0 and f'$ rnngen next "날씨" -k 3\n{listed.stdout}```' in readme, listed.stdout
