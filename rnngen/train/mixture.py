"""After calibration: the kept network mixed with a Kneser-Ney trigram of the training lines
(rnngen/network/trigram.py), the mixture's weight fitted on the held-out lines.

The trigram is counted from the training lines alone, so the held-out lines score the mixture honestly
(the summary's validation figures are the mixture's), and the weight lambda of the network is the one
that makes them likeliest: the EM update lambda <- mean of lambda p_network / (lambda p_network + (1 -
lambda) p_trigram) over the held-out targets climbs to the maximum of a concave likelihood. Once the
weight is fitted, the saved model's trigram counts the held-out lines too: they are lines of the user's
corpus like any other, as calibration's second step has it for their words. On the
benchmark cuts it came out at 0.5 to 0.77 (benchmarks/RESULTS.md): the network carries most of the
weight, the counts add what they know exactly of pairs and triples it has seen a few times.

It is done with the calibration, when a run read words seen once as <unk> (the numpy engine on real
text), and only when lines were held out to fit the weight on and the training lines are few enough
(MOST_TOKENS) for their trigrams to be counted in memory. The model folder keeps the counts
(trigram.npz) and config.json the weight; `rnngen train --no-trigram` keeps the network alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from rnngen.config import ContextKind
from rnngen.data.batches import TokenStream
from rnngen.data.line_blocks import LineBlocks
from rnngen.data.vocab import PADDING_ID
from rnngen.inference.evaluation import ROWS_PER_SOFTMAX, line_outputs
from rnngen.network.forward import softmax
from rnngen.network.trigram import KneserNeyTrigram, TrigramMixture, contexts_before, counted_trigrams
from rnngen.network.weights import OUTPUT_BIAS, OUTPUT_KERNEL
from rnngen.store.folder import StoredModel

if TYPE_CHECKING:
    from rnngen.train.setup import PreparedRun

# Training lines of more tokens than this are not counted: their trigrams' keys would take gigabytes.
MOST_TOKENS = 20_000_000
# Fewer held-out targets than this are too few to weigh the two models by.
MIN_TARGETS = 200
# The network's weight stays within these bounds: neither model is ever ruled out.
WEIGHT_BOUNDS = (0.05, 0.995)


@dataclass(frozen=True)
class MixtureRecord:
    """What config.json records of the mixture (folder.py reads ``network_weight`` and ``escape``)."""

    network_weight: float
    escape: float  # the trigram's chance of a new word, given to <unk>
    trigrams: int  # distinct trigrams the saved model counts
    fitted_on: int  # held-out targets the weight was fitted on


def training_streams(stream: TokenStream | LineBlocks) -> Iterator[TokenStream]:
    """The training lines' ids, a block at a time."""
    if isinstance(stream, TokenStream):
        yield stream
        return
    for block in range(stream.block_count):
        yield stream.stream(block)


def fitted_network_weight(network: np.ndarray, trigram: np.ndarray) -> float:
    """The lambda that maximises sum log(lambda network + (1 - lambda) trigram) over the targets'
    probabilities, by EM; within WEIGHT_BOUNDS."""
    weight = 0.5
    for _ in range(500):
        mixed = weight * network + (1.0 - weight) * trigram
        updated = float(np.mean(weight * network / mixed))
        if abs(updated - weight) < 1e-7:
            weight = updated
            break
        weight = updated
    return float(np.clip(weight, *WEIGHT_BOUNDS))


def target_probabilities(
    stored: StoredModel, token_lines: Sequence[Sequence[str]], trigram: KneserNeyTrigram
) -> tuple[np.ndarray, np.ndarray]:
    """Both models' probabilities of every target of the lines with an id, read as `evaluate` reads
    them in line context: (network, trigram), each (targets,) float64."""
    kernel, bias = stored.weights[OUTPUT_KERNEL], stored.weights[OUTPUT_BIAS]
    end_of_line = stored.vocabulary.end_of_line_id
    network: list[np.ndarray] = [np.zeros(0)]
    firsts: list[int] = []
    seconds: list[int] = []
    targets: list[int] = []
    for _, outputs, line_targets in line_outputs(stored, token_lines, ContextKind.line):
        read = [end_of_line]  # the ids the network has read before each target
        rows = []
        for row, target in enumerate(line_targets):
            if target is not None:
                first, second = contexts_before(read[-2:])
                firsts.append(first)
                seconds.append(second)
                targets.append(target)
                rows.append(row)
                read.append(target)
        for start in range(0, len(rows), ROWS_PER_SOFTMAX):
            chunk = rows[start : start + ROWS_PER_SOFTMAX]
            chosen = np.array([line_targets[row] for row in chunk], dtype=np.int64)
            probabilities = softmax((outputs[chunk] @ kernel + bias).astype(np.float64))
            network.append(probabilities[np.arange(len(chunk)), chosen])
    trigram_probabilities = trigram.probabilities(np.array(targets), np.array(firsts), np.array(seconds))
    return np.concatenate(network), trigram_probabilities


def trigram_of(run: PreparedRun, stored: StoredModel) -> KneserNeyTrigram:
    """The trigram of the run's training lines over ``stored``'s vocabulary (the run's own)."""
    vocabulary = stored.vocabulary
    keys, counts = counted_trigrams(training_streams(run.corpus.stream), vocabulary.size, vocabulary.end_of_line_id)
    return KneserNeyTrigram(keys, counts, vocabulary.size, vocabulary.unknown_id, run.corpus.counts.escape_probability)


def held_out_stream(run: PreparedRun, saved: StoredModel) -> TokenStream | None:
    """The corpus's held-out lines as the saved vocabulary's ids (a word it lacks as <unk>), for the saved
    model's trigram; None for a --valid file's lines, which are not the corpus's, and in a vocabulary
    without <unk>."""
    lines = run.corpus.validation_lines
    if run.request.validation is not None or not lines or saved.vocabulary.unknown_id is None:
        return None
    return TokenStream.from_lines([saved.vocabulary.encode(tokens).ids for tokens in lines])


def id_map_between(before: StoredModel, after: StoredModel) -> np.ndarray | None:
    """Old id -> new id when calibration gave held-out words ids (the words keep theirs; <eol> and <unk>
    move up behind the new ones); None when the vocabulary is the same."""
    old, new = before.vocabulary, after.vocabulary
    if old.size == new.size:
        return None
    mapping = np.arange(old.size, dtype=np.int64)
    mapping[old.end_of_line_id] = new.end_of_line_id
    if old.unknown_id is not None and new.unknown_id is not None:
        mapping[old.unknown_id] = new.unknown_id
    mapping[PADDING_ID] = PADDING_ID
    return mapping


@dataclass(frozen=True)
class MixedModel:
    """The calibrated models with the mixture: ``scored`` (the validation vocabulary's, for the held-out
    figures) and ``saved``; ``record`` None when no mixture was made."""

    scored: StoredModel
    saved: StoredModel
    record: MixtureRecord | None


def mix(run: PreparedRun, scored: StoredModel, saved: StoredModel) -> MixedModel:
    """The module's docstring: a trigram and its weight for a run whose network was calibrated."""
    validation_lines = run.corpus.validation_lines
    if not run.request.trigram or not validation_lines or run.corpus.counts.tokens > MOST_TOKENS:
        return MixedModel(scored, saved, None)
    trigram = trigram_of(run, scored)
    network, counted = target_probabilities(scored, validation_lines, trigram)
    if len(network) < MIN_TARGETS:
        return MixedModel(scored, saved, None)
    weight = round(fitted_network_weight(network, counted), 6)
    id_map = id_map_between(scored, saved)
    vocabulary = saved.vocabulary
    saved_trigram = trigram if id_map is None else trigram.remapped(id_map, vocabulary.size, vocabulary.unknown_id)
    held_out = held_out_stream(run, saved)
    if held_out is not None:
        saved_trigram = saved_trigram.with_lines(held_out, vocabulary.end_of_line_id)
    record = MixtureRecord(weight, trigram.escape, len(saved_trigram.trigram_keys), len(network))
    return MixedModel(
        replace(scored, mixture=TrigramMixture(trigram, weight)),
        replace(saved, mixture=TrigramMixture(saved_trigram, weight)),
        record,
    )
