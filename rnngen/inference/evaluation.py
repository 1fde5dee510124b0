"""Scores a model on a text: perplexity, next-word accuracy, unknown-word rate, bits per character.

Protocol: each line's tokens plus one end-of-line token are predicted from the tokens before them.
In line context every line is read from a fresh state after an end-of-line id; in stream context (the
Penn Treebank literature's protocol) the state is carried from line to line, so a prediction may use
the lines before it. Tokens outside the vocabulary are read as the unknown word when the model
has one; otherwise they are skipped as inputs and left out of perplexity and accuracy, and counted
in the unknown-word rate. A model mixed with a trigram (rnngen/network/trigram.py) is scored by the
mixture's probabilities, the trigram reading the same ids within the line.

Bits per character charge every unknown token for the unknown-word event and for its spelling, so that
no tokenizer or vocabulary policy profits from unknown words (the definition is in the README's
"Measuring a model"): a model with <unk> pays -log2 P(<unk> | context); one without pays -log2 e for the
escape probability e estimated from its training text, and its known tokens then -log2 (1 - e) each on
top of their own probability. The text's own unknown-word marker (``--unk-token``) is the unknown-word
event as written: it costs that alone, and counts among the unknown tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rnngen.config import ContextKind, TokenizerConfig
from rnngen.data.corpus import corpus_text
from rnngen.data.vocab import PADDING_ID
from rnngen.errors import CorpusError, UsageError
from rnngen.network.forward import NumpyLanguageModel, State, log_softmax
from rnngen.network.trigram import TrigramMixture, contexts_before
from rnngen.network.weights import OUTPUT_KERNEL
from rnngen.store.folder import StoredModel
from rnngen.text import make_tokenizer, tokenize_lines

LINES_PER_BATCH = 64
ROWS_PER_SOFTMAX = 2048  # positions scored at once: bounds memory at rows x vocabulary floats


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model on one text."""

    perplexity: float
    top1_accuracy: float
    top5_accuracy: float
    oov_rate: float
    bits_per_char: float
    tokens: int  # every token predicted, one end-of-line per line included
    scored_tokens: int  # those inside the vocabulary (or read as the unknown word)
    unknown_tokens: int
    lines: int
    characters: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class _Line:
    inputs: list[int]  # <eol> then the ids of the tokens the model can read
    targets: list[int | None]  # each token's id (None: outside the vocabulary), then <eol>
    positions: list[int]  # for each target, the index of the input after which it is predicted
    unknown_spellings: list[str]  # tokens without any id, for their spelling cost
    markers: int  # the text's own unknown-word markers (--unk-token): unknown words already spelt out of it


def _prepare(tokens: Sequence[str], stored: StoredModel) -> _Line:
    vocabulary = stored.vocabulary
    end_of_line = vocabulary.end_of_line_id
    inputs, targets, positions, unknown = [end_of_line], [], [], []
    markers = 0
    for token in tokens:
        word_id = vocabulary.id_of(token)
        if word_id is None:
            word_id = vocabulary.unknown_id
            # The marker is the text as written: the unknown-word event is all there is to predict.
            if token == vocabulary.unknown_marker:
                markers += 1
            else:
                unknown.append(token)
        targets.append(word_id)
        positions.append(len(inputs) - 1)
        if word_id is not None:
            inputs.append(word_id)
    targets.append(end_of_line)
    positions.append(len(inputs) - 1)
    return _Line(inputs, targets, positions, unknown, markers)


def _top_outputs(
    engine: NumpyLanguageModel, lines: Sequence[_Line], context: ContextKind
) -> Iterator[tuple[_Line, np.ndarray]]:
    """Each line with the last layer's output before each of its targets (targets of the line, width),
    in the order they are computed: the scores are sums, and holding every line's outputs to hand
    them back in the text's order would cost hundreds of megabytes on a large held-out set."""
    if context is ContextKind.stream:
        # Each line's inputs start with the end-of-line id that closed the line before.
        states: list[State] | None = None
        for line in lines:
            line_outputs, states = engine.read_stream(line.inputs, states)
            yield line, line_outputs[line.positions]
        return
    if engine.config.bidirectional:
        window = engine.config.context_len
        for line in lines:
            contexts = [line.inputs[: position + 1][-window:] for position in line.positions]
            yield line, engine.top_outputs(contexts)
        return
    # Similar lengths side by side waste less time on padding.
    order = sorted(range(len(lines)), key=lambda index: len(lines[index].inputs))
    for start in range(0, len(order), LINES_PER_BATCH):
        chosen = [lines[index] for index in order[start : start + LINES_PER_BATCH]]
        outputs = engine.sequence_outputs([line.inputs for line in chosen])
        for line, output in zip(chosen, outputs, strict=True):
            yield line, output[line.positions]


def _mixed(mixture: TrigramMixture, log_probabilities: np.ndarray, line: _Line, targets: list[int]) -> np.ndarray:
    """The network's log-probabilities before some of a line's targets, mixed with the trigram's: its
    context for each is the two ids read before (<pad> before the line's <eol>)."""
    contexts = [
        contexts_before(line.inputs[max(line.positions[target] - 1, 0) : line.positions[target] + 1])
        for target in targets
    ]
    firsts, seconds = (np.array(ids, dtype=np.int64) for ids in zip(*contexts, strict=True))
    mixed = mixture.mix_into(np.exp(log_probabilities), mixture.trigram.distributions(firsts, seconds))
    with np.errstate(divide="ignore"):  # padding may get nothing from either
        return np.log(mixed, out=mixed)


def trained_context(stored: StoredModel) -> ContextKind:
    """The context the model was trained in (line, for folders written before the setting existed)."""
    training = stored.config.get("training")
    value = training.get("context") if isinstance(training, dict) else None
    return ContextKind(value) if value in {kind.value for kind in ContextKind} else ContextKind.line


def escape_probability(stored: StoredModel) -> float:
    """The chance the training text gave a word it lacked (Good-Turing's share of words seen once).

    Folders written before it was recorded get about the least the definition allows, one training
    token's share (a half when even the token count is missing), which is too low but never lets
    unknown words escape for free.
    """
    corpus = stored.config.get("corpus", {})
    recorded = corpus.get("escape_probability")
    if isinstance(recorded, float) and 0.0 < recorded < 1.0:
        return recorded
    tokens = corpus.get("training_tokens") or corpus.get("tokens") or 0
    return 1.0 / (int(tokens) + 2)


def spelling_bits(token: str, distinct_characters: int) -> float:
    """The cost of spelling out an unknown token: its characters and an end mark, each one of the
    training text's characters (or a new one)."""
    return (len(token) + 1) * math.log2(distinct_characters + 1)


def text_characters(token_lines: Sequence[Sequence[str]], tokenizer_config: TokenizerConfig) -> int:
    """The characters of the text as the tokenizer keeps it: one end-of-line per line counts as one."""
    tokenizer = make_tokenizer(tokenizer_config)
    return sum(len(tokenizer.join(list(tokens))) + 1 for tokens in token_lines)


def evaluate_text(stored: StoredModel, text: str, context: ContextKind | None = None) -> Evaluation:
    """Score a model on a text (already normalised), in the given context (default: the model's own)."""
    token_lines = tokenize_lines(text, stored.tokenizer)
    if not token_lines:
        raise CorpusError("the text to evaluate has no words")
    return evaluate_lines(stored, token_lines, context)


def evaluate_lines(
    stored: StoredModel, token_lines: Sequence[Sequence[str]], context: ContextKind | None = None
) -> Evaluation:
    """Score a model on a text's token lines, in the given context (default: the model's own)."""
    context = trained_context(stored) if context is None else context
    if context is ContextKind.stream and stored.model.bidirectional:
        raise UsageError("a bidirectional model reads each line on its own: evaluate it in line context")
    engine = NumpyLanguageModel(stored.model, stored.weights)
    lines = [_prepare(tokens, stored) for tokens in token_lines]
    characters = text_characters(token_lines, stored.tokenizer)
    distinct = int(stored.config.get("corpus", {}).get("distinct_characters", 0) or 0)

    nats = 0.0
    scored = top1 = top5 = 0
    for line, top_outputs in _top_outputs(engine, lines, context):
        known = [index for index, target in enumerate(line.targets) if target is not None]
        targets = np.array([line.targets[index] for index in known], dtype=np.int64)
        for start in range(0, len(known), ROWS_PER_SOFTMAX):
            chunk = known[start : start + ROWS_PER_SOFTMAX]
            log_probabilities = log_softmax(top_outputs[chunk] @ engine.output_kernel + engine.output_bias)
            if stored.mixture is not None:
                log_probabilities = _mixed(stored.mixture, log_probabilities, line, chunk)
            chunk_targets = targets[start : start + ROWS_PER_SOFTMAX]
            target_log_probabilities = log_probabilities[np.arange(len(chunk_targets)), chunk_targets]
            nats -= float(target_log_probabilities.sum())
            # Rank among the ids the generator may emit: padding never counts as a guess.
            log_probabilities[:, PADDING_ID] = -np.inf
            better = (log_probabilities > target_log_probabilities[:, None]).sum(axis=1)
            top1 += int((better < 1).sum())
            top5 += int((better < 5).sum())
            scored += len(chunk_targets)
    unknown_spellings = [token for line in lines for token in line.unknown_spellings]
    unknown_tokens = len(unknown_spellings) + sum(line.markers for line in lines)
    bits = nats / math.log(2) + sum(spelling_bits(token, distinct) for token in unknown_spellings)
    if stored.vocabulary.unknown_id is None:
        # Without <unk> the model's probabilities cover known words only: an unknown token costs the
        # escape, and each known one its share of the rest.
        escape = escape_probability(stored)
        bits -= len(unknown_spellings) * math.log2(escape) + scored * math.log2(1.0 - escape)
    word_tokens = sum(len(tokens) for tokens in token_lines)
    return Evaluation(
        perplexity=math.exp(nats / scored) if scored else math.inf,
        top1_accuracy=top1 / scored if scored else 0.0,
        top5_accuracy=top5 / scored if scored else 0.0,
        oov_rate=unknown_tokens / word_tokens if word_tokens else 0.0,
        bits_per_char=bits / characters,
        tokens=word_tokens + len(lines),
        scored_tokens=scored,
        unknown_tokens=unknown_tokens,
        lines=len(lines),
        characters=characters,
    )


def line_outputs(
    stored: StoredModel, token_lines: Sequence[Sequence[str]], context: ContextKind | None = None
) -> Iterator[tuple[int, np.ndarray, list[int | None]]]:
    """For each of the lines, read as `evaluate` reads them: its index in ``token_lines``, the last
    layer's output before each of its targets (its tokens, then one end-of-line; (targets, width)), from
    which any output layer's logits follow, and the targets' ids (None: a token with no id, in a model
    without <unk>). Lines come in the order they are computed, not the text's."""
    context = trained_context(stored) if context is None else context
    engine = NumpyLanguageModel(stored.model, stored.weights)
    lines = [_prepare(tokens, stored) for tokens in token_lines]
    index_of = {id(line): index for index, line in enumerate(lines)}
    for line, top_outputs in _top_outputs(engine, lines, context):
        yield index_of[id(line)], top_outputs, line.targets


def held_out_outputs(
    stored: StoredModel, token_lines: Sequence[Sequence[str]], context: ContextKind | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every target of the lines (line_outputs) at once: the last layer's outputs ((targets, width)
    float32) and the targets' ids ((targets,); -1 for a token with no id)."""
    width = stored.weights[OUTPUT_KERNEL].shape[0]
    outputs: list[np.ndarray] = [np.zeros((0, width), dtype=np.float32)]
    targets: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    for _, top_outputs, line_targets in line_outputs(stored, token_lines, context):
        outputs.append(top_outputs.astype(np.float32, copy=False))
        targets.append(np.array([-1 if target is None else target for target in line_targets], dtype=np.int64))
    return np.concatenate(outputs), np.concatenate(targets)


def evaluate_file(stored: StoredModel, source: str | Path, context: ContextKind | None = None) -> Evaluation:
    """Score a model on a file, a folder of .txt files, or standard input ('-')."""
    text, name = corpus_text(source)
    try:
        return evaluate_text(stored, text, context)
    except CorpusError as error:
        raise CorpusError(f"{name}: {error}") from None
