"""Draws the training curve (loss and perplexity per epoch) as a PNG for the model folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def write_training_curve(history: Mapping[str, Sequence[float]], path: Path) -> None:
    """Loss on the left, perplexity (log scale) on the right; training and validation lines."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    from matplotlib import pyplot

    epochs = range(1, len(history["cross_entropy"]) + 1)
    figure, (loss_axes, perplexity_axes) = pyplot.subplots(1, 2, figsize=(10, 4), dpi=100)
    for name, label in (("cross_entropy", "training"), ("val_cross_entropy", "validation")):
        if name not in history:
            continue
        losses = list(history[name])
        loss_axes.plot(epochs, losses, marker="o", markersize=3, label=label)
        perplexity_axes.plot(
            epochs, [math.exp(min(loss, 50.0)) for loss in losses], marker="o", markersize=3, label=label
        )
    loss_axes.set(title="cross-entropy per token", xlabel="epoch", ylabel="nats per token")
    perplexity_axes.set(title="perplexity", xlabel="epoch", ylabel="perplexity", yscale="log")
    for axes in (loss_axes, perplexity_axes):
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
