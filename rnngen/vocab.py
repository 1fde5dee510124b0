"""The vocabulary: built from word counts, it maps words to ids and back; id 0 is padding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PADDING_ID = 0


@dataclass(frozen=True)
class Encoded:
    """Ids of the known words of a text, and the words that had no id, in order of appearance."""

    ids: list[int]
    unknown_words: list[str]


@dataclass(frozen=True)
class Vocabulary:
    """Words in id order: ``words[0]`` has id 1, since id 0 is reserved for padding."""

    words: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {word: position + 1 for position, word in enumerate(self.words)}
        if len(index) != len(self.words):
            raise ValueError("the vocabulary lists a word twice")
        if any(not isinstance(word, str) or not word for word in self.words):
            raise ValueError("every vocabulary entry must be a non-empty string")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(cls, token_lines: Iterable[Sequence[str]]) -> Vocabulary:
        """Most frequent first; ties keep the order of first appearance (the Keras Tokenizer's rule)."""
        counts: Counter[str] = Counter()
        for tokens in token_lines:
            counts.update(tokens)
        # Counter keeps first-appearance order and sorted() is stable, so ties stay in that order.
        ordered = sorted(counts.items(), key=lambda item: item[1], reverse=True)
        return cls(tuple(word for word, _ in ordered))

    @property
    def size(self) -> int:
        """Number of ids, padding included: the width of the model's output layer."""
        return len(self.words) + 1

    @property
    def word_index(self) -> dict[str, int]:
        """The word -> id mapping, as the Keras Tokenizer's ``word_index``."""
        return dict(self._index)

    def id_of(self, word: str) -> int | None:
        """The id of a word, or None when the word is not in the vocabulary."""
        return self._index.get(word)

    def word_of(self, word_id: int) -> str:
        """The word with this id; padding has no word."""
        if not 0 < word_id <= len(self.words):
            raise ValueError(f"id {word_id} is not a word of this vocabulary")
        return self.words[word_id - 1]

    def encode(self, tokens: Iterable[str]) -> Encoded:
        """Ids of the known tokens; unknown ones are reported, never silently lost."""
        ids: list[int] = []
        unknown: list[str] = []
        for token in tokens:
            word_id = self._index.get(token)
            if word_id is None:
                unknown.append(token)
            else:
                ids.append(word_id)
        return Encoded(ids, unknown)

    def to_json(self) -> dict[str, Any]:
        """The JSON form saved in a model folder: the words in id order."""
        return {"padding_id": PADDING_ID, "words": list(self.words)}

    @classmethod
    def from_json(cls, data: Any) -> Vocabulary:
        """Read the JSON form back, rejecting anything that is not exactly that form."""
        if not isinstance(data, dict) or data.get("padding_id") != PADDING_ID:
            raise ValueError("not an rnngen vocabulary")
        words = data.get("words")
        if not isinstance(words, list) or not words:
            raise ValueError("the vocabulary has no word list")
        return cls(tuple(words))
