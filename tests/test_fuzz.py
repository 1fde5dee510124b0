"""Damaged files never crash loading: random bytes flipped in every file of a model folder (and of a
training checkpoint) either still load or fail with rnngen's own clean error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import GenerationConfig
from rnngen.errors import RnngenError
from rnngen.inference.generation import TextGenerator
from rnngen.store.folder import read_model_folder
from rnngen.train.checkpoints import Checkpoint, load_checkpoint, save_checkpoint

TRIALS_PER_FILE = 60


def flip_bytes(path: Path, random: np.random.Generator) -> None:
    """Overwrite 1 to 8 random bytes with random values (or cut the file short, now and then)."""
    data = bytearray(path.read_bytes())
    if not data:
        return
    if random.random() < 0.1:
        path.write_bytes(bytes(data[: int(random.integers(0, len(data)))]))
        return
    for _ in range(int(random.integers(1, 9))):
        data[int(random.integers(0, len(data)))] = int(random.integers(0, 256))
    path.write_bytes(bytes(data))


def load_and_generate(folder: Path) -> None:
    generator = TextGenerator(read_model_folder(folder))
    generator.generate("오늘", GenerationConfig(words=3))
    generator.next_words("오늘", 3)


@pytest.fixture(scope="module")
def complete_seed_model(seed_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed model with every file a folder can hold, model.keras included (written by export)."""
    from rnngen.train.keras_engine.export import export_keras_model

    folder = tmp_path_factory.mktemp("complete") / "seed"
    shutil.copytree(seed_model, folder)
    export_keras_model(read_model_folder(folder))
    return folder


@pytest.mark.parametrize("file_name", ["config.json", "vocabulary.json", "weights.npz", "model.keras", "training.png"])
def test_flipped_bytes_in_a_model_folder_load_or_fail_cleanly(
    complete_seed_model: Path, tmp_path: Path, file_name: str
) -> None:
    random = np.random.default_rng(sum(map(ord, file_name)))
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(TRIALS_PER_FILE):
        folder = tmp_path / f"trial-{trial}"
        shutil.copytree(complete_seed_model, folder)
        flip_bytes(folder / file_name, random)
        try:
            load_and_generate(folder)
            outcomes["loaded"] += 1
        except RnngenError:
            outcomes["refused"] += 1
        shutil.rmtree(folder)
    assert sum(outcomes.values()) == TRIALS_PER_FILE
    if file_name in {"config.json", "weights.npz"}:
        assert outcomes["refused"] > 0  # the damage is noticed, not only survived


def test_flipped_bytes_in_a_checkpoint_load_or_fail_cleanly(tmp_path: Path) -> None:
    random = np.random.default_rng(7)
    original = tmp_path / ".model.checkpoint"
    save_checkpoint(
        original,
        Checkpoint(
            epochs_done=2,
            fingerprint={"corpus_sha256": "abc"},
            history={"loss": [2.0, 1.5]},
            callbacks={"early_stopping": {"wait": 0, "best": 1.5, "best_epoch": 1}},
            training_seconds=3.0,
            variable_paths=["embedding/embeddings", "output/bias"],
            variables=[np.ones((4, 3), np.float32), np.zeros(4, np.float32)],
            optimizer=[np.array(6), np.ones((4, 3), np.float32)],
            best=[np.ones((4, 3), np.float32), np.zeros(4, np.float32)],
        ),
    )
    for file_path in sorted(original.iterdir()):
        for trial in range(TRIALS_PER_FILE):
            folder = tmp_path / f"trial-{trial}"
            shutil.copytree(original, folder)
            flip_bytes(folder / file_path.name, random)
            try:
                load_checkpoint(folder)
            except RnngenError:
                pass
            shutil.rmtree(folder)
