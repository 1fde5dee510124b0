"""Shared fixtures: the notebook's corpus and a model trained on it through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import CellKind, ModelConfig, TokenizerConfig, to_json_dict
from rnngen.data.vocab import Vocabulary
from rnngen.network.weights import expected_weight_shapes
from rnngen.store.folder import StoredModel, read_model_folder, write_model_folder

REPOSITORY = Path(__file__).resolve().parent.parent
SEED_CORPUS = REPOSITORY / "corpora" / "seed.txt"
SEED_TEXT = "오늘 날씨가 정말 좋다.\n집 앞 공원에 사람들이 모여 있다.\n아이들이 놀이터에서 신나게 뛰어놀고 있다."

# Prepared corpora go to a cache of the test session's own, never the user's (each test gets a fresh
# one from the fixture below; this one serves what runs outside a test, such as session fixtures).
os.environ["RNNGEN_CACHE"] = tempfile.mkdtemp(prefix="rnngen-test-cache-")


@pytest.fixture(autouse=True)
def fresh_corpus_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty corpus cache for every test, so that no test depends on what another prepared."""
    cache = tmp_path_factory.mktemp("corpus-cache")
    monkeypatch.setenv("RNNGEN_CACHE", str(cache))
    return cache


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def saved_model(
    folder: Path, vocabulary: Vocabulary, config: ModelConfig, weights: dict[str, np.ndarray], **settings: object
) -> StoredModel:
    """Write a model folder with hand-made weights and the default tokenizer, and read it back."""
    base = {"tokenizer": to_json_dict(TokenizerConfig()), "model": to_json_dict(config)}
    write_model_folder(folder, {**base, **settings}, vocabulary, weights)
    return read_model_folder(folder)


def small_config(
    vocab_size: int, cell: CellKind = CellKind.lstm, layers: int = 1, embedding_dim: int = 4, units: int = 5
) -> ModelConfig:
    """A tiny one-directional model configuration for hand-made models."""
    return ModelConfig(
        vocab_size=vocab_size,
        max_len=6,
        cell=cell,
        layers=layers,
        bidirectional=False,
        embedding_dim=embedding_dim,
        units=units,
        dropout=0.0,
    )


def random_weights(config: ModelConfig, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Normal random values for every array a model of this configuration needs, from a seed."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0, scale, shape).astype(np.float32) for name, shape in expected_weight_shapes(config).items()
    }


def rnngen(*arguments: str, cwd: Path, stdin: str | None = None, timeout: float = 300) -> Completed:
    """Run the installed console script, as a user would."""
    environment = {key: value for key, value in os.environ.items() if key != "RNNGEN_DEBUG"}
    process = subprocess.run(
        ["rnngen", *arguments],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=environment,
    )
    return Completed(process.returncode, process.stdout, process.stderr)


def cli_in_process(*arguments: str, cwd: Path, environment: dict[str, str] | None = None) -> Completed:
    """Run the command line in a fresh interpreter; its last stderr line lists which of TensorFlow and
    Keras it imported (``[]`` for neither)."""
    script = (
        "import sys\n"
        "from rnngen.cli import main\n"
        f"sys.argv = ['rnngen', *{list(arguments)!r}]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules), file=sys.stderr)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, encoding="utf-8", env=environment
    )
    return Completed(process.returncode, process.stdout, process.stderr)


def python_module(*arguments: str, cwd: Path) -> Completed:
    """Run ``python -m rnngen``."""
    process = subprocess.run(
        [sys.executable, "-m", "rnngen", *arguments], cwd=cwd, capture_output=True, text=True, encoding="utf-8"
    )
    return Completed(process.returncode, process.stdout, process.stderr)


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in which `rnngen train seed.txt` ran with every default."""
    workspace = tmp_path_factory.mktemp("workspace")
    (workspace / "seed.txt").write_text(SEED_TEXT + "\n", encoding="utf-8")
    result = rnngen("train", "seed.txt", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return workspace


@pytest.fixture(scope="session")
def seed_model(trained_workspace: Path) -> Path:
    return trained_workspace / "models" / "seed"
