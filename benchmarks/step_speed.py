"""How fast the numpy engine steps the PTB recipe's model, against the matrix-product ceiling of this CPU.

One training step is loss_and_gradients (backprop.py) and an Adam update, on a stream batch of
windows of 35 words drawn from Zipf frequencies over a vocabulary of 10,000 words (PTB's; --vocabulary to
change it: 48,853 is 100,000 NSMC reviews in morpheme pieces). For each batch size
and output layer (the full softmax, or --sampled-softmax N) the table gives the median step over a
few steps, the targets per second, and the share of this machine's matrix-product ceiling the step
reaches: the ceiling is the GFLOP/s of one large float32 product measured here (what a step would run
at if all its work were such products), and the step's own FLOPs are counted from its products (the
input and recurrent kernels' forward and two backward products, and the output layer's, over all
targets or over the candidates).

    python benchmarks/step_speed.py [--units 256] [--vocabulary 10000] [--batch-sizes 20,32,64,128]
        [--draws 0,1024,2048] [--steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rnngen.config import ArchitectureConfig, CellKind, ModelConfig
from rnngen.train.numpy_engine import backprop
from rnngen.train.numpy_engine.adam import Adam
from rnngen.train.numpy_engine.initializers import initial_weights
from rnngen.train.numpy_engine.sampled_softmax import CandidateSampler

PTB_VOCABULARY = 10_000
WINDOW = 35


def matmul_ceiling(size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of a few (size x size) float32 products."""
    random = np.random.default_rng(0)
    left = random.random((size, size), dtype=np.float32)
    right = random.random((size, size), dtype=np.float32)
    left @ right  # warm the threads up
    best = min(_timed(lambda: left @ right) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def step_flops(units: int, embedding_dim: int, targets: int, columns: int) -> float:
    """The products of one step of a one-layer tied LSTM: forward, and twice that backward."""
    recurrent = 2 * targets * (embedding_dim + units) * 4 * units
    output = 2 * targets * embedding_dim * columns
    return 3 * (recurrent + output)


def zipf_counts(vocabulary: int) -> np.ndarray:
    counts = (1e7 / np.arange(1, vocabulary + 1)).astype(np.int64)
    counts[0] = 0  # padding
    return counts


def measure(units: int, vocabulary: int, batch_size: int, draws: int, steps: int) -> tuple[float, int]:
    """The median seconds of a step, and the mean candidates per step (the vocabulary when full)."""
    architecture = ArchitectureConfig(
        cell=CellKind.lstm, embedding_dim=units, units=units, dropout=0.0, tie_embeddings=True,
        dropout_input=0.3, dropout_output=0.4, weight_drop=0.4,
    )  # fmt: skip
    config = ModelConfig.for_corpus(architecture, vocabulary, WINDOW + 1)
    counts = zipf_counts(vocabulary)
    weights = initial_weights(config, 0, np.log((counts + 1) / (counts + 1).sum()).astype(np.float32))
    optimizer = Adam(weights, 0.001, 5.0)
    sampler = CandidateSampler.from_counts(counts, draws) if draws else None
    random = np.random.default_rng(1)
    shares = counts / counts.sum()
    seconds, columns = [], []
    for step in range(steps + 1):
        inputs = random.choice(vocabulary, size=(batch_size, WINDOW), p=shares).astype(np.int32)
        targets = random.choice(vocabulary, size=(batch_size, WINDOW), p=shares).astype(np.int32)
        start = time.perf_counter()
        candidates = None if sampler is None else sampler.candidates(targets.ravel(), random)
        _, gradients = backprop.loss_and_gradients(weights, config, inputs, targets, random, candidates)
        optimizer.apply(weights, gradients)
        if step:  # the first step warms caches and threads up
            seconds.append(time.perf_counter() - start)
            columns.append(vocabulary if candidates is None else len(candidates.ids))
    return statistics.median(seconds), round(statistics.mean(columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--vocabulary", type=int, default=PTB_VOCABULARY)
    parser.add_argument("--batch-sizes", default="20,32,64,128")
    parser.add_argument("--draws", default="0,1024,2048,4096", help="0: the full softmax")
    parser.add_argument("--steps", type=int, default=6)
    arguments = parser.parse_args()
    ceiling = matmul_ceiling()
    print(f"matrix-product ceiling: {ceiling:.1f} GFLOP/s (2048 x 2048 float32)")
    headings = ("batch", "softmax", "columns", "step ms", "targets/s", "GFLOP/s", "of ceiling")
    widths = (5, 12, 7, 8, 9, 7, 10)
    print("  ".join(f"{name:>{width}}" for name, width in zip(headings, widths, strict=True)))
    for batch_size in (int(value) for value in arguments.batch_sizes.split(",")):
        for draws in (int(value) for value in arguments.draws.split(",")):
            seconds, columns = measure(arguments.units, arguments.vocabulary, batch_size, draws, arguments.steps)
            targets = batch_size * WINDOW
            rate = step_flops(arguments.units, arguments.units, targets, columns) / seconds / 1e9
            softmax = "full" if draws == 0 else f"sampled {draws}"
            print(
                f"{batch_size:>5}  {softmax:>12}  {columns:>7,}  {seconds * 1000:>8.0f}  {targets / seconds:>9,.0f}  "
                f"{rate:>7.1f}  {rate / ceiling:>10.0%}"
            )


if __name__ == "__main__":
    main()
