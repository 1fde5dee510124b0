import pytest

from rnngen.config import TokenizerConfig
from rnngen.data.vocab import Vocabulary
from rnngen.text import make_tokenizer

from .conftest import SEED_TEXT

NOTEBOOK_WORD_INDEX = {
    "있다": 1,
    "오늘": 2,
    "날씨가": 3,
    "정말": 4,
    "좋다": 5,
    "집": 6,
    "앞": 7,
    "공원에": 8,
    "사람들이": 9,
    "모여": 10,
    "아이들이": 11,
    "놀이터에서": 12,
    "신나게": 13,
    "뛰어놀고": 14,
}


def seed_vocabulary() -> Vocabulary:
    tokenizer = make_tokenizer(TokenizerConfig())
    return Vocabulary.build(tokenizer.split(line) for line in SEED_TEXT.split("\n"))


def test_seed_word_index_and_size_match_the_notebook() -> None:
    vocabulary = seed_vocabulary()
    assert vocabulary.word_index == NOTEBOOK_WORD_INDEX
    assert list(vocabulary.word_index.items()) == list(NOTEBOOK_WORD_INDEX.items())
    # The notebook's vocab_size = len(word_index) + 1 (padding) ...
    assert len(vocabulary.word_index) + 1 == 15
    # ... plus one end-of-line id after the words, which leaves every word's id as it was.
    assert vocabulary.end_of_line_id == 15 and vocabulary.unknown_id is None
    assert vocabulary.size == 16


def test_size_limits_leave_words_out_as_unknown() -> None:
    lines = [["a", "b", "a", "c"], ["a", "b", "d"]]
    assert Vocabulary.build(lines).words == ("a", "b", "c", "d")
    limited = Vocabulary.build(lines, max_words=2)
    assert limited.words == ("a", "b") and limited.unknown_id == 4 and limited.size == 5
    assert Vocabulary.build(lines, min_count=2).words == ("a", "b")
    encoded = limited.encode(["a", "c", "d", "b"])
    assert encoded.ids == [1, 4, 4, 2] and encoded.unknown_words == ["c", "d"]
    assert [limited.word_of(i) for i in (1, 2, 3, 4)] == ["a", "b", "<eol>", "<unk>"]
    assert Vocabulary.from_json(limited.to_json()) == limited


def test_the_texts_own_marker_is_read_as_the_unknown_word() -> None:
    lines = [["the", "<unk>", "sat"], ["the", "<unk>", "ran"], ["a", "dog", "<unk>"]]
    marked = Vocabulary.build(lines, unknown_marker="<unk>")
    # The marker takes no word id, however often it occurs; the other words keep their ranking.
    assert marked.words == ("the", "sat", "ran", "a", "dog") and marked.unknown_id == 7 and marked.size == 8
    assert marked.word_of(7) == "<unk>" and marked.id_of("<unk>") is None
    # It reads as the unknown word, and is not reported as unknown: the model was trained on it.
    encoded = marked.encode(["the", "<unk>", "cat"])
    assert encoded.ids == [1, 7, 7] and encoded.unknown_words == ["cat"]
    assert Vocabulary.from_json(marked.to_json()) == marked and marked.to_json()["unknown_marker"] == "<unk>"
    # With a size limit too, left-out words and the marker share the one unknown-word id.
    limited = Vocabulary.build(lines, max_words=1, unknown_marker="<unk>")
    assert limited.words == ("the",) and limited.encode(["<unk>", "sat"]).ids == [3, 3]
    # A marker the text lacks still gives the vocabulary its unknown-word id.
    assert Vocabulary.build(lines, unknown_marker="[UNK]").unknown_id == 8
    assert "unknown_marker" not in Vocabulary.build(lines).to_json()
    for broken in (
        {"padding_id": 0, "end_of_line_id": 2, "unknown_id": None, "unknown_marker": "<unk>", "words": ["a"]},
        {"padding_id": 0, "end_of_line_id": 2, "unknown_id": 3, "unknown_marker": "a", "words": ["a"]},
        {"padding_id": 0, "end_of_line_id": 2, "unknown_id": 3, "unknown_marker": 5, "words": ["a"]},
    ):
        with pytest.raises(ValueError):
            Vocabulary.from_json(broken)


def test_unknown_words_are_reported_not_dropped_silently() -> None:
    encoded = seed_vocabulary().encode(["거북이", "오늘", "빵"])
    assert encoded.ids == [2]
    assert encoded.unknown_words == ["거북이", "빵"]


def test_ids_map_back_to_words() -> None:
    vocabulary = seed_vocabulary()
    assert [vocabulary.word_of(i) for i in range(1, 15)] == list(NOTEBOOK_WORD_INDEX)
    with pytest.raises(ValueError):
        vocabulary.word_of(0)


def test_json_round_trip_and_rejection() -> None:
    vocabulary = seed_vocabulary()
    assert Vocabulary.from_json(vocabulary.to_json()) == vocabulary
    for broken in (
        {"padding_id": 0, "end_of_line_id": 3, "unknown_id": None, "words": ["a"]},
        [],
        {"words": ["a"]},
        {"padding_id": 0, "words": []},
        {"padding_id": 0, "words": ["a", "a"]},
        {"padding_id": 0, "words": ["a", 3]},
    ):
        with pytest.raises(ValueError):
            Vocabulary.from_json(broken)
