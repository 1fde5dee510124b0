"""The tokenizer a corpus gets when --tokenizer is not given: morpheme pieces for real Korean text,
whole words for other languages and for a few sentences."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from rnngen.config import REAL_TEXT_MIN_TOKENS, TokenizerKind
from rnngen.data.tokenizer_choice import choose_tokenizer_kind, source_sample
from tests.conftest import SEED_TEXT, rnngen

KOREAN_LINES = (Path(__file__).resolve().parent.parent / "corpora" / "korean.txt").read_text(encoding="utf-8")


def korean_text(words: int) -> str:
    """Lines of the bundled Korean corpus, repeated until they hold at least this many words."""
    copies = words // len(KOREAN_LINES.split()) + 1
    return KOREAN_LINES * copies


def test_real_korean_text_gets_morpheme_pieces() -> None:
    assert choose_tokenizer_kind(korean_text(REAL_TEXT_MIN_TOKENS)) is TokenizerKind.morph


def test_a_few_korean_sentences_keep_whole_words() -> None:
    # The notebook's three sentences are learned by heart; `-n 3` keeps counting its words.
    assert choose_tokenizer_kind(SEED_TEXT) is TokenizerKind.word
    few = " ".join(korean_text(REAL_TEXT_MIN_TOKENS).split()[: REAL_TEXT_MIN_TOKENS - 1])
    assert choose_tokenizer_kind(few) is TokenizerKind.word


def test_other_languages_keep_whole_words() -> None:
    english = "the stock market closed higher on friday as investors bought shares\n" * 600
    assert choose_tokenizer_kind(english) is TokenizerKind.word
    # Korean words quoted in mostly English text do not make it Korean.
    mixed = "the film 영화 was called 괴물 in seoul and it opened on friday\n" * 600
    assert choose_tokenizer_kind(mixed) is TokenizerKind.word
    assert choose_tokenizer_kind("") is TokenizerKind.word


def test_the_sample_reads_files_folders_and_standard_input_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("첫째 줄\n", encoding="utf-8")
    (tmp_path / "b.TXT").write_text("둘째 줄\n", encoding="utf-8")
    assert source_sample(tmp_path / "a.txt") == "첫째 줄\n"
    assert source_sample(tmp_path).split() == ["첫째", "줄", "둘째", "줄"]
    assert len(source_sample(tmp_path / "a.txt", limit=4).encode()) <= 4 + 1
    assert source_sample(tmp_path / "missing.txt") == ""
    # Standard input is read again from its first byte after the sample.
    text = "오늘 날씨가 좋다\n" * 1000
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8"))
    assert text.startswith(source_sample("-", limit=100))
    assert sys.stdin.buffer.read().decode() == text


def trained_tokenizer(folder: Path) -> str:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))["tokenizer"]["kind"]


def test_train_chooses_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "ko.txt").write_text(korean_text(REAL_TEXT_MIN_TOKENS), encoding="utf-8")
    (tmp_path / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    small = ("--epochs", "1", "--units", "8", "--embedding-dim", "8")

    chosen = rnngen("train", "ko.txt", "-o", "ko", *small, cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert trained_tokenizer(tmp_path / "ko") == "morph"
    assert "Korean text: training on morpheme pieces" in chosen.stderr
    assert chosen.stdout.strip() == "ko"

    piped = rnngen("train", "-", "-o", "piped", *small, cwd=tmp_path, stdin=korean_text(REAL_TEXT_MIN_TOKENS))
    assert piped.returncode == 0, piped.stderr
    assert trained_tokenizer(tmp_path / "piped") == "morph"

    named = rnngen("train", "ko.txt", "-o", "words", "--tokenizer", "word", *small, cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert trained_tokenizer(tmp_path / "words") == "word"
    assert "morpheme" not in named.stderr

    seed = rnngen("train", "seed.txt", "-o", "seed", *small, "--quiet", cwd=tmp_path)
    assert seed.returncode == 0, seed.stderr
    assert trained_tokenizer(tmp_path / "seed") == "word"
    assert seed.stderr == ""


def test_without_kiwi_korean_text_keeps_whole_words_and_says_how_to_get_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rnngen.cli.app import _default_tokenizer_kind
    from rnngen.errors import MissingDependencyError
    from rnngen.text import korean

    def missing() -> None:
        raise MissingDependencyError(korean.MISSING_KIWI_MESSAGE)

    monkeypatch.setattr(korean, "require_kiwipiepy", missing)
    (tmp_path / "ko.txt").write_text(korean_text(REAL_TEXT_MIN_TOKENS), encoding="utf-8")
    assert _default_tokenizer_kind(str(tmp_path / "ko.txt"), quiet=True) is TokenizerKind.word
    assert 'pip install "rnngen[ko]"' in capsys.readouterr().err
