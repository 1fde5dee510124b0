"""Continues prompts word by word with a saved model: tokenizer, vocabulary, numpy engine, sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnngen.engine import NumpyLanguageModel
from rnngen.errors import ModelFolderError, UnknownWordsError
from rnngen.sampling import choose_argmax
from rnngen.store import StoredModel, read_model_folder
from rnngen.text import make_tokenizer, normalize_text


@dataclass(frozen=True)
class Generation:
    """One continued prompt."""

    prompt: str
    words: list[str]
    probabilities: list[float]
    unknown_words: list[str]
    text: str


class TextGenerator:
    """A loaded model folder, ready to continue prompts; no TensorFlow involved."""

    def __init__(self, stored: StoredModel) -> None:
        self.stored = stored
        self.vocabulary = stored.vocabulary
        self.tokenizer = make_tokenizer(stored.tokenizer)
        try:
            self.engine = NumpyLanguageModel(stored.model, stored.weights)
        except ValueError as error:
            raise ModelFolderError(f"{stored.folder}: {error}") from None

    @classmethod
    def from_folder(cls, folder: Path) -> TextGenerator:
        return cls(read_model_folder(folder))

    def generate(self, prompt: str, words: int, strict: bool = False, stop_at_eol: bool = False) -> Generation:
        """The prompt followed by up to ``words`` words, each the most likely after all before it.

        Unknown prompt words are reported (or refused when ``strict``); a model trained with an
        unknown-word id reads them as that, others skip them. The printed text keeps the prompt
        exactly as the user wrote it. The end of a line is never printed: with ``stop_at_eol``
        generation stops there, otherwise the most likely word is taken instead.
        """
        prompt = normalize_text(prompt).strip()
        encoded = self.vocabulary.encode(self.tokenizer.split(prompt))
        if strict and encoded.unknown_words:
            raise UnknownWordsError(f"unknown words in the prompt: {' '.join(encoded.unknown_words)}")
        context = self.engine.new_context()
        # Every training line starts after an end-of-line id, so a prompt does too.
        context.feed([self.vocabulary.end_of_line_id, *encoded.ids])
        banned = [self.vocabulary.unknown_id] if self.vocabulary.unknown_id is not None else []
        if not stop_at_eol:
            banned.append(self.vocabulary.end_of_line_id)
        chosen_words: list[str] = []
        chosen_probabilities: list[float] = []
        for _ in range(words):
            probabilities = context.probabilities()
            word_id = choose_argmax(probabilities, banned)
            if word_id == self.vocabulary.end_of_line_id:
                break
            chosen_words.append(self.vocabulary.word_of(word_id))
            chosen_probabilities.append(float(probabilities[word_id]))
            context.feed([word_id])
        continuation = self.tokenizer.join(chosen_words)
        text = " ".join(part for part in (prompt, continuation) if part)
        return Generation(prompt, chosen_words, chosen_probabilities, encoded.unknown_words, text)
