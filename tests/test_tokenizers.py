"""The word, char and morph tokenizers: splitting, joining, continuing a text, and their text hygiene."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnngen.config import KERAS_FILTERS, TokenizerConfig, TokenizerKind
from rnngen.text import korean, make_tokenizer, tokenize_lines
from rnngen.text.clean import read_text
from rnngen.text.korean import MorphTokenizer, cut_word
from rnngen.text.tokenizers import LAST_WHITESPACE, WORD_START, CharTokenizer, WordTokenizer, tokens_per_line

KINDS = list(TokenizerKind)
KEEP_TEXT = {"filters": "", "lower": False}


def tokenizer(kind: TokenizerKind | str, **settings: object) -> WordTokenizer | CharTokenizer | MorphTokenizer:
    made = make_tokenizer(TokenizerConfig(kind=TokenizerKind(kind), **settings))  # type: ignore[arg-type]
    assert isinstance(made, WordTokenizer | CharTokenizer | MorphTokenizer)
    return made


def normalized(line: str, kind: TokenizerKind, filters: str, lower: bool) -> str:
    """What join(split(line)) must give: the line lower-cased if asked, WORD_START read as "_" by the
    char and morph tokenizers, every filtered character a space, and its words separated by one space."""
    if lower:
        line = line.lower()
    if kind is not TokenizerKind.word:
        line = line.replace(WORD_START, "_")
    for character in filters:
        line = line.replace(character, " ")
    return " ".join(line.split())


def test_make_tokenizer_gives_each_kind() -> None:
    assert isinstance(tokenizer("word"), WordTokenizer)
    assert isinstance(tokenizer("char"), CharTokenizer)
    assert isinstance(tokenizer("morph"), MorphTokenizer)


def test_morph_cuts_words_into_surface_pieces_and_marks_word_starts() -> None:
    pieces = tokenizer("morph").split("영화가 정말 재미있었다")
    assert pieces[:3] == ["▁영화", "가", "▁정말"]
    assert pieces[3].startswith("▁재미있") and all(not piece.startswith("▁") for piece in pieces[4:])
    assert "".join(pieces[3:]) == "▁재미있었다"
    assert tokenizer("morph").join(pieces) == "영화가 정말 재미있었다"


def test_contracted_morphemes_never_split_a_syllable() -> None:
    # 했다 is 하 + 었 + 다, the first two sharing the syllable 했 (and the same start offset).
    assert tokenizer("morph").split("했다") == ["▁했", "다"]
    assert cut_word("했다", [0, 0, 1]) == ["▁했", "다"]
    assert cut_word("영화가", [0, 2, 2, 7, -1]) == ["▁영화", "가"]  # offsets outside the word are ignored
    assert cut_word("가", []) == ["▁가"]


def test_char_tokens_are_characters_and_the_space_is_word_start() -> None:
    assert tokenizer("char").split("영화가  좋다.") == ["영", "화", "가", "▁", "좋", "다"]
    assert tokenizer("char").join(["영", "화", "가", "▁", "좋", "다"]) == "영화가 좋다"


@pytest.mark.parametrize("kind", KINDS)
def test_whitespace_runs_collapse_and_line_ends_are_stripped(kind: TokenizerKind) -> None:
    split = tokenizer(kind, **KEEP_TEXT).split
    assert split("  영화가\t\u3000좋다  ") == split("영화가 좋다")
    assert split(" \t ") == []


@pytest.mark.parametrize("kind", [TokenizerKind.char, TokenizerKind.morph])
def test_the_word_start_mark_in_the_input_is_read_as_underscore(kind: TokenizerKind) -> None:
    kept = tokenizer(kind, **KEEP_TEXT)
    assert kept.join(kept.split("a▁b 영화▁가")) == "a_b 영화_가"
    assert all(WORD_START not in token[1:] for token in kept.split("a▁b 영화▁가"))
    # The default filters remove "_", so there the mark separates words like any punctuation.
    assert tokenizer(kind).join(tokenizer(kind).split("a▁b")) == "a b"


def test_word_tokenizer_keeps_the_mark_as_it_reserves_nothing() -> None:
    assert tokenizer("word", **KEEP_TEXT).split("a▁b") == ["a▁b"]


@pytest.mark.parametrize(
    ("kind", "tokens", "expected"),
    [
        ("word", ["가", "좋다"], "영화 가 좋다"),
        ("morph", ["가", "▁정말", "▁좋", "다"], "영화가 정말 좋다"),
        ("morph", ["▁정말", "▁좋", "다"], "영화 정말 좋다"),
        ("char", ["가", "▁", "좋", "다"], "영화가 좋다"),
        ("char", ["▁", "좋"], "영화 좋"),
    ],
)
def test_generated_tokens_attach_to_the_prompt_as_they_were_cut(kind: str, tokens: list[str], expected: str) -> None:
    assert tokenizer(kind).extend("영화", tokens) == expected
    assert tokenizer(kind).extend("영화", []) == "영화"


@pytest.mark.parametrize("kind", ["morph", "char"])
def test_continuing_an_empty_prompt_starts_without_a_space(kind: str) -> None:
    assert tokenizer(kind).extend("", ["▁정", "말"] if kind == "morph" else ["▁", "정", "말"]) == "정말"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", ["", "영화"])
def test_text_grows_piece_by_piece_as_each_token_comes(kind: TokenizerKind, text: str) -> None:
    tokens = {"word": ["가", "좋다"], "morph": ["▁", "가", "▁정말", "다"], "char": ["▁", "▁", "가", "▁", "좋"]}[kind]
    taken: list[str] = []

    def arriving() -> Iterator[str]:
        for token in tokens:
            taken.append(token)
            yield token

    shown = ""
    for piece in tokenizer(kind).extend_pieces(text, arriving()):
        shown += piece
        # What is shown is always the whole text for the tokens that have come so far.
        assert shown == tokenizer(kind).extend(text, taken)
    assert shown == tokenizer(kind).extend(text, tokens)


@pytest.mark.parametrize("kind", KINDS)
def test_a_newline_inside_a_line_only_separates_words(kind: TokenizerKind) -> None:
    tokens = list(tokenizer(kind, **KEEP_TEXT).split_lines(["영화가\n좋다", "정말"]))
    assert tokens == [tokenizer(kind).split("영화가 좋다"), tokenizer(kind).split("정말")]


@pytest.mark.parametrize("kind", KINDS)
def test_many_lines_split_as_each_line_alone(kind: TokenizerKind) -> None:
    lines = [f"오늘은 {index}번째 날씨가 좋다!" if index % 7 else "" for index in range(20_000)]
    split = tokenizer(kind)
    assert list(split.split_lines(lines)) == [split.split(line) for line in lines]


@pytest.mark.parametrize("kind", KINDS)
def test_mixed_korean_english_and_digits_round_trip(kind: TokenizerKind) -> None:
    line = "2026년 AI 모델이 GPT-4보다 3.5배 빨라요!! ㅋㅋㅋ 😀좋아요"
    kept = tokenizer(kind, **KEEP_TEXT)
    assert kept.join(kept.split(line)) == line
    default = tokenizer(kind)
    assert default.join(default.split(line)) == "2026년 ai 모델이 gpt 4보다 3 5배 빨라요 ㅋㅋㅋ 😀좋아요"


@pytest.mark.parametrize("kind", KINDS)
def test_composed_and_decomposed_hangul_crlf_cr_and_bom_give_the_same_tokens(
    kind: TokenizerKind, tmp_path: Path
) -> None:
    text = "오늘은 날씨가 정말 좋다.\n아이들이 놀이터에서 뛰어놀았다.\n영화가 재미있었다.\n"
    composed = tmp_path / "composed.txt"
    composed.write_text(text, encoding="utf-8")
    decomposed = tmp_path / "decomposed.txt"
    decomposed.write_bytes(
        b"\xef\xbb\xbf" + unicodedata.normalize("NFD", text).replace("\n", "\r\n", 2).replace("\n", "\r").encode()
    )
    assert read_text(decomposed) != unicodedata.normalize("NFD", text)
    config = TokenizerConfig(kind=kind)
    assert tokenize_lines(read_text(decomposed), config) == tokenize_lines(read_text(composed), config)
    assert len(tokenize_lines(read_text(decomposed), config)) == 3


# Hangul syllables weigh most; jamo, Latin letters in both cases, digits, punctuation, whitespace of
# several kinds, the reserved mark and a few characters from elsewhere (emoji, CJK, a combining accent).
HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
OTHERS = st.sampled_from(list("ㄱㅋㅎㅏaZz09 \t\u3000\n.,!?~_-'▁😀漢é\u0301İß"))
MIXED_TEXT = st.text(st.one_of(HANGUL, HANGUL, HANGUL, OTHERS), max_size=40)
FILTER_CHOICES = st.sampled_from(["", KERAS_FILTERS, ".,"])


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(line=MIXED_TEXT, filters=FILTER_CHOICES, lower=st.booleans())
def test_join_of_split_is_the_normalized_line(kind: TokenizerKind, line: str, filters: str, lower: bool) -> None:
    split = tokenizer(kind, filters=filters, lower=lower)
    tokens = split.split(line)
    assert split.join(tokens) == normalized(line, kind, filters, lower)
    assert all(tokens)
    if kind is not TokenizerKind.word:
        # The mark only ever starts a token, and a char token is one character.
        assert all(WORD_START not in token[1:] for token in tokens)
    if kind is TokenizerKind.char:
        assert all(len(token) == 1 for token in tokens)


@settings(max_examples=40, deadline=None)
@given(words=st.lists(st.text(HANGUL, min_size=1, max_size=8), min_size=1, max_size=6))
def test_morph_pieces_of_hangul_words_start_each_word_with_the_mark(words: list[str]) -> None:
    pieces = tokenizer("morph").split(" ".join(words))
    assert sum(piece.startswith(WORD_START) for piece in pieces) == len(words)
    assert "".join(pieces) == "".join(WORD_START + word for word in words)


def test_the_word_cache_stays_bounded_and_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(korean, "MAX_CACHED_WORDS", 50)
    monkeypatch.setattr(korean, "_pieces_of_word", {})
    monkeypatch.setattr(korean, "_shared_pieces", {})
    lines = [f"영화{index}가 정말 좋다" for index in range(200)]
    split = tokenizer("morph")
    assert [split.join(tokens) for tokens in split.split_lines(lines)] == lines
    assert len(korean._pieces_of_word) <= 50 + 3 * len(lines)
    assert len(korean._shared_pieces) <= 4 * (50 + 3 * len(lines))
    assert list(split.split_lines(lines[:10])) == [split.split(line) for line in lines[:10]]


def test_morph_tokens_share_one_string_per_piece() -> None:
    # A corpus's token lists hold millions of tokens: each is a reference to one shared string.
    first, second = tokenizer("morph").split_lines(["영화가 좋다", "영화를 봤다"])
    assert first[0] == second[0] == WORD_START + "영화"
    assert first[0] is second[0]


# Every kind of whitespace str.split knows, ASCII and beyond, and characters next to them that are not.
SPLIT_TEXT = st.text(
    st.one_of(
        HANGUL,
        st.sampled_from(list("aZ09.,!_▁é\u0301İßΣ\x00\x1b")),
        st.sampled_from(list(" \t\n\n\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u205f\u3000")),
    ),
    max_size=60,
)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=80, deadline=None)
@given(text=SPLIT_TEXT, filters=st.sampled_from(["", KERAS_FILTERS, ".,\u3000é"]), lower=st.booleans())
def test_a_text_splits_as_its_lines_do_one_by_one(kind: TokenizerKind, text: str, filters: str, lower: bool) -> None:
    split = tokenizer(kind, filters=filters, lower=lower)
    lines = list(split.split_lines(text.split("\n")))
    tokens, counts = split.split_text(text)
    assert tokens == [token for line in lines for token in line]
    assert counts.tolist() == [len(line) for line in lines]


@settings(max_examples=200, deadline=None)
@given(text=SPLIT_TEXT)
def test_tokens_per_line_counts_what_each_line_splits_into(text: str) -> None:
    assert tokens_per_line(text).tolist() == [len(line.split()) for line in text.split("\n")]
    assert tokens_per_line(text.encode("ascii", "replace").decode()).tolist() == [
        len(line.split()) for line in text.encode("ascii", "replace").decode().split("\n")
    ]


def test_tokens_per_line_of_edge_texts() -> None:
    assert tokens_per_line("").tolist() == [0]
    assert tokens_per_line("\n").tolist() == [0, 0]
    assert tokens_per_line("a").tolist() == [1]
    assert tokens_per_line(" a b\n\nc \n").tolist() == [2, 0, 1, 0]
    assert tokens_per_line("가\u3000나\x1c다\n라").tolist() == [3, 1]


def test_tokens_per_line_knows_every_ascii_character() -> None:
    for code in range(128):
        text = f"a{chr(code)}b"
        assert tokens_per_line(text).tolist() == [len(line.split()) for line in text.split("\n")], code


def test_no_code_point_after_the_last_whitespace_is_whitespace() -> None:
    assert chr(LAST_WHITESPACE).isspace()
    assert not any(chr(code).isspace() for code in range(LAST_WHITESPACE + 1, 0x110000))


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(max_codepoint=0x7F), max_size=40),
    filters=st.sampled_from(["", KERAS_FILTERS, "a.é\u3000", "\n"]),
)
def test_ascii_text_is_filtered_as_the_pattern_filters_it(text: str, filters: str) -> None:
    word = tokenizer("word", filters=filters, lower=False)
    expected = word._filter_pattern.sub(" ", text) if word._filter_pattern else text
    assert word.clean(text) == expected
