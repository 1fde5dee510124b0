"""Continues prompts word by word with a saved model: tokenizer, vocabulary, numpy engine, sampling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rnngen.config import GenerationConfig
from rnngen.data.vocab import Encoded
from rnngen.errors import ModelFolderError, UnknownWordsError
from rnngen.inference.repetition import RepeatRules
from rnngen.inference.sampling import NO_WORD, allowed_probabilities, choose, choose_argmax_rows
from rnngen.network.forward import NumpyLanguageModel, Readings, softmax_in_place
from rnngen.store.folder import StoredModel, read_model_folder
from rnngen.text import make_tokenizer
from rnngen.text.clean import normalize_text
from rnngen.text.tokenizers import WORD_START


@dataclass(frozen=True)
class Generation:
    """One continued prompt."""

    prompt: str
    # The generated tokens as the vocabulary holds them; for the char and morph tokenizers a leading
    # WORD_START ("▁") marks a token that begins a new word.
    words: list[str]
    probabilities: list[float]  # the model's probability of each generated word, before any shaping
    unknown_words: list[str]  # the prompt's words as typed that the vocabulary lacks (or lacks pieces of)
    text: str

    def to_json(self) -> dict[str, object]:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "words": self.words,
            "unknown_words": self.unknown_words,
            "probabilities": self.probabilities,
        }


# Below this many rows stepped together, one BLAS thread is faster: handing a small matrix-vector
# product to a second thread costs more than it saves (about 2x per word on two cores).
ROWS_FOR_THREADS = 32

# Prompts stepped together share each step's (rows x width) x (width x vocabulary) product, which
# runs faster per row the more rows it has; the batch is bounded by its logits (64 MB of float32)
# so a large vocabulary cannot make it blow up.
MAX_PROMPTS_PER_BATCH = 1024
LOGITS_PER_BATCH = 2**24


@dataclass(frozen=True)
class NextWord:
    word: str
    probability: float


@dataclass(frozen=True)
class TextStream:
    """One prompt being continued: its unknown words at once, its text as the tokens are chosen."""

    prompt: str
    unknown_words: list[str]
    # The text piece by piece: the prompt, then what each token adds; joined, ``Generation.text``.
    pieces: Iterator[str]


# Messages name at most this many words, each cut to at most this many characters.
NAMED_WORDS = 10
NAMED_WORD_LENGTH = 30


def name_words(words: Sequence[str]) -> str:
    """Words for a one-line message, separated by spaces: the first NAMED_WORDS, each long one cut
    short with "...", and how many more there are."""
    shown = [word if len(word) <= NAMED_WORD_LENGTH else word[: NAMED_WORD_LENGTH - 3] + "..." for word in words]
    more = len(shown) - NAMED_WORDS
    return " ".join(shown[:NAMED_WORDS]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class _Prompt(Encoded):
    """An encoded prompt, and whether its last word is over (see ``TextGenerator._word_closed``)."""

    word_closed: bool = False


@dataclass
class _Draft:
    """A continuation being built."""

    ids: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    log_probability: float = 0.0
    finished: bool = False


class TextGenerator:
    """A loaded model folder, ready to continue prompts; no TensorFlow involved."""

    def __init__(self, stored: StoredModel) -> None:
        self.stored = stored
        self.vocabulary = stored.vocabulary
        self.tokenizer = make_tokenizer(stored.tokenizer)
        try:
            self.engine = NumpyLanguageModel(stored.model, stored.weights, stored.mixture)
        except ValueError as error:
            raise ModelFolderError(f"{stored.folder}: {error}") from None
        self.continuing_ids = self._continuing_ids()

    def _continuing_ids(self) -> np.ndarray:
        """Ids of the tokens that continue the word before them rather than start one (morph pieces
        such as "가", characters other than the space): none for the word tokenizer.

        Empty as well when the vocabulary starts no word at all, so that banning these ids can never
        leave a prompt with nothing to choose.
        """
        if not self.tokenizer.reserves_word_start:
            return np.empty(0, dtype=np.int64)
        words = self.vocabulary.words
        continuing = [position + 1 for position, word in enumerate(words) if not word.startswith(WORD_START)]
        if len(continuing) == len(words):
            return np.empty(0, dtype=np.int64)
        return np.asarray(continuing, dtype=np.int64)

    @classmethod
    def from_folder(cls, folder: Path) -> TextGenerator:
        return cls(read_model_folder(folder))

    @property
    def prompts_per_batch(self) -> int:
        """How many prompts to step together: as many as the logits budget allows, at least one."""
        return max(1, min(MAX_PROMPTS_PER_BATCH, LOGITS_PER_BATCH // self.vocabulary.size))

    def _encode(self, prompt: str, strict: bool) -> _Prompt:
        return self._encode_all([prompt], strict)[0]

    def _encode_all(self, prompts: Sequence[str], strict: bool) -> list[_Prompt]:
        # Split together: the morph tokenizer analyses the new words of all the prompts in one call.
        encoded = []
        for text, tokens in zip(prompts, self.tokenizer.split_lines(prompts), strict=True):
            prompt = self.vocabulary.encode(tokens)
            unknown = self._typed_unknown_words(text, prompt.unknown_words) if prompt.unknown_words else []
            if strict and unknown:
                raise UnknownWordsError(f"unknown words in the prompt: {name_words(unknown)}")
            encoded.append(_Prompt(prompt.ids, unknown, self._word_closed(text, tokens)))
        return encoded

    def _typed_unknown_words(self, text: str, unknown_tokens: Sequence[str]) -> list[str]:
        """The words of the text, as typed and each once, that gave one or more of the unknown tokens.

        Tokens are lower-cased, filtered and, for the morph and char tokenizers, pieces of words
        ("▁거북이"): each typed word is split alone to see which of them the vocabulary lacks. Unknown
        tokens that belong to no typed word (the char tokenizer's space, "▁") are named as they are.
        """
        typed = list(dict.fromkeys(text.split()))
        unknown = set(unknown_tokens)
        named, explained = [], set()
        for word, tokens in zip(typed, self.tokenizer.split_lines(typed), strict=True):
            missing = unknown.intersection(tokens)
            if missing:
                named.append(word)
                explained |= missing
        return named + list(dict.fromkeys(token for token in unknown_tokens if token not in explained))

    def _word_closed(self, text: str, tokens: Sequence[str]) -> bool:
        """Whether the prompt's last word is over, so that the continuation must start a new one.

        It is when the text ends in a character the tokenizer drops ("영화." read as "▁영화"):
        a piece such as "가" would otherwise be printed after the full stop, as "영화.가". It is
        also when the last token was unknown and skipped: the model never read it, so nothing can
        continue it.
        """
        if not text or not tokens:
            return bool(text)
        if not self.tokenizer.clean(text[-1]).strip():
            return True
        return self.vocabulary.unknown_id is None and self.vocabulary.id_of(tokens[-1]) is None

    def _start_new_words(self, scores: np.ndarray, prompts: Sequence[_Prompt], ban: float) -> None:
        """Rule out, in the first step's scores (rows, vocabulary), the tokens that would continue a
        closed prompt's last word: ``ban`` is -inf for logits, 0 for probabilities."""
        rows = np.flatnonzero([prompt.word_closed for prompt in prompts])
        if len(rows) and len(self.continuing_ids):
            scores[np.ix_(rows, self.continuing_ids)] = ban

    def _read_prompts(self, encoded: Sequence[Encoded]) -> Readings:
        readings = self.engine.new_readings(len(encoded))
        # Every training line starts after an end-of-line id, so a prompt does too.
        readings.feed_each([[self.vocabulary.end_of_line_id, *prompt.ids] for prompt in encoded])
        return readings

    def _banned(self, settings: GenerationConfig) -> list[int]:
        banned = [] if self.vocabulary.unknown_id is None else [self.vocabulary.unknown_id]
        if not settings.stop_at_eol:
            banned.append(self.vocabulary.end_of_line_id)
        return banned

    def generate(self, prompt: str, settings: GenerationConfig | None = None, index: int = 0) -> Generation:
        """Continue one prompt; see ``generate_batch``."""
        return self.generate_batch([prompt], settings, first_index=index)[0]

    def generate_batch(
        self,
        prompts: Sequence[str],
        settings: GenerationConfig | None = None,
        first_index: int = 0,
        with_probabilities: bool = True,
    ) -> list[Generation]:
        """Continue several prompts at once, each by up to ``settings.words`` tokens.

        Unknown prompt words are reported (or refused when ``strict``); a model trained with an
        unknown-word id reads them as that, others skip them. The printed text keeps the prompt as
        the user wrote it. The end of a line is never printed: with ``stop_at_eol`` a continuation
        stops there, otherwise the best other word is taken; a continuation also stops where the
        repeat rules leave no word. Sampling draws from a generator seeded with (seed, prompt index),
        so a prompt's text does not depend on the batch it came in. Without ``with_probabilities``
        argmax skips the softmax (a third of the time on a large vocabulary) and each generation's
        ``probabilities`` stays empty.
        """
        settings = settings or GenerationConfig()
        texts = [normalize_text(prompt).strip() for prompt in prompts]
        encoded = self._encode_all(texts, settings.strict)
        rows = settings.beam if settings.beam > 1 else len(prompts)
        with threadpool_limits(limits=1 if rows < ROWS_FOR_THREADS else None):
            if settings.beam > 1:
                drafts = [self._beam_search(prompt, settings) for prompt in encoded]
            else:
                drafts = self._step_all(encoded, settings, first_index, with_probabilities)
        generations = []
        for text, prompt, draft in zip(texts, encoded, drafts, strict=True):
            words = [self.vocabulary.word_of(word_id) for word_id in draft.ids]
            # The tokenizer knows whether a token starts a new word or continues the prompt's last one.
            joined = self.tokenizer.extend(text, words)
            generations.append(Generation(text, words, draft.probabilities, prompt.unknown_words, joined))
        return generations

    def stream(self, prompt: str, settings: GenerationConfig | None = None, index: int = 0) -> TextStream:
        """Continue one prompt as ``generate`` does, the text coming piece by piece as each token is
        chosen (a beam search chooses them all before the first comes)."""
        settings = settings or GenerationConfig()
        text = normalize_text(prompt).strip()
        encoded = self._encode(text, settings.strict)
        pieces = self.tokenizer.extend_pieces(text, self._words(encoded, settings, index))
        return TextStream(text, encoded.unknown_words, pieces)

    def _words(self, prompt: _Prompt, settings: GenerationConfig, index: int) -> Iterator[str]:
        """The tokens continuing one prompt, as they are chosen."""
        with threadpool_limits(limits=1):
            if settings.beam > 1:
                yield from (self.vocabulary.word_of(word_id) for word_id in self._beam_search(prompt, settings).ids)
                return
            for chosen, _ in self._steps([prompt], settings, index, with_probabilities=False):
                if chosen[0] == NO_WORD:
                    return
                yield self.vocabulary.word_of(int(chosen[0]))

    def _step_all(
        self, encoded: Sequence[_Prompt], settings: GenerationConfig, first_index: int, with_probabilities: bool
    ) -> list[_Draft]:
        """Argmax or sampling, all prompts stepped together, to the end."""
        drafts = [_Draft() for _ in encoded]
        for chosen, probabilities in self._steps(encoded, settings, first_index, with_probabilities):
            for row in np.flatnonzero(chosen != NO_WORD).tolist():
                drafts[row].ids.append(int(chosen[row]))
                if probabilities is not None:
                    drafts[row].probabilities.append(float(probabilities[row]))
        return drafts

    def _steps(
        self, encoded: Sequence[_Prompt], settings: GenerationConfig, first_index: int, with_probabilities: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Argmax or sampling, all prompts stepped together: each step's chosen id per row (NO_WORD
        for a row that is over) and, ``with_probabilities``, the model's probability of each."""
        readings = self._read_prompts(encoded)
        generators = self._row_generators(settings, first_index, len(encoded))
        banned = self._banned(settings)
        rules = RepeatRules(settings, [prompt.ids for prompt in encoded])
        going = np.ones(len(encoded), dtype=bool)
        every_row = np.arange(len(encoded))
        end_of_line = self.vocabulary.end_of_line_id
        for step in range(settings.words):
            logits = readings.logits()  # (rows, vocab), the batch's scratch buffer
            if with_probabilities or settings.samples:
                factors = rules.penalty_factors(logits)  # read before the softmax overwrites the logits
                probabilities = softmax_in_place(logits)
                if step == 0:
                    self._start_new_words(probabilities, encoded, ban=0.0)
                held = rules.hold_back_probabilities(probabilities, factors) if rules.active else probabilities
                chosen = choose(held, settings, generators, banned)
            else:
                # The softmax keeps the order of the logits: the best logit is the best word.
                if step == 0:
                    self._start_new_words(logits, encoded, ban=-np.inf)
                if rules.active:
                    rules.hold_back_logits(logits)
                chosen = choose_argmax_rows(logits, banned, overwrite=True)
            going &= (chosen != end_of_line) & (chosen != NO_WORD)
            chosen = np.where(going, chosen, NO_WORD)
            yield chosen, probabilities[every_row, chosen] if with_probabilities else None
            if step == settings.words - 1 or not going.any():
                break  # the last word chosen is never read: nothing comes after it
            # A row that is over reads anything (the end of the line): what follows it is never used.
            read = np.where(going, chosen, end_of_line)
            rules.add(read.tolist())
            readings.feed(read)

    @staticmethod
    def _row_generators(settings: GenerationConfig, first_index: int, rows: int) -> list[np.random.Generator]:
        """One random generator per prompt, seeded with (seed, prompt index); none for argmax, where
        making a thousand of them would cost more than a step of the model."""
        if not settings.samples:
            return []
        seed = settings.seed if settings.seed is not None else int(np.random.default_rng().integers(2**63))
        return [np.random.default_rng([seed, first_index + row]) for row in range(rows)]

    def _beam_search(self, prompt: _Prompt, settings: GenerationConfig) -> _Draft:
        """The continuation with the highest mean log-probability per word among ``beam`` kept at each step.

        A continuation that reaches the end of the line (with ``stop_at_eol``) is set aside as
        finished; the rest go on until ``words`` words, or until the repeat rules leave no word. The
        repetition penalty counts in the log-probabilities compared; a draft keeps the model's own.
        """
        readings = self._read_prompts([prompt])
        rules = RepeatRules(settings, [prompt.ids])
        drafts = [_Draft()]
        finished: list[_Draft] = []
        banned = self._banned(settings)
        end_of_line = self.vocabulary.end_of_line_id
        for step in range(settings.words):
            logits = readings.logits()  # (live drafts, vocab)
            factors = rules.penalty_factors(logits)  # read before the softmax overwrites the logits
            probabilities = softmax_in_place(logits)
            if step == 0:
                self._start_new_words(probabilities, [prompt], ban=0.0)
            held = rules.hold_back_probabilities(probabilities, factors) if rules.active else probabilities
            with np.errstate(divide="ignore"):
                log_probabilities = np.log(allowed_probabilities(held, banned))
            totals = np.array([draft.log_probability for draft in drafts])[:, None] + log_probabilities
            flat = totals.ravel()
            width = min(settings.beam, int(np.isfinite(flat).sum()))
            if width == 0:
                break  # the repeat rules leave no word to go on with
            best = np.argpartition(-flat, width - 1)[:width]
            best = best[np.argsort(-flat[best], kind="stable")]
            rows, ids = np.divmod(best, totals.shape[1])
            next_drafts, next_rows = [], []
            for row, word_id in zip(rows.tolist(), ids.tolist(), strict=True):
                parent = drafts[row]
                draft = _Draft(
                    ids=[*parent.ids, word_id],
                    probabilities=[*parent.probabilities, float(probabilities[row, word_id])],
                    log_probability=float(totals[row, word_id]),
                )
                if word_id == end_of_line:
                    draft.ids.pop()
                    draft.probabilities.pop()
                    draft.finished = True
                    finished.append(draft)
                else:
                    next_drafts.append(draft)
                    next_rows.append(row)
            if not next_drafts:
                break
            readings = readings.select(next_rows)
            next_ids = [draft.ids[-1] for draft in next_drafts]
            readings.feed(np.array(next_ids))
            if rules.active:
                rules = rules.select(next_rows)
                rules.add(next_ids)
            drafts = next_drafts
        # Mean over the tokens scored: the words, and the end of the line for a finished one.
        return max(
            finished + drafts,
            key=lambda draft: draft.log_probability / max(len(draft.probabilities) + int(draft.finished), 1),
        )

    def next_words(self, prompt: str, count: int, strict: bool = False) -> tuple[list[NextWord], list[str]]:
        """The ``count`` most likely next words after the prompt (the end of the line shown as <eol>),
        and the prompt's unknown words as typed."""
        return self.next_words_batch([prompt], count, strict)[0]

    def next_words_batch(
        self, prompts: Sequence[str], count: int, strict: bool = False
    ) -> list[tuple[list[NextWord], list[str]]]:
        """``next_words`` for several prompts, read together."""
        encoded = self._encode_all([normalize_text(prompt).strip() for prompt in prompts], strict)
        with threadpool_limits(limits=1 if len(prompts) < ROWS_FOR_THREADS else None):
            probabilities = self._read_prompts(encoded).probabilities()
            self._start_new_words(probabilities, encoded, ban=0.0)
        banned = [] if self.vocabulary.unknown_id is None else [self.vocabulary.unknown_id]
        allowed = allowed_probabilities(probabilities, banned)
        listed = []
        for row, prompt in zip(allowed, encoded, strict=True):
            best = np.argsort(-row, kind="stable")[: min(count, int((row > 0).sum()))]
            words = [NextWord(self.vocabulary.word_of(int(word_id)), float(row[word_id])) for word_id in best]
            listed.append((words, prompt.unknown_words))
        return listed
