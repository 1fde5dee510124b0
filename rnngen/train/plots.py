"""Draws the training curve (loss, perplexity and learning rate per epoch) as a PNG for the model folder."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rnngen.config import CellKind, ModelConfig
from rnngen.train.reporting import perplexity
from rnngen.train.setup import STEPS_ENTRY

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CELL_NAMES = {CellKind.simple: "SimpleRNN", CellKind.lstm: "LSTM", CellKind.gru: "GRU"}
# Fonts for the characters matplotlib's own font lacks (a Korean corpus's name), used where installed.
FALLBACK_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Malgun Gothic", "AppleGothic")


def curve_title(corpus_source: str, model: ModelConfig) -> str:
    """The corpus's file (or folder) name and the network, e.g. ``ptb.train.txt — LSTM 256x1, vocabulary 10,001``
    (units x layers; the vocabulary counts every id, as the training summary does)."""
    direction = "bidirectional " if model.bidirectional else ""
    network = f"{direction}{CELL_NAMES[model.cell]} {model.units}x{model.layers}"
    return f"{Path(corpus_source).name or corpus_source} — {network}, vocabulary {model.vocab_size:,}"


def epoch_positions(history: Mapping[str, Sequence[float]], steps_per_epoch: int | None) -> list[float]:
    """Where each epoch of the history ended, in epochs: 1, 2, 3, ..., and for an epoch a budget cut
    short the share of its batches trained (2.62 for the third epoch cut at 62 %)."""
    count = len(history["cross_entropy"])
    steps = history.get(STEPS_ENTRY)
    if steps_per_epoch is None or steps is None or len(steps) != count:
        return [float(epoch) for epoch in range(1, count + 1)]
    return [epoch + min(done / steps_per_epoch, 1.0) for epoch, done in enumerate(steps)]


def training_figure(
    history: Mapping[str, Sequence[float]], title: str, kept_epoch: int, steps_per_epoch: int | None = None
) -> Figure:
    """Loss, perplexity (log scale) and learning rate per epoch, side by side, training and validation
    lines, the kept epoch marked on each; whole epochs on every x axis, an epoch cut short where it ended."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = epoch_positions(history, steps_per_epoch)
    figure = Figure(figsize=(15, 4.2), dpi=100)
    figure.suptitle(title, fontfamily=title_fonts())
    loss_axes, perplexity_axes, rate_axes = figure.subplots(1, 3)
    for name, label in (("cross_entropy", "training"), ("val_cross_entropy", "validation")):
        if name not in history:
            continue
        losses = list(history[name])
        loss_axes.plot(epochs, losses, marker="o", markersize=3, label=label)
        perplexity_axes.plot(epochs, [perplexity(loss) for loss in losses], marker="o", markersize=3, label=label)
    loss_axes.set(title="cross-entropy per token", xlabel="epoch", ylabel="nats per token")
    perplexity_axes.set(title="perplexity", xlabel="epoch", ylabel="perplexity", yscale="log")
    draw_learning_rate(rate_axes, history.get("learning_rate", []), epochs)
    for axes in (loss_axes, perplexity_axes, rate_axes):
        axes.axvline(
            epochs[kept_epoch - 1], color="grey", linestyle="--", linewidth=1, label=f"kept epoch {kept_epoch}"
        )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        axes.legend()
    # Fixed margins that fit these labels: tight_layout measures every text first (a quarter second).
    figure.subplots_adjust(left=0.05, right=0.985, bottom=0.13, top=0.83, wspace=0.25)
    return figure


def title_fonts() -> list[str]:
    """matplotlib's default font, then the installed fallbacks, which matplotlib tries glyph by glyph."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed)]


def draw_learning_rate(axes: Axes, rates: Sequence[float], epochs: Sequence[float]) -> None:
    """The learning rate each epoch trained with, at the epochs' positions. A run resumed from a
    checkpoint written before the rate was recorded has it for its last epochs only, so the rates are
    drawn against those."""
    axes.set(title="learning rate", xlabel="epoch", ylabel="learning rate")
    if not rates:
        axes.text(0.5, 0.5, "not recorded", transform=axes.transAxes, ha="center", va="center", color="grey")
        axes.set_xlim(0.5, len(epochs) + 0.5)
        return
    axes.plot(list(epochs[len(epochs) - len(rates) :]), list(rates), marker="o", markersize=3, label="learning rate")


def write_training_curve(
    history: Mapping[str, Sequence[float]], path: Path, title: str, kept_epoch: int, steps_per_epoch: int | None = None
) -> None:
    """The training figure as a PNG, its title also in the file's Title field."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with warnings.catch_warnings():
        # A corpus named in a script the default font lacks (Korean, say) still gets its curve.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure = training_figure(history, title, kept_epoch, steps_per_epoch)
        FigureCanvasAgg(figure).print_png(path, metadata={"Title": title})
