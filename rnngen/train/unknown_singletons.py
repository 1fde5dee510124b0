"""--unk-singletons: training occurrences of words seen once, read as the unknown word.

A model whose vocabulary holds every training word never meets a word it does not know while it trains,
so it cannot tell how likely one is: without an unknown-word id, `evaluate` charges every unknown word
the same escape probability, estimated from the training counts, and every known word the rest
(the README, "Measuring a model"). The words seen once stand in for the words a later text
holds that the training lines lack (Good-Turing's estimate of the unseen words' share is theirs).
Reading each of their occurrences as <unk> with some probability, afresh every epoch, teaches the model
P(<unk> | context): where new words come (a name after "director", not a particle after a noun) and
what follows one. The words themselves stay in the vocabulary, since a later text may hold them again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.data.vocab import Vocabulary

# The stream a batch's draws come from, beside dropout's (1) and the sampled softmax's (2): each is
# seeded by (seed, epoch, stream[, batch]) alone, so a run resumed mid-epoch draws what it would have.
DRAWS_STREAM = 3


@dataclass(frozen=True)
class UnknownSingletons:
    """Which ids are words seen once, and how often an occurrence of one is read as the unknown word."""

    probability: float
    unknown_id: int
    singletons: np.ndarray  # (vocab_size,) bool: the ids of words that occur once among the training targets
    seed: int

    @classmethod
    def for_run(
        cls, probability: float, vocabulary: Vocabulary, target_counts: np.ndarray, seed: int
    ) -> UnknownSingletons | None:
        """The replacement for a run; None when it reads nothing as unknown (probability 0, or no
        unknown-word id to read words as)."""
        unknown_id = vocabulary.unknown_id
        if probability <= 0.0 or unknown_id is None:
            return None
        singletons = np.zeros(len(target_counts), dtype=bool)
        # Only words: padding, the end of line and the unknown word itself are never replaced.
        words = slice(1, vocabulary.end_of_line_id)
        singletons[words] = target_counts[words] == 1
        return cls(probability, unknown_id, singletons, seed)

    def expected_counts(self, target_counts: np.ndarray) -> np.ndarray:
        """(vocab_size,) float64: how often each id is a target in an epoch on average, the unknown word
        taking its share of the singletons' occurrences (for the output bias's start and the sampled
        softmax's proposal)."""
        counts = target_counts.astype(np.float64)
        moved = counts[self.singletons] * self.probability
        counts[self.singletons] -= moved
        counts[self.unknown_id] += moved.sum()
        return counts

    def batch(self, inputs: np.ndarray, targets: np.ndarray, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of epoch ``epoch`` with its singletons read as unknown, each occurrence (input
        or target) on its own draw. New arrays: the batches' own are left as they are."""
        random = np.random.default_rng([self.seed, epoch, DRAWS_STREAM, index])
        return self._replaced(inputs, random), self._replaced(targets, random)

    def _replaced(self, ids: np.ndarray, random: np.random.Generator) -> np.ndarray:
        read_as_unknown = self.singletons[ids] & (random.random(ids.shape) < self.probability)
        return np.where(read_as_unknown, self.unknown_id, ids).astype(ids.dtype, copy=False)
