"""Sampled softmax (--sampled-softmax N): a training step that scores a few thousand words instead of all.

With a vocabulary of tens of thousands of words the output layer is most of a step's work: every target
is scored against every word. Jean et al. ("On Using Very Large Target Vocabulary for Neural Machine
Translation", 2015) and Jozefowicz et al. ("Exploring the Limits of Language Modeling", 2016) train
with a softmax over a sample of the vocabulary instead. Here every batch draws N words with replacement
from the training targets' frequencies raised to the power 0.75 (word2vec's smoothing, which gives rare
words more chances than their counts); the batch's candidates are the words drawn together with the
batch's own targets, and each target is scored against those alone.

The sum a softmax divides by, over the whole vocabulary, is estimated by weighting each candidate by
one over its chance of being a candidate (Horvitz and Thompson): a target of the batch is one with
certainty (weight 1), a word only drawn was one with probability 1 - (1 - q)^N for its proposal share
q. In logits that is subtracting the log of that chance, the correction TensorFlow's
`sampled_softmax_loss` makes. The estimate of the sum is unbiased, so the gradient is that of the full
softmax's loss up to the bias of a logarithm of an estimate, which shrinks as N grows; with every word
a candidate it is the full softmax exactly.

Only training uses it. Validation, scoring, early stopping and the saved model use the full softmax,
so the model folder is the same as without it; only the training loss printed is the sampled estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnngen.data.vocab import PADDING_ID

# Proposal shares are the training targets' counts to this power (word2vec's unigram^0.75).
PROPOSAL_POWER = 0.75


@dataclass(frozen=True)
class Candidates:
    """The words one batch scores its targets against, sorted, with the log of each one's chance of
    being among them (0 for the batch's own targets), which the logits are lowered by."""

    ids: np.ndarray  # (candidates,) int64, sorted and distinct
    log_inclusion: np.ndarray  # (candidates,) float32, <= 0

    def positions(self, targets: np.ndarray) -> np.ndarray:
        """Where each target id sits among the candidates."""
        return np.searchsorted(self.ids, targets)


@dataclass(frozen=True)
class CandidateSampler:
    """Draws each batch's candidates from a fixed proposal over the vocabulary."""

    draws: int
    cumulative: np.ndarray  # (vocab,) float64: the proposal's cumulative shares, the last one 1
    log_inclusion: np.ndarray  # (vocab,) float32: log P(an id is among `draws` draws)

    @classmethod
    def from_counts(cls, target_counts: np.ndarray, draws: int) -> CandidateSampler:
        """The sampler for targets counted ``target_counts`` (by id; padding never drawn)."""
        if draws < 1:
            raise ValueError("sampled softmax needs at least one draw")
        shares = (target_counts.astype(np.float64) + 1.0) ** PROPOSAL_POWER
        shares[PADDING_ID] = 0.0
        shares /= shares.sum()
        cumulative = np.cumsum(shares)
        cumulative[-1] = 1.0
        # 1 - (1 - q)^draws, computed without cancellation for tiny q.
        inclusion = -np.expm1(draws * np.log1p(-np.minimum(shares, 1.0 - 1e-12)))
        with np.errstate(divide="ignore"):
            log_inclusion = np.log(inclusion).astype(np.float32)
        return cls(draws, cumulative, log_inclusion)

    def candidates(self, targets: np.ndarray, random: np.random.Generator) -> Candidates:
        """The candidates of a batch whose real targets are ``targets``."""
        drawn = np.searchsorted(self.cumulative, random.random(self.draws), side="right")
        # A draw of exactly the last cumulative share would fall past the end.
        np.minimum(drawn, len(self.cumulative) - 1, out=drawn)
        target_ids = np.unique(targets)
        ids = np.union1d(drawn, target_ids)
        log_inclusion = self.log_inclusion[ids]
        log_inclusion[np.searchsorted(ids, target_ids)] = 0.0
        return Candidates(ids.astype(np.int64), log_inclusion)
