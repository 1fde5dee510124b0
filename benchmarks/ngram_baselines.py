"""Count-based baselines for rnngen's held-out scores: an add-one unigram and an interpolated Kneser-Ney
trigram, on exactly the tokens rnngen reads (its own tokenizer) and scored in bits per character by the
project's definition (DESIGN.md, "Measures that compare models"):

- characters: for every held-out line, the tokenizer's join of its tokens plus one end-of-line;
- bits: every token of every held-out line, plus one end-of-line token per line, costs
  -log2 P(token | context). These models have no unknown-word token, so a held-out word missing from
  the training tokens costs an escape, -log2 e, plus its spelling, (characters + 1) x log2(distinct
  training characters + 1); every known token costs -log2 ((1 - e) P(token | context)). The escape
  probability e is the share of training tokens whose word occurs once (Good-Turing), at least
  1 / training tokens.

The perplexity reported beside is over the known tokens only (end-of-line included) and leaves the
(1 - e) factor out, as rnngen's `perplexity` does for a model without an unknown-word token.

    python benchmarks/ngram_baselines.py TRAIN HELDOUT [--tokenizer word|morph|char]   # both baselines
    python benchmarks/ngram_baselines.py --self-check   # each model's probabilities sum to 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Protocol

from rnngen.config import TokenizerConfig
from rnngen.data.corpus import corpus_text
from rnngen.inference.evaluation import text_characters
from rnngen.text import tokenize_lines

# No token holds a space (the tokenizers split lines at whitespace, and the char tokenizer turns spaces
# into its word-start mark), so these symbols cannot collide with a word, whatever --filters keeps.
START = "<start of line>"  # padding before a line's first word; never predicted
END = "<end of line>"  # the end-of-line token, predicted once per line
# Stands in the history for a held-out word the training tokens lack: a word no count mentions, so the
# trigram model backs off from it as from any unseen context.
UNSEEN = "<unseen word>"

TokenLines = Sequence[Sequence[str]]


class LanguageModel(Protocol):
    """P(word | the two tokens before it) over the training vocabulary plus the end-of-line."""

    def probability(self, word: str, first: str, second: str) -> float: ...


@dataclass(frozen=True)
class TrainingFacts:
    """What the open-vocabulary cost of a held-out text needs to know about the training tokens."""

    word_counts: Counter[str]
    tokens: int  # word tokens, end-of-lines not included
    lines: int
    escape_probability: float  # e: the chance that the next word is one the training tokens lack
    spelling_bits_per_character: float  # log2(distinct training characters + 1)

    @classmethod
    def of(cls, training: TokenLines) -> TrainingFacts:
        word_counts = Counter(chain.from_iterable(training))
        tokens = sum(word_counts.values())
        if tokens == 0:
            raise ValueError("the training text has no tokens")
        once = sum(1 for count in word_counts.values() if count == 1)
        characters = {character for word in word_counts for character in word}
        return cls(
            word_counts=word_counts,
            tokens=tokens,
            lines=len(training),
            escape_probability=max(once, 1) / tokens,
            spelling_bits_per_character=math.log2(len(characters) + 1),
        )

    def vocabulary(self) -> list[str]:
        """The tokens both models predict: every training word and the end-of-line."""
        return [*self.word_counts, END]


class AddOneUnigram:
    """P(w) = (count(w) + 1) / (N + V): N counts one end-of-line per line, V the end-of-line too."""

    def __init__(self, facts: TrainingFacts) -> None:
        self._counts = Counter(facts.word_counts)
        self._counts[END] = facts.lines
        self._denominator = facts.tokens + facts.lines + len(self._counts)

    def probability(self, word: str, first: str = START, second: str = START) -> float:
        return (self._counts[word] + 1) / self._denominator


def _discount(counts: Iterable[int]) -> float:
    """D = n1 / (n1 + 2 n2) from one order's count-of-counts (Ney, Essen and Kneser's estimate).

    A tiny corpus may lack singletons or doubletons; 0.5 then, and always within [0.1, 0.9], so that
    seen events keep most of their mass and the lower order always gets some.
    """
    count_of_counts = Counter(count for count in counts if count <= 2)
    ones, twos = count_of_counts[1], count_of_counts[2]
    discount = ones / (ones + 2 * twos) if ones and twos else 0.5
    return min(max(discount, 0.1), 0.9)


def _context_totals(counts: dict[tuple[str, ...], int]) -> dict[tuple[str, ...], tuple[int, int]]:
    """For each context (an n-gram less its last word): (sum of its counts, distinct words after it)."""
    totals: dict[tuple[str, ...], list[int]] = {}
    for ngram, count in counts.items():
        entry = totals.setdefault(ngram[:-1], [0, 0])
        entry[0] += count
        entry[1] += 1
    return {context: (total, types) for context, (total, types) in totals.items()}


class KneserNeyTrigram:
    """Interpolated Kneser-Ney (Chen and Goodman 1998), one discount per order.

    Lines are read as `<s> <s> w1 .. wk </s>`. The trigram level uses counts; the bigram and unigram
    levels use continuation counts (how many distinct words precede the n-gram), and the unigram level
    is interpolated with a uniform distribution over the vocabulary so every known word has a share.
    A context never seen in training hands its whole mass to the order below.
    """

    def __init__(self, training: TokenLines, vocabulary_size: int) -> None:
        # Keyed by tuples of any length, so that one helper totals both orders' contexts.
        trigrams: Counter[tuple[str, ...]] = Counter()
        padded_lines = ([START, START, *tokens, END] for tokens in training)
        # Counter.update over one chained iterator counts in C: about a second per million tokens. The
        # shifted copies are shorter by design, so zip stops at the last whole trigram.
        windows = (zip(line, line[1:], line[2:], strict=False) for line in padded_lines)
        trigrams.update(chain.from_iterable(windows))
        # Continuation counts: N1+(. v w) = distinct u before (v, w); N1+(. w) = distinct v before w.
        bigrams: Counter[tuple[str, ...]] = Counter((second, word) for _first, second, word in trigrams)
        unigrams = Counter(word for _second, word in bigrams)

        self._trigrams = dict(trigrams)
        self._bigrams = dict(bigrams)
        self._unigrams = dict(unigrams)
        self._trigram_contexts = _context_totals(self._trigrams)
        self._bigram_contexts = _context_totals(self._bigrams)
        self._unigram_total = sum(unigrams.values())
        self._unigram_types = len(unigrams)
        self._vocabulary_size = vocabulary_size
        self.discounts = (
            _discount(unigrams.values()),
            _discount(bigrams.values()),
            _discount(trigrams.values()),
        )

    def _unigram_probability(self, word: str) -> float:
        discount = self.discounts[0]
        kept = max(self._unigrams.get(word, 0) - discount, 0.0)
        uniform_share = discount * self._unigram_types
        return (kept + uniform_share / self._vocabulary_size) / self._unigram_total

    def _bigram_probability(self, word: str, second: str) -> float:
        lower = self._unigram_probability(word)
        context = self._bigram_contexts.get((second,))
        if context is None:
            return lower
        total, types = context
        discount = self.discounts[1]
        kept = max(self._bigrams.get((second, word), 0) - discount, 0.0)
        return (kept + discount * types * lower) / total

    def probability(self, word: str, first: str, second: str) -> float:
        lower = self._bigram_probability(word, second)
        context = self._trigram_contexts.get((first, second))
        if context is None:
            return lower
        total, types = context
        discount = self.discounts[2]
        kept = max(self._trigrams.get((first, second, word), 0) - discount, 0.0)
        return (kept + discount * types * lower) / total


@dataclass(frozen=True)
class BaselineScore:
    """One baseline on one held-out text."""

    bits_per_char: float
    perplexity: float  # over known tokens, end-of-line included, without the (1 - e) factor
    tokens: int  # every token predicted, one end-of-line per line included
    unknown_tokens: int
    oov_rate: float  # unknown tokens per word token (end-of-lines not counted), as rnngen reports it
    characters: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def score(model: LanguageModel, facts: TrainingFacts, heldout: TokenLines, characters: int) -> BaselineScore:
    """Total bits of the held-out lines under a model, per character; and the known tokens' perplexity."""
    escape_bits = -math.log2(facts.escape_probability)
    known_bits = -math.log2(1.0 - facts.escape_probability)
    known = facts.word_counts
    nats = 0.0
    bits = 0.0
    known_tokens = unknown_tokens = 0
    for tokens in heldout:
        first, second = START, START
        for word in chain(tokens, (END,)):
            if word == END or word in known:
                word_nats = -math.log(model.probability(word, first, second))
                nats += word_nats
                bits += known_bits + word_nats / math.log(2)
                known_tokens += 1
            else:
                bits += escape_bits + (len(word) + 1) * facts.spelling_bits_per_character
                unknown_tokens += 1
                word = UNSEEN
            first, second = second, word
    return BaselineScore(
        bits_per_char=bits / characters,
        perplexity=math.exp(nats / known_tokens),
        tokens=known_tokens + unknown_tokens,
        unknown_tokens=unknown_tokens,
        oov_rate=unknown_tokens / (known_tokens + unknown_tokens - len(heldout)),
        characters=characters,
    )


def read_token_lines(path: str | Path, tokenizer_config: TokenizerConfig) -> list[list[str]]:
    """The tokens of every non-empty line of a file, normalised and split as rnngen does."""
    text, _name = corpus_text(path)
    return tokenize_lines(text, tokenizer_config)


def baselines(
    training_path: str | Path, heldout_path: str | Path, tokenizer_config: TokenizerConfig
) -> dict[str, object]:
    """Both baselines of one training text on one held-out text, with their facts and seconds."""
    started = time.perf_counter()
    training = read_token_lines(training_path, tokenizer_config)
    heldout = read_token_lines(heldout_path, tokenizer_config)
    characters = text_characters(heldout, tokenizer_config)
    facts = TrainingFacts.of(training)
    unigram = score(AddOneUnigram(facts), facts, heldout, characters)
    trigram_model = KneserNeyTrigram(training, len(facts.vocabulary()))
    trigram = score(trigram_model, facts, heldout, characters)
    return {
        "training_tokens": facts.tokens,
        "training_vocabulary": len(facts.word_counts),
        "escape_probability": facts.escape_probability,
        "kn3_discounts": trigram_model.discounts,
        "unigram": unigram.to_json(),
        "kn3": trigram.to_json(),
        "seconds": time.perf_counter() - started,
    }


TOY_CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat saw a dog",
    "the cat ran",
    "dogs and cats",
    "the mat",
]


def self_check(
    training: TokenLines | None = None, most_seen_histories: int = 100, tolerance: float = 1e-9
) -> list[str]:
    """Sum each model's P(. | context) over the vocabulary for several contexts; return the failures.

    The contexts: histories seen in training (the first ``most_seen_histories`` in sorted order, which
    on the toy corpus is all of them), and histories holding a word or the unseen symbol in a place no
    count mentions, so every back-off path is taken.
    """
    training = [line.split() for line in TOY_CORPUS] if training is None else training
    facts = TrainingFacts.of(training)
    vocabulary = facts.vocabulary()
    trigram = KneserNeyTrigram(training, len(vocabulary))
    seen = sorted({(first, second) for first, second, _word in trigram._trigrams})
    some_word = vocabulary[0]
    unseen = {(UNSEEN, UNSEEN), (START, UNSEEN), (UNSEEN, some_word), (some_word, UNSEEN), (END, some_word)}
    histories = [*seen[:most_seen_histories], *sorted(unseen)]
    failures = []
    models: dict[str, LanguageModel] = {"unigram": AddOneUnigram(facts), "kn3": trigram}
    for name, model in models.items():
        for first, second in histories:
            total = math.fsum(model.probability(word, first, second) for word in vocabulary)
            if abs(total - 1.0) > tolerance or any(model.probability(word, first, second) <= 0 for word in vocabulary):
                failures.append(f"{name}: P(. | {first!r} {second!r}) sums to {total!r}")
    return failures


def _run_self_check() -> int:
    failures = self_check()
    for failure in failures:
        print(failure)
    print("self-check: " + ("FAILED" if failures else "every distribution sums to 1"))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training", nargs="?", help="training text")
    parser.add_argument("heldout", nargs="?", help="held-out text")
    parser.add_argument("--tokenizer", default="word", choices=["word", "morph", "char"])
    parser.add_argument("--self-check", action="store_true", help="check that the models' probabilities sum to 1")
    options = parser.parse_args(argv)
    if options.self_check:
        return _run_self_check()
    if options.training is None or options.heldout is None:
        parser.error("give TRAIN and HELDOUT, or --self-check")
    result = baselines(options.training, options.heldout, TokenizerConfig(kind=options.tokenizer))
    for name in ("unigram", "kn3"):
        scores = result[name]
        assert isinstance(scores, dict)
        print(f"{name:<8} bpc {scores['bits_per_char']:.4f}  ppl {scores['perplexity']:.1f}")
    print(f"escape e {result['escape_probability']:.4f}; {result['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
