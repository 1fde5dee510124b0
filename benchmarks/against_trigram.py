"""Where a trained model wins and loses against the Kneser-Ney trigram, token by token.

Both score every held-out token (and each line's end) in line context, as bits per character charge it
(the README, "Measuring a model"): the model as `rnngen evaluate` does, the trigram of
benchmarks/ngram_baselines.py built from the training text as that script does. A word the training text
lacks costs the trigram its escape and the model its unknown-word event (P(<unk> | context), or its own
escape without <unk>); the spelling both then pay is left out. A word the model lacks but the training
text has (one only in the lines the model held out for validation) costs the model its spelling too. The
table gives bits per token for both by how often the token occurs in the training text, and the total
bits the model pays more (+) or less (-) than the trigram in each band; then the bits per token of the
linear mixture lambda P_model + (1 - lambda) P_trigram, which tells how much the two know that the other
does not.

    python benchmarks/against_trigram.py MODEL TRAINING.txt HELDOUT.txt

Use the training text the model was trained from (with `benchmarks/defaults.py --keep FOLDER`, the cut
that script wrote: the first lines of the source).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from ngram_baselines import END, START, UNSEEN, KneserNeyTrigram, TrainingFacts, read_token_lines

from rnngen.config import ContextKind
from rnngen.inference.evaluation import escape_probability, line_outputs, spelling_bits
from rnngen.network.forward import NumpyLanguageModel, log_softmax
from rnngen.store.folder import read_model_folder

# Bands of training counts: [low, high). The end of a line is a band of its own.
BANDS = ((0, 1), (1, 2), (2, 6), (6, 51), (51, 501), (501, math.inf))
MIXTURE_WEIGHTS = (0.3, 0.5, 0.7, 0.9)


def scored_tokens(model: Path, training_path: Path, heldout_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training count, or -1 for the end of a line), and the model's and the trigram's cost in nats of
    every held-out token, as bits per character charge it, less the spelling of the words both lack."""
    stored = read_model_folder(model)
    vocabulary = stored.vocabulary
    training = read_token_lines(training_path, stored.tokenizer)
    heldout = read_token_lines(heldout_path, stored.tokenizer)
    facts = TrainingFacts.of(training)
    trigram = KneserNeyTrigram(training, len(facts.vocabulary()))
    counts = facts.word_counts
    trigram_escape = facts.escape_probability
    # Without <unk> the model's probabilities cover its words only, and an unknown one costs its escape.
    model_escape = None if vocabulary.unknown_id is not None else escape_probability(stored)
    distinct = int(stored.config.get("corpus", {}).get("distinct_characters", 0) or 0)
    engine = NumpyLanguageModel(stored.model, stored.weights)
    bands, model_costs, trigram_costs = [], [], []
    # The lines come back in the order they were batched in; each line's rows are its targets' outputs.
    for line_index, outputs, targets in line_outputs(stored, heldout, ContextKind.line):
        log_probabilities = log_softmax(outputs @ engine.output_kernel + engine.output_bias)
        first, second = START, START
        for index, (word, target) in enumerate(zip([*heldout[line_index], END], targets, strict=True)):
            if target is None:
                # Only a model without <unk> leaves a word without an id: it pays its escape.
                assert model_escape is not None
                model_cost = -math.log(model_escape)
            else:
                model_cost = -float(log_probabilities[index, target])
                if model_escape is not None:
                    model_cost -= math.log(1.0 - model_escape)
            if word == END or word in counts:
                trigram_cost = -math.log((1.0 - trigram_escape) * trigram.probability(word, first, second))
                if word != END and vocabulary.id_of(word) is None and word != vocabulary.unknown_marker:
                    model_cost += spelling_bits(word, distinct) * math.log(2)
            else:
                trigram_cost = -math.log(trigram_escape)
                word = UNSEEN
            bands.append(-1 if word == END else counts[word])
            model_costs.append(model_cost)
            trigram_costs.append(trigram_cost)
            first, second = second, word
    return np.array(bands), -np.array(model_costs), -np.array(trigram_costs)


def bits(log_probabilities: np.ndarray) -> float:
    return float(-log_probabilities.sum() / math.log(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("training", type=Path)
    parser.add_argument("heldout", type=Path)
    arguments = parser.parse_args()
    counts, model, trigram = scored_tokens(arguments.model, arguments.training, arguments.heldout)
    print(
        f"{len(counts):,} held-out tokens: model {bits(model) / len(counts):.3f} bits a token, "
        f"trigram {bits(trigram) / len(counts):.3f}"
    )
    print("| training count | tokens | share | model bits/token | trigram bits/token | model - trigram, bits |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    bands = [("end of line", counts == -1)] + [
        (
            f"{low}" if high == low + 1 else f"{low}-{'' if high == math.inf else int(high) - 1}",
            (counts >= low) & (counts < high),
        )
        for low, high in BANDS
    ]
    for label, chosen in bands:
        if chosen.any():
            size = int(chosen.sum())
            print(
                f"| {label} | {size:,} | {size / len(counts):.1%} | {bits(model[chosen]) / size:.3f} | "
                f"{bits(trigram[chosen]) / size:.3f} | {bits(model[chosen]) - bits(trigram[chosen]):+,.0f} |"
            )
    for weight in MIXTURE_WEIGHTS:
        mixture = np.logaddexp(math.log(weight) + model, math.log(1 - weight) + trigram)
        print(
            f"mixture, lambda {weight}: {bits(mixture) / len(counts):.3f} bits a token "
            f"({bits(mixture) - bits(model):+,.0f} bits against the model alone)"
        )


if __name__ == "__main__":
    main()
