"""A training corpus from a prepared one (ids on disk): the held-out lines chosen by number, the
vocabulary counted from the training lines' ids, and the training lines read a block at a time through
a lookup from provisional to final ids, without the text or its token strings ever in memory.

What comes out equals what ``build_corpus`` makes of the same text in memory: the same vocabulary
(counts from the training lines, ties by first appearance among them), the same training ids, the
same validation ids (unknown words read as the unknown id, or left out) and the same counts. Only the
token strings kept for scoring bits per character are bounded: the first SCORED_TOKENS' worth of lines.
The held-out lines' ids are held in memory (4 bytes a token), the training lines' never all at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from rnngen.data.batches import TokenStream
from rnngen.data.corpus import Corpus, TokenLines, WordCounts
from rnngen.data.line_blocks import LineBlocks, held_out_mask
from rnngen.data.prepared import PreparedCorpus
from rnngen.data.split_counts import SplitCounts, load_split, save_split
from rnngen.data.vocab import Vocabulary
from rnngen.errors import CorpusError

# Tokens of held-out (or, without any, training) lines kept as strings for bits per character: scoring
# is a forward pass per line in numpy, and a tenth of a large corpus would take hours for one figure.
SCORED_TOKENS = 250_000
FIRST_APPEARANCE_SLICE = 1 << 16
NOT_A_WORD = -1  # a lookup's entry for a word without an id (no unknown-word id to read it as)


def _training_counts(prepared: PreparedCorpus, held_out: np.ndarray) -> SplitCounts:
    """One pass over the ids: how often each provisional id occurs in the training lines, where it
    first does (in training tokens), and the held-out lines' ids and lengths in order."""
    words = len(prepared.words)
    counts = np.zeros(words, dtype=np.int64)
    first = np.full(words, np.iinfo(np.int64).max, dtype=np.int64)
    seen = np.zeros(words, dtype=bool)
    held_out_ids: list[np.ndarray] = []
    held_out_lengths: list[np.ndarray] = []
    position = 0
    for first_line, lengths, ids in prepared.scan():
        chosen_lines = held_out_mask(held_out, first_line, first_line + len(lengths))
        if chosen_lines.any():
            chosen = np.repeat(chosen_lines, lengths)
            held_out_ids.append(ids[chosen])
            held_out_lengths.append(lengths[chosen_lines])
            ids = ids[~chosen]
        counts += np.bincount(ids, minlength=words)
        # Only tokens of words not seen yet can be first appearances: after the first few thousand
        # tokens they are few, so small slices keep np.unique's sorting short.
        for start in range(0, len(ids), FIRST_APPEARANCE_SLICE):
            piece = ids[start : start + FIRST_APPEARANCE_SLICE]
            new = np.flatnonzero(~seen[piece])
            if len(new):
                unique, index = np.unique(piece[new], return_index=True)
                first[unique] = position + start + new[index]
                seen[unique] = True
        position += len(ids)
    return SplitCounts(counts, first, _joined(held_out_ids, prepared.id_dtype), _joined(held_out_lengths, np.uint32))


def _joined(pieces: list[np.ndarray], dtype: np.dtype | type) -> np.ndarray:
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def _lookup(words: list[str], vocabulary: Vocabulary) -> np.ndarray:
    """(words,) int32: each provisional id's final id, the unknown id, or NOT_A_WORD."""
    fallback = NOT_A_WORD if vocabulary.unknown_id is None else vocabulary.unknown_id
    return np.fromiter((vocabulary.id_of(word) or fallback for word in words), dtype=np.int32, count=len(words))


def _validation_stream(ids: np.ndarray, lengths: np.ndarray, lookup: np.ndarray) -> TokenStream:
    """The lines' final ids as ``encode_lines`` gives them: words without an id left out, and lines
    left with no id at all dropped."""
    final = lookup[ids]
    kept = final != NOT_A_WORD
    line_of_token = np.repeat(np.arange(len(lengths)), lengths)
    kept_lengths = np.bincount(line_of_token[kept], minlength=len(lengths))
    kept_lengths = kept_lengths[kept_lengths > 0]
    line_starts = np.zeros(len(kept_lengths) + 1, dtype=np.int64)
    np.cumsum(kept_lengths, out=line_starts[1:])
    return TokenStream(final[kept].astype(np.int32), line_starts)


def _token_lines(ids: np.ndarray, lengths: np.ndarray, words: list[str], limit: int) -> TokenLines:
    """The first lines' tokens as strings, as many lines as fit in ``limit`` tokens (at least one)."""
    ends = np.cumsum(lengths, dtype=np.int64)
    count = max(int(np.searchsorted(ends, limit, side="right")), 1)
    lines: TokenLines = []
    start = 0
    for end in ends[:count].tolist():
        lines.append([words[word_id] for word_id in ids[start:end].tolist()])
        start = end
    return lines


def _first_training_lines(prepared: PreparedCorpus, held_out: np.ndarray, limit: int) -> TokenLines:
    """The first training lines' tokens, up to ``limit`` tokens, read from the id file."""
    lines: TokenLines = []
    total = 0
    for first_line, lengths, ids in prepared.scan():
        trained = ~held_out_mask(held_out, first_line, first_line + len(lengths))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        for line in np.flatnonzero(trained).tolist():
            tokens = ids[offsets[line] : offsets[line + 1]].tolist()
            lines.append([prepared.words[word_id] for word_id in tokens])
            total += len(tokens)
            if total >= limit:
                return lines
    return lines


def prepared_corpus(
    prepared: PreparedCorpus,
    name: str,
    held_out: np.ndarray | None,
    validation: PreparedCorpus | None,
    max_words: int | None,
    min_count: int,
    marker: str | None = None,
    unknown_for: Callable[[int], bool] = lambda training_tokens: False,
) -> Corpus:
    """``build_corpus`` for a prepared corpus (and a prepared --valid text); see the module.
    ``held_out``: the sorted numbers of the lines held out for validation; ``unknown_for``: whether the
    vocabulary gets an unknown-word id in any case, given the training lines' tokens (--unk-singletons)."""
    held_out = np.zeros(0, dtype=np.int64) if held_out is None else held_out
    split = load_split(prepared, held_out)
    if split is None:
        split = _training_counts(prepared, held_out)
        save_split(prepared, held_out, split)
    counts, first, held_out_ids, held_out_lengths = (
        split.counts,
        split.first,
        split.held_out_ids,
        split.held_out_lengths,
    )
    # Counter of the training words in order of first appearance among them, as count_words makes it.
    present = np.flatnonzero(counts)
    present = present[np.argsort(first[present], kind="stable")]
    words = prepared.words
    word_counts = Counter({words[word_id]: int(counts[word_id]) for word_id in present.tolist()})
    vocabulary = Vocabulary.from_counts(
        word_counts,
        max_words=max_words,
        min_count=min_count,
        unknown_marker=marker,
        with_unknown=unknown_for(int(counts.sum())),
    )
    lookup = _lookup(words, vocabulary)

    # How often each final id occurs in the training lines, from the counts rather than another pass.
    id_counts = np.bincount(lookup[present], weights=counts[present], minlength=vocabulary.size).astype(np.int64)
    stream = LineBlocks(prepared, held_out, lookup, id_counts)
    unknown_words = (lookup[present] == (vocabulary.unknown_id or NOT_A_WORD)) & np.array(
        [words[word_id] != marker for word_id in present.tolist()], dtype=bool
    )
    unknown_tokens = int(counts[present][unknown_words].sum())

    validation_stream = None
    validation_lines: TokenLines | None = None
    if validation is not None:
        ids = _joined([piece for _, _, piece in validation.scan()], validation.id_dtype)
        validation_lengths = validation.line_lengths()
        validation_lookup = _lookup(validation.words, vocabulary)
        validation_stream = _validation_stream(ids, validation_lengths.astype(np.int64), validation_lookup)
        validation_lines = _token_lines(ids, validation_lengths, validation.words, SCORED_TOKENS)
    elif len(held_out):
        validation_stream = _validation_stream(held_out_ids, held_out_lengths.astype(np.int64), lookup)
        validation_lines = _token_lines(held_out_ids, held_out_lengths, words, SCORED_TOKENS)
    if validation_stream is not None and validation_stream.line_count == 0:
        raise CorpusError(f"{name}: the validation lines have no words the training lines have")
    training_lines = [] if validation_lines is not None else _first_training_lines(prepared, held_out, SCORED_TOKENS)
    return Corpus(
        source=name,
        sha256=prepared.sha256,
        vocabulary=vocabulary,
        stream=stream,
        validation_stream=validation_stream,
        validation_lines=validation_lines,
        training_lines=training_lines,
        usable_lines=prepared.lines,
        tokens=prepared.tokens,
        counts=WordCounts.from_counts(word_counts),
        unknown_tokens=unknown_tokens,
        marker_tokens=0 if marker is None else word_counts[marker],
    )
