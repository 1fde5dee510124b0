import unicodedata
from pathlib import Path

import pytest

from rnngen.config import KERAS_FILTERS, TokenizerConfig
from rnngen.errors import CorpusError
from rnngen.text import make_tokenizer
from rnngen.text.clean import normalize_text, read_text


def test_default_tokenizer_matches_the_keras_tokenizer() -> None:
    tokenizer = make_tokenizer(TokenizerConfig())
    assert tokenizer.split("오늘 날씨가 정말 좋다.") == ["오늘", "날씨가", "정말", "좋다"]
    assert tokenizer.split("Hello, World!  It's (really) 2026\tok") == [
        "hello",
        "world",
        "it's",
        "really",
        "2026",
        "ok",
    ]


def test_filters_and_case_can_be_kept() -> None:
    tokenizer = make_tokenizer(TokenizerConfig(filters="", lower=False))
    assert tokenizer.split("Hello, World!") == ["Hello,", "World!"]
    assert tokenizer.join(["Hello,", "World!"]) == "Hello, World!"


def test_every_keras_filter_character_separates_words() -> None:
    tokenizer = make_tokenizer(TokenizerConfig())
    assert tokenizer.split("a".join(KERAS_FILTERS)) == ["a"] * (len(KERAS_FILTERS) - 1)


def test_normalisation_handles_bom_line_endings_and_decomposed_hangul() -> None:
    decomposed = unicodedata.normalize("NFD", "날씨가")
    assert decomposed != "날씨가"
    assert normalize_text("\ufeff" + decomposed + "\r\n둘\r셋") == "날씨가\n둘\n셋"


@pytest.mark.parametrize(
    "text",
    ["", "plain ascii\n", "날씨가", unicodedata.normalize("NFD", "날씨가 좋다"), "e\u0301é", "a\u0301\u0300", "\u212b"],
)
def test_normalisation_is_nfc_whether_or_not_the_text_needs_it(text: str) -> None:
    assert normalize_text(text) == unicodedata.normalize("NFC", text)
    assert normalize_text(text + "\r\n" + text) == unicodedata.normalize("NFC", text + "\n" + text)


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes("첫 줄\n둘째 줄\n".encode() + b"\xff\xfe broken\n")
    with pytest.raises(CorpusError, match="line 3"):
        read_text(corpus)


def test_missing_file_and_folder_are_reported(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        read_text(tmp_path / "absent.txt")
    with pytest.raises(CorpusError, match="is a folder"):
        read_text(tmp_path)
