"""The calibrated network mixed with a trigram of the training lines (rnngen/train/mixture.py): the weight
fitted on the held-out lines, the counts kept in the folder, and every command reading the mixture."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rnngen.data.vocab import PADDING_ID
from rnngen.errors import ModelFolderError
from rnngen.inference.evaluation import evaluate_lines
from rnngen.inference.generation import TextGenerator
from rnngen.store.folder import TRIGRAM_FILE, read_model_folder
from rnngen.text import tokenize_lines
from rnngen.train.mixture import WEIGHT_BOUNDS, fitted_network_weight
from tests.conftest import rnngen
from tests.test_calibration import SMALL
from tests.test_unknown_singletons import real_text


def test_the_fitted_weight_is_the_likeliest_and_stays_within_bounds() -> None:
    generator = np.random.default_rng(0)
    network, trigram = generator.uniform(0.01, 1, 500), generator.uniform(0.01, 1, 500)
    fitted = fitted_network_weight(network, trigram)
    grid = np.linspace(0.01, 0.99, 981)
    likelihoods = [np.log(weight * network + (1 - weight) * trigram).sum() for weight in grid]
    assert fitted == pytest.approx(grid[int(np.argmax(likelihoods))], abs=2e-3)
    # One model right everywhere: the other still keeps a share.
    assert fitted_network_weight(np.ones(10), np.full(10, 1e-9)) == WEIGHT_BOUNDS[1]
    assert fitted_network_weight(np.full(10, 1e-9), np.ones(10)) == WEIGHT_BOUNDS[0]


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixture")
    (folder / "real.txt").write_text(real_text(), encoding="utf-8")
    trained = rnngen("train", "real.txt", "-o", "model", *SMALL, cwd=folder)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((folder / "model" / "config.json").read_text(encoding="utf-8"))
    # The summary says how much of each probability the trigram gives.
    share = 1 - config["mixture"]["network_weight"]
    assert f"training targets, the training lines' trigram mixed in at {share:.2f})" in trained.stderr
    return folder


def test_a_default_run_on_real_text_keeps_the_counts_and_the_fitted_weight(mixed_model: Path) -> None:
    config = json.loads((mixed_model / "model" / "config.json").read_text(encoding="utf-8"))
    mixture = config["mixture"]
    assert WEIGHT_BOUNDS[0] <= mixture["network_weight"] <= WEIGHT_BOUNDS[1]
    assert mixture["fitted_on"] > 0 and mixture["trigrams"] > 0 and 0 < mixture["escape"] < 1
    stored = read_model_folder(mixed_model / "model")
    assert stored.mixture is not None and stored.mixture.network_weight == mixture["network_weight"]
    # Every id of the saved vocabulary, the held-out lines' words included, has a trigram probability, and
    # the saved counts hold every line of the corpus, the held-out ones too: one trigram per token and
    # per line end.
    assert stored.mixture.trigram.vocab_size == stored.vocabulary.size
    corpus = config["corpus"]
    assert int(stored.mixture.trigram.trigram_counts.sum()) == corpus["tokens"] + corpus["usable_lines"]
    assert mixture["trigrams"] == len(stored.mixture.trigram.trigram_keys)
    info = json.loads(rnngen("info", "-m", "model", "--json", cwd=mixed_model).stdout)
    assert info["model"]["trigram_weight"] == pytest.approx(1 - mixture["network_weight"])


def test_evaluate_scores_the_mixture(mixed_model: Path) -> None:
    stored = read_model_folder(mixed_model / "model")
    assert stored.mixture is not None
    lines = tokenize_lines(real_text(300), stored.tokenizer)
    mixed = evaluate_lines(stored, lines)
    network = evaluate_lines(replace(stored, mixture=None), lines)
    # Two epochs of an 8-unit network know these lines far less well than their counts do.
    assert mixed.bits_per_char < network.bits_per_char
    (mixed_model / "text.txt").write_text(real_text(300), encoding="utf-8")
    printed = json.loads(rnngen("evaluate", "text.txt", "-m", "model", "--json", cwd=mixed_model).stdout)
    assert printed["bits_per_char"] == pytest.approx(mixed.bits_per_char, rel=1e-9)


def test_generation_reads_the_mixture_of_the_network_and_the_trigram(mixed_model: Path) -> None:
    stored = read_model_folder(mixed_model / "model")
    assert stored.mixture is not None
    vocabulary = stored.vocabulary
    mixed = TextGenerator(stored).engine.new_readings(1)
    alone = TextGenerator(replace(stored, mixture=None)).engine.new_readings(1)
    ids = [vocabulary.end_of_line_id, vocabulary.id_of("the"), vocabulary.id_of("cat")]
    for readings in (mixed, alone):
        readings.feed_each([ids])
    trigram = stored.mixture.trigram.distributions(np.array([ids[1]]), np.array([ids[2]]))
    expected = stored.mixture.mix_into(alone.probabilities().astype(np.float64), trigram)
    np.testing.assert_allclose(mixed.probabilities(), expected, rtol=1e-4, atol=1e-7)
    # A line starts from <pad> <eol>, as the trigram was counted.
    start = TextGenerator(stored).engine.new_readings(1)
    start.feed_each([[vocabulary.end_of_line_id]])
    first = stored.mixture.trigram.distributions(np.array([PADDING_ID]), np.array([vocabulary.end_of_line_id]))
    start_alone = TextGenerator(replace(stored, mixture=None)).engine.new_readings(1)
    start_alone.feed_each([[vocabulary.end_of_line_id]])
    expected_first = stored.mixture.mix_into(start_alone.probabilities().astype(np.float64), first)
    np.testing.assert_allclose(start.probabilities(), expected_first, rtol=1e-4, atol=1e-7)
    listed = rnngen("next", "the cat", "-m", "model", "-k", "1", cwd=mixed_model)
    word = vocabulary.word_of(
        int(np.argmax(np.where(np.arange(len(expected[0])) == vocabulary.unknown_id, 0, expected[0])))
    )
    assert listed.returncode == 0 and listed.stdout.split()[1] == word


def test_no_trigram_keeps_the_network_alone(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text(real_text(), encoding="utf-8")
    trained = rnngen("train", "real.txt", "-o", "model", *SMALL, "--no-trigram", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert "mixture" not in config and not (tmp_path / "model" / TRIGRAM_FILE).exists()
    assert "trigram" not in trained.stderr
    assert read_model_folder(tmp_path / "model").mixture is None


def test_damaged_counts_are_refused_in_one_line(mixed_model: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in (mixed_model / "model").iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    with np.load(damaged / TRIGRAM_FILE) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["trigram_keys"] = arrays["trigram_keys"][::-1].copy()  # no longer sorted
    np.savez(damaged / TRIGRAM_FILE, **arrays)
    with pytest.raises(ModelFolderError, match="trigram counts are damaged"):
        read_model_folder(damaged)
    (damaged / TRIGRAM_FILE).unlink()
    result = rnngen("generate", "the", "-m", str(damaged), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and math.isfinite(len(result.stderr))
