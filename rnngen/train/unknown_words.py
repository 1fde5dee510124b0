"""After a run that read words seen once as <unk> (--unk-singletons): the unknown word's probability set
right, and the words of the lines held out for validation given ids of their own.

Both steps work on the kept weights, before the model folder is written; the checkpoint keeps the
weights as trained, so a resumed run takes them again from the same place.

1. **How often a new word comes.** Training read only a share P of the words seen once as <unk>, while
   Good-Turing expects a later text to hold new words about as often as the training text held words
   seen once: the model learns where new words come, but too few of them. <unk>'s output bias is
   shifted so that, over the held-out lines, the probabilities the model gives <unk> add up to the
   unknown words those lines hold (one number fitted on thousands of positions, as the epoch kept is
   chosen on them). Without held-out lines, the shift is log(1 / P).
2. **Words only the held-out lines have.** Validation must treat them as unknown, but once validation
   has done its work they are words of the user's corpus like any seen once, and the trigram a model
   is compared with knows them. Each gets an id whose embedding and output row are copies of <unk>'s
   (where new words come, and what follows one, is all the model could learn of them), and whose
   output bias takes the share of <unk>'s probability that absolute discounting gives its count:
   (count - D) / corpus tokens of the text, against the held-out lines' unknown words per target, with
   Kneser-Ney's D = n1 / (n1 + 2 n2) from the training counts. <unk> keeps the rest. This is done only
   when the vocabulary holds every training word (no --max-vocab or --min-count), since those options
   leave words out on purpose.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from rnngen.data.vocab import Vocabulary
from rnngen.inference.evaluation import unknown_word_chances
from rnngen.network.weights import EMBEDDING, OUTPUT_BIAS, OUTPUT_KERNEL, Weights
from rnngen.store.folder import StoredModel

if TYPE_CHECKING:
    from rnngen.train.setup import PreparedRun

# The most of <unk>'s probability the held-out lines' words may take between them: new words must
# keep most of it, whatever the counts say.
MOST_HELD_OUT_SHARE = 0.5
# Absolute discounting's D is estimated from the counts, but kept below 1 (which would leave a word seen
# once nothing).
MOST_DISCOUNT = 0.9
# The bias shift is searched within +-SHIFT_BOUND nats (a factor of e^12 either way is far beyond any fit).
SHIFT_BOUND = 12.0


@dataclass(frozen=True)
class UnknownWordFit:
    """What the steps did, as config.json records it."""

    bias_shift: float  # nats added to <unk>'s output bias
    fitted_on: str  # "held-out lines", or "replacement rate" (log 1 / P) when none were held out
    held_out_words: int  # words given ids of their own, from the held-out lines
    held_out_share: float  # the share of <unk>'s probability they took


def fitted_bias_shift(chances: np.ndarray, unknown: np.ndarray) -> float:
    """The shift s of <unk>'s logit after which the chances (each p, becoming p e^s / (1 - p + p e^s))
    add up to the unknown targets: the shift that maximises the lines' likelihood, by bisection, since
    the sum grows with s. Lines without an unknown word are fitted as though one target were unknown
    (as the escape probability is at least one token's share): a new word is never ruled out."""
    target = float(max(unknown.sum(), 1))
    chances = np.clip(chances.astype(np.float64), 1e-300, 1.0 - 1e-12)
    low, high = -SHIFT_BOUND, SHIFT_BOUND
    for _ in range(60):
        middle = (low + high) / 2
        scale = math.exp(middle)
        total = float((chances * scale / (1.0 - chances + chances * scale)).sum())
        if total > target:
            high = middle
        else:
            low = middle
    return (low + high) / 2


def with_bias_shift(weights: Weights, unknown_id: int, shift: float) -> Weights:
    """The weights with ``shift`` added to <unk>'s output bias (a new array; the others shared)."""
    bias = weights[OUTPUT_BIAS].copy()
    bias[unknown_id] += shift
    return {**weights, OUTPUT_BIAS: bias}


def held_out_only_counts(vocabulary: Vocabulary, validation_lines: Sequence[Sequence[str]]) -> Counter[str]:
    """How often each word of the held-out lines that the vocabulary lacks occurs there."""
    return Counter(
        token
        for tokens in validation_lines
        for token in tokens
        if vocabulary.id_of(token) is None and token != vocabulary.unknown_marker
    )


def absolute_discount(target_counts: np.ndarray, vocabulary: Vocabulary) -> float:
    """Kneser-Ney's discount D = n1 / (n1 + 2 n2) from the words' training counts: 0.5 when no word was
    seen once, and at most MOST_DISCOUNT, so that a word seen once keeps a share (a tiny text may have
    no word seen twice)."""
    words = target_counts[1 : vocabulary.end_of_line_id]
    once, twice = int((words == 1).sum()), int((words == 2).sum())
    return min(once / (once + 2 * twice), MOST_DISCOUNT) if once else 0.5


def with_held_out_words(
    vocabulary: Vocabulary,
    weights: Weights,
    counts: Counter[str],
    discount: float,
    corpus_tokens: int,
    unknown_rate: float,
) -> tuple[Vocabulary, Weights, float]:
    """The vocabulary with ``counts``' words appended (most frequent first), the weights with their rows,
    and the share of <unk>'s probability they took (module docstring, step 2). The special ids move
    up behind the new words, their rows with them."""
    unknown_id = vocabulary.unknown_id
    assert unknown_id is not None
    new_words = [word for word, _ in sorted(counts.items(), key=lambda item: item[1], reverse=True)]
    shares = np.array([(counts[word] - discount) / corpus_tokens / unknown_rate for word in new_words])
    if shares.sum() > MOST_HELD_OUT_SHARE:
        shares *= MOST_HELD_OUT_SHARE / shares.sum()
    extended = Vocabulary(
        vocabulary.words + tuple(new_words), has_unknown=True, unknown_marker=vocabulary.unknown_marker
    )
    # Old id -> new id: the words keep theirs, the new ones copy <unk>, then <eol> and <unk>.
    rows = np.array(
        [*range(vocabulary.end_of_line_id), *[unknown_id] * len(new_words), vocabulary.end_of_line_id, unknown_id]
    )
    bias = weights[OUTPUT_BIAS][rows].astype(np.float64)
    first_new = vocabulary.end_of_line_id
    bias[first_new : first_new + len(new_words)] += np.log(shares)
    bias[extended.unknown_id] += math.log(1.0 - shares.sum())
    extended_weights = {
        **weights,
        EMBEDDING: weights[EMBEDDING][rows],
        OUTPUT_KERNEL: weights[OUTPUT_KERNEL][:, rows],
        OUTPUT_BIAS: bias.astype(weights[OUTPUT_BIAS].dtype),
    }
    return extended, extended_weights, float(shares.sum())


def fit_unknown_word(
    stored: StoredModel,
    probability: float,
    validation_lines: Sequence[Sequence[str]] | None,
) -> tuple[StoredModel, float, str, float]:
    """Step 1: the model with <unk>'s bias shifted, the shift, what it was fitted on, and the unknown
    words per held-out target after it (0 without held-out lines)."""
    unknown_id = stored.vocabulary.unknown_id
    assert unknown_id is not None
    if validation_lines:
        chances, unknown = unknown_word_chances(stored, validation_lines)
        if len(chances):
            shift = fitted_bias_shift(chances, unknown)
            fitted = replace(stored, weights=with_bias_shift(stored.weights, unknown_id, shift))
            return fitted, shift, "held-out lines", float(unknown.mean())
    shift = math.log(1.0 / probability)
    return replace(stored, weights=with_bias_shift(stored.weights, unknown_id, shift)), shift, "replacement rate", 0.0


@dataclass(frozen=True)
class SettledModel:
    """The kept model after the steps: ``scored`` after step 1 (what the held-out figures describe: its
    vocabulary is still the one validation read), ``saved`` after step 2 too; ``fit`` None when the
    run read nothing as <unk> and nothing was done."""

    scored: StoredModel
    saved: StoredModel
    fit: UnknownWordFit | None


def settle_unknown_words(run: PreparedRun, kept: StoredModel) -> SettledModel:
    """Both steps of the module's docstring, for a run that read words seen once as <unk>."""
    probability = run.training.unk_singletons or 0.0
    vocabulary = kept.vocabulary
    if probability <= 0.0 or vocabulary.unknown_id is None:
        return SettledModel(kept, kept, None)
    validation_lines = run.corpus.validation_lines
    scored, shift, fitted_on, unknown_rate = fit_unknown_word(kept, probability, validation_lines)
    counts: Counter[str] = Counter()
    # Words of a --valid file are not the corpus's; a vocabulary cut short leaves words out on purpose.
    whole_vocabulary = run.training.max_vocab is None and run.training.min_count <= 1
    if validation_lines and run.request.validation is None and whole_vocabulary and unknown_rate > 0.0:
        counts = held_out_only_counts(vocabulary, validation_lines)
    saved, share = scored, 0.0
    if counts:
        discount = absolute_discount(run.training_plan.target_counts, vocabulary)
        extended, weights, share = with_held_out_words(
            vocabulary, scored.weights, counts, discount, run.corpus.tokens, unknown_rate
        )
        model = replace(scored.model, vocab_size=extended.size)
        saved = replace(scored, vocabulary=extended, model=model, weights=weights)
    return SettledModel(scored, saved, UnknownWordFit(shift, fitted_on, len(counts), share))
