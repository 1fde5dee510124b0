"""The training curve in the model folder: titled with the corpus and the network, the kept epoch
marked, the learning rate beside the loss and perplexity, whole epochs on the x axes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from rnngen.config import CellKind, ModelConfig
from rnngen.train.plots import curve_title, training_figure

from .conftest import rnngen


def test_the_curve_rnngen_train_writes_is_titled_with_the_corpus_and_the_model(
    trained_workspace: Path, seed_model: Path
) -> None:
    card = json.loads(rnngen("info", "--json", "-m", str(seed_model), cwd=trained_workspace).stdout)
    model, vocabulary = card["model"], card["vocabulary"]["ids"]
    curve = Image.open(seed_model / "training.png")
    assert curve.text["Title"] == f"seed.txt — LSTM {model['units']}x{model['layers']}, vocabulary {vocabulary:,}"


def test_the_training_figure_shows_title_kept_epoch_learning_rate_and_whole_epochs() -> None:
    from matplotlib.ticker import MaxNLocator

    model = ModelConfig(
        vocab_size=8289,
        max_len=8,
        cell=CellKind.lstm,
        layers=1,
        bidirectional=False,
        embedding_dim=64,
        units=128,
        dropout=0.0,
    )
    title = curve_title("data/corpus.txt", model)
    assert title == "corpus.txt — LSTM 128x1, vocabulary 8,289"
    history = {
        "cross_entropy": [3.0, 2.5, 2.2, 2.1],
        "val_cross_entropy": [3.1, 2.7, 2.6, 2.65],
        "learning_rate": [0.01, 0.01, 0.005, 0.0025],
    }
    figure = training_figure(history, title, kept_epoch=3)
    assert figure.get_suptitle() == title
    rate_axes = [axes for axes in figure.axes if axes.get_ylabel() == "learning rate"]
    assert len(rate_axes) == 1
    assert list(rate_axes[0].lines[0].get_ydata()) == history["learning_rate"]
    for axes in figure.axes:
        assert isinstance(axes.xaxis.get_major_locator(), MaxNLocator)
        assert all(float(tick).is_integer() for tick in axes.get_xticks())
        kept = [line for line in axes.lines if line.get_label() == "kept epoch 3"]
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [3, 3]


def test_a_history_without_learning_rates_still_draws() -> None:
    figure = training_figure({"cross_entropy": [3.0, 2.5]}, "older model", kept_epoch=2)
    rate_axes = next(axes for axes in figure.axes if axes.get_ylabel() == "learning rate")
    assert [text.get_text() for text in rate_axes.texts] == ["not recorded"]


def test_a_resumed_history_draws_its_learning_rates_against_their_epochs() -> None:
    # A checkpoint written before the rate was recorded: the rates cover the last epochs only.
    figure = training_figure({"cross_entropy": [3.0, 2.5, 2.2], "learning_rate": [0.01]}, "resumed", kept_epoch=3)
    rate_axes = next(axes for axes in figure.axes if axes.get_ylabel() == "learning rate")
    assert list(rate_axes.lines[0].get_xdata()) == [3]
