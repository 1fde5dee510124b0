"""After a run that read words seen once as <unk> (--unk-singletons): the output layer calibrated on the
held-out lines, and the words only those lines hold given ids of their own.

Both steps work on the kept weights, before the model folder is written; the checkpoint keeps the
weights as trained, so a resumed run takes them again from the same place.

1. **Calibration.** First a temperature: the logits are scaled by the one factor that makes the held-out
   lines likeliest. A network trained with dropout and read without it is a little too sure of itself
   (the factor came out at 0.95 to 0.97). Then the ids fall into classes: words by how often the training
   lines hold them (once, twice, 3-4, 5-8, 9-16, 17-64, 65-256, more: CLASS_EDGES), the end of line, and
   <unk>. One shift per class is added to the output bias, fitted to maximise the held-out lines'
   likelihood, so that the probabilities each class receives over the held-out targets add up to the
   targets it holds. Training leaves them off in known ways: it read only a share P of the words seen once
   as <unk>, while Good-Turing expects new words about as often as words seen once, so <unk> comes out
   about 1 / P too unlikely; the rarest words, few of whose gradients reached their rows, come out too
   unlikely as well; and the end of line too likely. (On 10,000 Korean reviews the fitted shifts were +0.74
   nats for <unk>, +0.78 for words seen once and -0.47 for the end of line.) Twelve numbers fitted on
   thousands of positions, as the kept epoch is chosen on them. A class with fewer than MIN_CLASS_TARGETS
   held-out targets keeps its bias, but <unk> is always fitted, as though at least one target were
   unknown: a new word is never ruled out. The temperature needs MIN_TEMPERATURE_TARGETS targets. Without
   held-out lines only <unk> is shifted, by log(1 / P). A scaled output kernel is no longer the embedding's
   transpose, so a tied model is saved untied (its output kernel the embedding's transpose, scaled).
2. **Words only the held-out lines have.** Validation must treat them as unknown, but once validation
   has done its work they are words of the user's corpus like any seen once, and the trigram a model
   is compared with knows them. Each gets an id whose embedding and output row are copies of <unk>'s
   (where new words come, and what follows one, is all the model could learn of them), and whose
   output bias takes the share of <unk>'s probability that absolute discounting gives its count:
   (count - D) / corpus tokens, against the held-out lines' unknown words per target, with Kneser-Ney's
   D = n1 / (n1 + 2 n2) from the training counts. <unk> keeps the rest. This is done only when the
   vocabulary holds every training word (no --max-vocab or --min-count), since those options leave
   words out on purpose, and only for lines held out of the corpus, not a --valid file's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from rnngen.data.vocab import Vocabulary
from rnngen.inference.evaluation import ROWS_PER_SOFTMAX, held_out_outputs
from rnngen.network.forward import softmax
from rnngen.network.weights import EMBEDDING, OUTPUT_BIAS, OUTPUT_KERNEL, Weights
from rnngen.store.folder import StoredModel

if TYPE_CHECKING:
    from rnngen.train.setup import PreparedRun

# Words' classes by training count: class k holds the words seen CLASS_EDGES[k] times or more, and
# fewer than the next edge. Then the end of line, <unk>, and padding (never a target: never fitted).
CLASS_EDGES = (1, 2, 3, 5, 9, 17, 65, 257)
END_OF_LINE_CLASS = len(CLASS_EDGES)
UNKNOWN_CLASS = END_OF_LINE_CLASS + 1
PADDING_CLASS = UNKNOWN_CLASS + 1


def _count_class_name(low: int, next_edge: int | None) -> str:
    if next_edge is None:
        return f"seen {low}+"
    return f"seen {low}" if next_edge == low + 1 else f"seen {low}-{next_edge - 1}"


CLASS_NAMES = (
    *(_count_class_name(low, high) for low, high in zip(CLASS_EDGES, [*CLASS_EDGES[1:], None], strict=True)),
    "<eol>",
    "<unk>",
)
# Fewer held-out targets than this leave a class's bias as trained: too few to fit it on.
MIN_CLASS_TARGETS = 20
# Fewer held-out targets than this leave the logits' scale as trained; more than MOST_TEMPERATURE_TARGETS
# fit it on that many, evenly spread (one number needs no more, and each Newton step is a pass over them).
MIN_TEMPERATURE_TARGETS = 1_000
MOST_TEMPERATURE_TARGETS = 20_000
# The scale is kept within these bounds (a model far off them would need more than calibrating).
SCALE_BOUNDS = (0.5, 2.0)
# A shift is kept within +-SHIFT_BOUND nats, and a Newton step within +-MOST_STEP.
SHIFT_BOUND = 12.0
MOST_STEP = 2.0
# Absolute discounting's D is estimated from the counts, but kept below 1 (which would leave a word seen
# once nothing).
MOST_DISCOUNT = 0.9
# The most of <unk>'s probability the held-out lines' words may take between them: new words must keep
# most of it, whatever the counts say.
MOST_HELD_OUT_SHARE = 0.5


@dataclass(frozen=True)
class Calibration:
    """What the steps did, as config.json records it."""

    logit_scale: float  # the factor the logits were scaled by (1: none), 1 / the temperature
    shifts: dict[str, float]  # nats added to each class's output bias, by class name
    fitted_on: str  # "held-out lines", or "replacement rate" (<unk> alone, by log 1 / P) when none were held out
    held_out_words: int  # words given ids of their own, from the held-out lines
    held_out_share: float  # the share of <unk>'s probability they took


def id_classes(vocabulary: Vocabulary, target_counts: np.ndarray) -> np.ndarray:
    """(vocab_size,): each id's class (module docstring), words by their count among the training targets."""
    classes = np.full(vocabulary.size, PADDING_CLASS, dtype=np.int64)
    words = slice(1, vocabulary.end_of_line_id)
    classes[words] = np.searchsorted(CLASS_EDGES, np.maximum(target_counts[words], 1), side="right") - 1
    classes[vocabulary.end_of_line_id] = END_OF_LINE_CLASS
    if vocabulary.unknown_id is not None:
        classes[vocabulary.unknown_id] = UNKNOWN_CLASS
    return classes


def _logit_chunks(outputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """The held-out positions' logits, ROWS_PER_SOFTMAX positions at a time (float64), with their rows:
    computed again on each pass, since all of them at once would take positions x vocabulary floats
    (gigabytes for 20,000 targets and a 50,000-word vocabulary)."""
    for start in range(0, len(outputs), ROWS_PER_SOFTMAX):
        rows = slice(start, start + ROWS_PER_SOFTMAX)
        yield rows, (outputs[rows] @ kernel + bias).astype(np.float64)


def fitted_logit_scale(outputs: np.ndarray, targets: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> float:
    """The factor s on the logits z that maximises sum log softmax(s z)[target] over the positions, by
    Newton's method: the derivative is sum (z_target - E[z]) and the second derivative -sum Var[z], both
    under softmax(s z), so the function is concave and a few steps do. Within SCALE_BOUNDS."""
    scale = 1.0
    for _ in range(30):
        gradient = curvature = 0.0
        for rows, logits in _logit_chunks(outputs, kernel, bias):
            probabilities = softmax(scale * logits)
            mean = (probabilities * logits).sum(axis=1)
            spread = (probabilities * logits * logits).sum(axis=1) - mean * mean
            chosen = logits[np.arange(len(logits)), targets[rows]]
            gradient += float((chosen - mean).sum())
            curvature += float(spread.sum())
        step = float(np.clip(gradient / max(curvature, 1e-12), -0.25, 0.25))
        scale = float(np.clip(scale + step, *SCALE_BOUNDS))
        if abs(step) < 1e-7:
            break
    return scale


def class_masses(
    outputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray, classes: np.ndarray, class_count: int
) -> np.ndarray:
    """(positions, class_count): the probability each class of ids gets at each held-out position."""
    membership = np.zeros((len(classes), class_count))
    membership[np.arange(len(classes)), classes] = 1.0
    masses = np.zeros((len(outputs), class_count))
    for rows, logits in _logit_chunks(outputs, kernel, bias):
        masses[rows] = softmax(logits) @ membership
    return masses


def fitted_class_shifts(masses: np.ndarray, targets: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """The shifts s (one per class) that maximise sum_k targets_k s_k - sum_positions log sum_k masses_k e^s_k,
    the held-out log-likelihood once each class's logits move by its shift; only the classes ``fitted``
    move, the others keep 0. Newton's method on a concave function, steps bounded; at the optimum each
    fitted class's probabilities add up to its targets."""
    shifts = np.zeros(masses.shape[1])
    chosen = np.flatnonzero(fitted)
    if len(chosen) == 0:
        return shifts
    for _ in range(100):
        weighted = masses * np.exp(shifts)
        probabilities = weighted / weighted.sum(axis=1, keepdims=True)
        expected = probabilities.sum(axis=0)
        gradient = (targets - expected)[chosen]
        hessian = (probabilities.T @ probabilities - np.diag(expected))[np.ix_(chosen, chosen)]
        step = np.linalg.lstsq(hessian, -gradient, rcond=None)[0]
        step = np.clip(step, -MOST_STEP, MOST_STEP)
        shifts[chosen] = np.clip(shifts[chosen] + step, -SHIFT_BOUND, SHIFT_BOUND)
        if np.abs(step).max() < 1e-9:
            break
    return shifts


def calibrated_shifts(masses: np.ndarray, target_classes: np.ndarray) -> np.ndarray:
    """The shifts for the held-out lines' class probabilities and target classes: classes with
    MIN_CLASS_TARGETS targets or more are fitted, and <unk> always, as though at least one target were
    unknown. The class with the most targets would do as well as any as the fixed point the others move
    against, since moving every class alike changes nothing: it is held at 0 so that the shifts read
    as relative to the commonest words."""
    targets = np.bincount(target_classes[target_classes >= 0], minlength=masses.shape[1]).astype(np.float64)
    targets[UNKNOWN_CLASS] = max(targets[UNKNOWN_CLASS], 1.0)
    fitted = targets >= MIN_CLASS_TARGETS
    fitted[UNKNOWN_CLASS] = True
    fitted[PADDING_CLASS] = False
    others = fitted.copy()
    others[UNKNOWN_CLASS] = False
    if others.any():
        fitted[int(np.argmax(np.where(others, targets, -1.0)))] = False
    return fitted_class_shifts(masses, targets, fitted)


def calibrated_weights(weights: Weights, scale: float, classes: np.ndarray, shifts: np.ndarray) -> Weights:
    """The weights with the output layer scaled by ``scale`` and each id's output bias then moved by its
    class's shift (new arrays for the output layer; the others shared)."""
    kernel = weights[OUTPUT_KERNEL]
    bias = scale * weights[OUTPUT_BIAS].astype(np.float64) + shifts[classes]
    return {
        **weights,
        OUTPUT_KERNEL: kernel if scale == 1.0 else (scale * kernel).astype(kernel.dtype),
        OUTPUT_BIAS: bias.astype(weights[OUTPUT_BIAS].dtype),
    }


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


def fitted_calibration(
    kept: StoredModel, validation_lines: Sequence[Sequence[str]] | None, classes: np.ndarray, probability: float
) -> tuple[float, np.ndarray, float]:
    """Step 1's numbers: the logits' scale, each class's shift, and the unknown words per held-out target
    (0 without held-out lines, where only <unk> moves, by log 1 / P)."""
    shifts = np.zeros(len(CLASS_NAMES) + 1)
    if not validation_lines:
        shifts[UNKNOWN_CLASS] = math.log(1.0 / probability)
        return 1.0, shifts, 0.0
    outputs, targets = held_out_outputs(kept, validation_lines)
    kernel, bias = kept.weights[OUTPUT_KERNEL], kept.weights[OUTPUT_BIAS]
    scale = 1.0
    if len(targets) >= MIN_TEMPERATURE_TARGETS:
        spread = np.linspace(0, len(targets) - 1, min(len(targets), MOST_TEMPERATURE_TARGETS)).astype(np.int64)
        scale = fitted_logit_scale(outputs[spread], targets[spread], kernel, bias)
    masses = class_masses(outputs, scale * kernel, scale * bias, classes, len(shifts))
    target_classes = classes[targets]
    unknown_rate = max(float((target_classes == UNKNOWN_CLASS).sum()), 1.0) / len(target_classes)
    return scale, calibrated_shifts(masses, target_classes), unknown_rate


@dataclass(frozen=True)
class CalibratedModel:
    """The kept model after the steps: ``scored`` after step 1 (what the held-out figures describe: its
    vocabulary is still the one validation read), ``saved`` after step 2 too; ``calibration`` None when
    the run read nothing as <unk> and nothing was done."""

    scored: StoredModel
    saved: StoredModel
    calibration: Calibration | None


def calibrate(run: PreparedRun, kept: StoredModel) -> CalibratedModel:
    """Both steps of the module's docstring, for a run that read words seen once as <unk>."""
    probability = run.training.unk_singletons or 0.0
    vocabulary = kept.vocabulary
    if probability <= 0.0 or vocabulary.unknown_id is None:
        return CalibratedModel(kept, kept, None)
    classes = id_classes(vocabulary, run.training_plan.target_counts)
    validation_lines = run.corpus.validation_lines
    scale, shifts, unknown_rate = fitted_calibration(kept, validation_lines, classes, probability)
    model = kept.model
    if scale != 1.0 and model.tie_embeddings:
        model = replace(model, tie_embeddings=False)
    scored = replace(kept, model=model, weights=calibrated_weights(kept.weights, scale, classes, shifts))
    counts: Counter[str] = Counter()
    # Words of a --valid file are not the corpus's; a vocabulary cut short leaves words out on purpose.
    whole_vocabulary = run.training.max_vocab is None and run.training.min_count <= 1
    if validation_lines and run.request.validation is None and whole_vocabulary:
        counts = held_out_only_counts(vocabulary, validation_lines)
    saved, share = scored, 0.0
    if counts:
        discount = absolute_discount(run.training_plan.target_counts, vocabulary)
        extended, weights, share = with_held_out_words(
            vocabulary, scored.weights, counts, discount, run.corpus.tokens, unknown_rate
        )
        saved = replace(
            scored, vocabulary=extended, model=replace(scored.model, vocab_size=extended.size), weights=weights
        )
    calibration = Calibration(
        logit_scale=round(scale, 6),
        shifts={name: round(float(shift), 6) for name, shift in zip(CLASS_NAMES, shifts, strict=False)},
        fitted_on="held-out lines" if validation_lines else "replacement rate",
        held_out_words=len(counts),
        held_out_share=share,
    )
    return CalibratedModel(scored, saved, calibration)
