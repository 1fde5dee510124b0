"""Where a trained model wins and loses against the Kneser-Ney trigram, token by token.

Both score the held-out tokens the model knows (and each line's end), in line context: the model as
`rnngen evaluate` reads them, the trigram of benchmarks/ngram_baselines.py built from the training text.
The table gives bits per token for both by how often the token occurs in the training text, and the
total bits the model pays more (+) or less (-) than the trigram in each band; then the bits per token of
the linear mixture lambda P_model + (1 - lambda) P_trigram, which tells how much the two know that the
other does not.

    python benchmarks/against_trigram.py MODEL TRAINING.txt HELDOUT.txt

Use the training text the model was trained from (with `benchmarks/defaults.py --keep FOLDER`, the cut
that script wrote: the first lines of the source). Unknown words and the escape are left out: they cost
the same whichever model predicts the known ones.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path

import numpy as np
from ngram_baselines import END, START, KneserNeyTrigram, TrainingFacts, read_token_lines

from rnngen.config import ContextKind
from rnngen.inference.evaluation import _prepare, _top_outputs
from rnngen.network.forward import NumpyLanguageModel, log_softmax
from rnngen.store.folder import read_model_folder

# Bands of training counts: [low, high). The end of a line is a band of its own.
BANDS = ((0, 1), (1, 2), (2, 6), (6, 51), (51, 501), (501, math.inf))
MIXTURE_WEIGHTS = (0.3, 0.5, 0.7, 0.9)


def scored_tokens(model: Path, training_path: Path, heldout_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training count, or -1 for the end of a line), the model's and the trigram's natural-log
    probability of every held-out token the model knows."""
    stored = read_model_folder(model)
    training = read_token_lines(training_path, stored.tokenizer)
    heldout = read_token_lines(heldout_path, stored.tokenizer)
    trigram = KneserNeyTrigram(training, len(TrainingFacts.of(training).vocabulary()))
    counts = Counter(token for line in training for token in line)
    engine = NumpyLanguageModel(stored.model, stored.weights)
    lines = [_prepare(tokens, stored) for tokens in heldout]
    tokens_of = {id(line): tokens for line, tokens in zip(lines, heldout, strict=True)}
    bands, model_scores, trigram_scores = [], [], []
    # The lines come back in the order they were batched in; each line's rows are its targets' outputs.
    for line, outputs in _top_outputs(engine, lines, ContextKind.line):
        padded = [START, START, *tokens_of[id(line)], END]
        log_probabilities = log_softmax(outputs @ engine.output_kernel + engine.output_bias)
        for index, target in enumerate(line.targets):
            if target is None:
                continue
            word = padded[index + 2]
            bands.append(-1 if word == END else counts[word])
            model_scores.append(float(log_probabilities[index, target]))
            trigram_scores.append(math.log(trigram.probability(word, padded[index], padded[index + 1])))
    return np.array(bands), np.array(model_scores), np.array(trigram_scores)


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
        f"{len(counts):,} known held-out tokens: model {bits(model) / len(counts):.3f} bits a token, "
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
