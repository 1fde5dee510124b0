"""Draws the training curve (loss and perplexity per epoch) as a PNG for the model folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rnngen.train.reporting import perplexity


def write_training_curve(history: Mapping[str, Sequence[float]], path: Path) -> None:
    """Loss on the left, perplexity (log scale) on the right; training and validation lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = range(1, len(history["cross_entropy"]) + 1)
    figure = Figure(figsize=(10, 4), dpi=100)
    loss_axes, perplexity_axes = figure.subplots(1, 2)
    for name, label in (("cross_entropy", "training"), ("val_cross_entropy", "validation")):
        if name not in history:
            continue
        losses = list(history[name])
        loss_axes.plot(epochs, losses, marker="o", markersize=3, label=label)
        perplexity_axes.plot(epochs, [perplexity(loss) for loss in losses], marker="o", markersize=3, label=label)
    loss_axes.set(title="cross-entropy per token", xlabel="epoch", ylabel="nats per token")
    perplexity_axes.set(title="perplexity", xlabel="epoch", ylabel="perplexity", yscale="log")
    for axes in (loss_axes, perplexity_axes):
        axes.grid(True, alpha=0.3)
        axes.legend()
    # Fixed margins that fit these labels: tight_layout measures every text first (a quarter second).
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.25)
    FigureCanvasAgg(figure).print_png(path)
