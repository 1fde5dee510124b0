"""Holding repeats back: the no-repeat n-gram rule and the repetition penalty, with the meanings Hugging
Face transformers gives ``no_repeat_ngram_size`` and ``repetition_penalty``.

Both look at the whole text so far, the prompt included (as the model read it: a prompt word it lacks
and skipped is not part of it):

- no repeated n-gram of N tokens: a token that would complete N tokens already present somewhere in
  the text is never chosen;
- the repetition penalty F (CTRL, Keskar et al. 2019): the logit of every token already in the text
  is divided by F where it is positive and multiplied by F where it is negative, before the softmax
  (and so before temperature, top-k and top-p). F > 1 holds repeats back, F < 1 favours them.

Generation usually holds the model's probabilities rather than its logits. The penalty is then applied
as the factor exp(penalised logit - logit) on each penalised probability, which after normalising is
exactly the softmax of the penalised logits; the factors are read from the logits before the softmax
overwrites them (``penalty_factors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnngen.config import GenerationConfig


def penalised_logits(logits: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL's repetition penalty on logits: divided by ``penalty`` where positive, multiplied where not."""
    return np.where(logits > 0, logits / penalty, logits * penalty)


@dataclass
class _History:
    """What one row has said so far, as the two rules need it."""

    seen: set[int] = field(default_factory=set)
    # The last N - 1 ids, and for every run of N - 1 ids in the text the ids that followed it.
    tail: tuple[int, ...] = ()
    followers: dict[tuple[int, ...], set[int]] = field(default_factory=dict)

    def copy(self) -> _History:
        return _History(set(self.seen), self.tail, {run: set(ids) for run, ids in self.followers.items()})


@dataclass(frozen=True)
class PenaltyFactors:
    """What the penalty multiplies each penalised probability by, at (rows[i], ids[i])."""

    rows: np.ndarray
    ids: np.ndarray
    factors: np.ndarray


class RepeatRules:
    """The rules for a batch of texts, each row with its own history, added to as words are chosen.

    Adding a word costs a few set and dict operations, however long the text.
    """

    def __init__(self, settings: GenerationConfig, texts: Sequence[Sequence[int]]) -> None:
        """``texts``: each row's ids so far (its prompt)."""
        self.ngram = settings.no_repeat_ngram
        self.penalty = settings.repetition_penalty
        self.histories = [_History() for _ in texts]
        # Every (row, id) pair the penalty applies to: (pairs,) each, grown as new ones appear.
        self._pair_rows = np.empty(0, dtype=np.int64)
        self._pair_ids = np.empty(0, dtype=np.int64)
        if self.active:
            self._add_rows([(row, word_id) for row, ids in enumerate(texts) for word_id in ids])

    @property
    def active(self) -> bool:
        return bool(self.ngram) or self.penalty != 1.0

    def add(self, ids: Sequence[int]) -> None:
        """One more id for every row."""
        if self.active:
            self._add_rows(list(enumerate(ids)))

    def select(self, rows: Sequence[int]) -> RepeatRules:
        """The rules for a new batch made of these rows (repeats allowed), as beam search needs."""
        selected = RepeatRules.__new__(RepeatRules)
        selected.ngram, selected.penalty = self.ngram, self.penalty
        selected.histories = [self.histories[row].copy() for row in rows]
        counts = [len(history.seen) for history in selected.histories]
        selected._pair_rows = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
        selected._pair_ids = np.array(
            [word_id for history in selected.histories for word_id in history.seen], dtype=np.int64
        )
        return selected

    def _add_rows(self, additions: Sequence[tuple[int, int]]) -> None:
        """Add each (row, id), in order."""
        new_rows: list[int] = []
        new_ids: list[int] = []
        keep = self.ngram - 1  # the ids an n-gram completion follows
        for row, word_id in additions:
            history = self.histories[row]
            if word_id not in history.seen:
                history.seen.add(word_id)
                new_rows.append(row)
                new_ids.append(word_id)
            if self.ngram:
                if len(history.tail) == keep:
                    history.followers.setdefault(history.tail, set()).add(word_id)
                history.tail = (*history.tail, word_id)[-keep:] if keep else ()
        if new_rows:
            self._pair_rows = np.concatenate([self._pair_rows, np.array(new_rows, dtype=np.int64)])
            self._pair_ids = np.concatenate([self._pair_ids, np.array(new_ids, dtype=np.int64)])

    def _completions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, ids) of the tokens that would complete an n-gram already in their row's text."""
        rows: list[int] = []
        ids: list[int] = []
        if self.ngram:
            for row, history in enumerate(self.histories):
                followers = history.followers.get(history.tail, ())
                rows.extend([row] * len(followers))
                ids.extend(followers)
        return np.array(rows, dtype=np.int64), np.array(ids, dtype=np.int64)

    def hold_back_logits(self, logits: np.ndarray) -> None:
        """Apply both rules to logits (rows, vocab) in place; an n-gram completion gets -inf."""
        if self.penalty != 1.0 and len(self._pair_rows):
            where = (self._pair_rows, self._pair_ids)
            logits[where] = penalised_logits(logits[where], self.penalty)
        logits[self._completions()] = -np.inf

    def penalty_factors(self, logits: np.ndarray) -> PenaltyFactors | None:
        """The penalty's factors for the probabilities these logits (rows, vocab) give; read them
        before a softmax in place overwrites the logits."""
        if self.penalty == 1.0 or not len(self._pair_rows):
            return None
        before = logits[self._pair_rows, self._pair_ids].astype(np.float64)
        factors = np.exp(penalised_logits(before, self.penalty) - before)
        return PenaltyFactors(self._pair_rows, self._pair_ids, factors)

    def hold_back_probabilities(self, probabilities: np.ndarray, factors: PenaltyFactors | None) -> np.ndarray:
        """Both rules applied to the probabilities (rows, vocab) that the logits ``factors`` were read
        from, in a float64 copy: the softmax of the penalised logits, with every n-gram completion
        at 0 (not spread over the other words, as for the ids never generated)."""
        held = probabilities.astype(np.float64)
        if factors is not None:
            held[factors.rows, factors.ids] *= factors.factors
            held /= held.sum(axis=1, keepdims=True)
        held[self._completions()] = 0.0
        return held
