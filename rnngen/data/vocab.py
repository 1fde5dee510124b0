"""The vocabulary: built from word counts, it maps words to ids and back.

Ids: 0 is padding (as in the notebook), 1..len(words) are the words, most frequent first, then the
end-of-line id (a line's boundary: it starts every context and ends every line), then, when words
were left out by a size limit or the text marks unknown words itself (PTB's ``<unk>``), the
unknown-word id. Words keep the notebook's ids whatever the special ids are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PADDING_ID = 0
END_OF_LINE_NAME = "<eol>"
UNKNOWN_NAME = "<unk>"


def count_words(token_lines: Iterable[Sequence[str]]) -> Counter[str]:
    """How often each word occurs, in order of first appearance."""
    counts: Counter[str] = Counter()
    for tokens in token_lines:
        counts.update(tokens)
    return counts


@dataclass(frozen=True)
class Encoded:
    """Ids of a text's tokens and the tokens that had no id, in order of appearance.

    With an unknown-word id, unknown tokens get that id in ``ids``; without one they are left out. The
    text's own unknown-word marker gets that id too but is no unknown word: the model was trained on it.
    """

    ids: list[int]
    unknown_words: list[str]


@dataclass(frozen=True)
class Vocabulary:
    """Words in id order: ``words[0]`` has id 1, since id 0 is reserved for padding."""

    words: tuple[str, ...]
    has_unknown: bool = False
    # The token that marks an unknown word in the text itself (PTB's "<unk>"), read as the unknown-word
    # id rather than as a word of its own; None when the text has no such marker.
    unknown_marker: str | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(not isinstance(word, str) or not word for word in self.words):
            raise ValueError("every vocabulary entry must be a non-empty string")
        index = {word: position + 1 for position, word in enumerate(self.words)}
        if len(index) != len(self.words):
            raise ValueError("the vocabulary lists a word twice")
        if not isinstance(self.has_unknown, bool):
            raise ValueError("has_unknown must be true or false")
        if self.unknown_marker is not None:
            if not isinstance(self.unknown_marker, str) or not self.unknown_marker:
                raise ValueError("the unknown-word marker must be a non-empty string")
            if not self.has_unknown or self.unknown_marker in index:
                raise ValueError("the unknown-word marker must be read as the unknown-word id, not as a word")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(
        cls,
        token_lines: Iterable[Sequence[str]],
        max_words: int | None = None,
        min_count: int = 1,
        unknown_marker: str | None = None,
    ) -> Vocabulary:
        """Most frequent first; ties keep the order of first appearance (the Keras Tokenizer's rule).

        Words seen fewer than ``min_count`` times, or beyond the ``max_words`` most frequent, are
        left out and then read as the unknown word; so is ``unknown_marker``, the token with which
        the text marks unknown words itself, which then gives the vocabulary an unknown-word id even
        when no word is left out.
        """
        return cls.from_counts(count_words(token_lines), max_words, min_count, unknown_marker)

    @classmethod
    def from_counts(
        cls,
        counts: Counter[str],
        max_words: int | None = None,
        min_count: int = 1,
        unknown_marker: str | None = None,
        with_unknown: bool = False,
    ) -> Vocabulary:
        """As ``build``, from word counts already made (in order of first appearance); ``with_unknown``
        gives the vocabulary an unknown-word id even when no word is left out and the text marks none
        (for a model trained to read some known words as unknown, --unk-singletons)."""
        # Counter keeps first-appearance order and sorted() is stable, so ties stay in that order.
        ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
        ordered = [word for word, count in ranked if word != unknown_marker]
        kept = [word for word in ordered if counts[word] >= min_count][:max_words]
        has_unknown = with_unknown or unknown_marker is not None or len(kept) < len(ordered)
        return cls(tuple(kept), has_unknown=has_unknown, unknown_marker=unknown_marker)

    @property
    def end_of_line_id(self) -> int:
        return len(self.words) + 1

    @property
    def unknown_id(self) -> int | None:
        return len(self.words) + 2 if self.has_unknown else None

    @property
    def size(self) -> int:
        """Number of ids, padding and special ids included: the width of the model's output layer."""
        return len(self.words) + 2 + int(self.has_unknown)

    @property
    def word_index(self) -> dict[str, int]:
        """The word -> id mapping, as the Keras Tokenizer's ``word_index``."""
        return dict(self._index)

    def id_of(self, word: str) -> int | None:
        """The id of a word, or None when the word is not in the vocabulary."""
        return self._index.get(word)

    @property
    def unknown_name(self) -> str:
        """How the unknown-word id reads: the text's own marker when it has one, else <unk>."""
        return UNKNOWN_NAME if self.unknown_marker is None else self.unknown_marker

    def word_of(self, word_id: int) -> str:
        """The word with this id; the special ids read as <eol> and the unknown word's name; padding has no word."""
        if 0 < word_id <= len(self.words):
            return self.words[word_id - 1]
        if word_id == self.end_of_line_id:
            return END_OF_LINE_NAME
        if word_id == self.unknown_id:
            return self.unknown_name
        raise ValueError(f"id {word_id} is not a word of this vocabulary")

    def encode(self, tokens: Iterable[str]) -> Encoded:
        """Ids of the tokens; unknown ones are reported, never silently lost."""
        ids: list[int] = []
        unknown: list[str] = []
        for token in tokens:
            word_id = self._index.get(token)
            if word_id is None:
                if token != self.unknown_marker:
                    unknown.append(token)
                word_id = self.unknown_id
            if word_id is not None:
                ids.append(word_id)
        return Encoded(ids, unknown)

    def to_json(self) -> dict[str, Any]:
        """The JSON form saved in a model folder: the words in id order and the special ids (and the
        text's unknown-word marker, only when it has one, so other folders stay as they were)."""
        data: dict[str, Any] = {
            "padding_id": PADDING_ID,
            "end_of_line_id": self.end_of_line_id,
            "unknown_id": self.unknown_id,
        }
        if self.unknown_marker is not None:
            data["unknown_marker"] = self.unknown_marker
        data["words"] = list(self.words)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Vocabulary:
        """Read the JSON form back, rejecting anything that is not exactly that form."""
        if not isinstance(data, dict) or data.get("padding_id") != PADDING_ID:
            raise ValueError("not an rnngen vocabulary")
        words = data.get("words")
        if not isinstance(words, list) or not words:
            raise ValueError("the vocabulary has no word list")
        vocabulary = cls(
            tuple(words), has_unknown=data.get("unknown_id") is not None, unknown_marker=data.get("unknown_marker")
        )
        if data.get("end_of_line_id") != vocabulary.end_of_line_id or data.get("unknown_id") != vocabulary.unknown_id:
            raise ValueError("the special ids do not follow the words")
        return vocabulary
