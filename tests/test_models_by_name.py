"""Where models live: no silent overwrites, `-m NAME`, the models folder from the environment, `rnngen models`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import SEED_TEXT, Completed

FAST = ("--epochs", "3", "-q")


def run(*arguments: str, cwd: Path, environment: dict[str, str] | None = None) -> Completed:
    """The console script with extra environment variables (and without any RNNGEN_ settings of ours)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("RNNGEN_")}
    process = subprocess.run(
        ["rnngen", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        env={**base, **(environment or {})},
    )
    return Completed(process.returncode, process.stdout, process.stderr)


def write_corpus(path: Path, text: str = SEED_TEXT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_train_refuses_to_replace_a_model_without_force(tmp_path: Path) -> None:
    write_corpus(tmp_path / "one" / "data.txt")
    write_corpus(tmp_path / "two" / "data.txt", "the cat sat on the mat\nthe dog sat on the log")
    first = run("train", "one/data.txt", *FAST, cwd=tmp_path)
    assert first.returncode == 0 and first.stdout == "models/data\n", first.stderr
    weights = (tmp_path / "models" / "data" / "weights.npz").read_bytes()

    # A second corpus of the same name would land in the same folder: refused, in one line, naming the flag.
    second = run("train", "two/data.txt", *FAST, cwd=tmp_path)
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr.strip().count("\n") == 0
    assert "models/data already holds a model" in second.stderr and "--force" in second.stderr
    assert (tmp_path / "models" / "data" / "weights.npz").read_bytes() == weights

    forced = run("train", "two/data.txt", *FAST, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    config = json.loads((tmp_path / "models" / "data" / "config.json").read_text(encoding="utf-8"))
    assert config["corpus"]["source"].endswith("two/data.txt")


def test_force_never_replaces_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seed.txt")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me", encoding="utf-8")
    result = run("train", "seed.txt", "-o", "notes", "--force", *FAST, cwd=tmp_path)
    assert result.returncode == 2 and "notes: exists and is not a model folder" in result.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text(encoding="utf-8") == "keep me"


def test_an_empty_output_folder_is_used(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seed.txt")
    (tmp_path / "empty").mkdir()
    result = run("train", "seed.txt", "-o", "empty", *FAST, cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "empty" / "config.json").is_file(), result.stderr


def test_models_by_name_from_another_folder(seed_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "store"
    shutil.copytree(seed_model, models / "seed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "seed").mkdir()  # a folder of the same name that holds no model does not hide it
    environment = {"RNNGEN_MODELS": str(models)}
    named = run("generate", "오늘", "-n", "3", "-m", "seed", cwd=elsewhere, environment=environment)
    assert named.returncode == 0 and named.stdout == "오늘 날씨가 정말 좋다\n", named.stderr
    newest = run("generate", "오늘", "-n", "3", cwd=elsewhere, environment=environment)
    assert newest.stdout == "오늘 날씨가 정말 좋다\n", newest.stderr
    home = run("next", "오늘", "-k", "1", "-m", "seed", cwd=elsewhere, environment={"RNNGEN_HOME": str(tmp_path)})
    # RNNGEN_HOME/models is empty, and the `seed` folder here holds no model.
    assert home.returncode == 1 and "seed: not a model folder" in home.stderr
    shutil.copytree(seed_model, tmp_path / "models" / "seed")
    home = run("next", "오늘", "-k", "1", "-m", "seed", cwd=elsewhere, environment={"RNNGEN_HOME": str(tmp_path)})
    assert home.returncode == 0 and home.stdout.endswith("\t날씨가\n"), home.stderr


def test_train_writes_into_the_models_folder_the_environment_names(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seed.txt")
    models = tmp_path / "elsewhere" / "models"
    result = run("train", "seed.txt", *FAST, cwd=tmp_path, environment={"RNNGEN_MODELS": str(models)})
    assert result.returncode == 0 and result.stdout == f"{models / 'seed'}\n", result.stderr
    assert (models / "seed" / "config.json").is_file() and not (tmp_path / "models").exists()


def test_models_lists_every_model_as_a_table_and_as_json(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seed.txt")
    write_corpus(tmp_path / "english.txt", "\n".join(["the cat sat on the mat", "the dog sat on the log"] * 120))
    assert run("train", "seed.txt", *FAST, cwd=tmp_path).returncode == 0
    assert run("train", "english.txt", *FAST, "--cell", "gru", "--units", "16", cwd=tmp_path).returncode == 0
    (tmp_path / "models" / "scratch").mkdir()  # not a model: left out

    listed = run("models", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [entry["name"] for entry in entries] == ["english", "seed"]
    english, seed = entries
    assert english["network"] == "gru 1x16" and english["tokenizer"] == "word"
    assert english["held_out"] is True and english["perplexity"] > 1.0 and english["bits_per_char"] > 0.0
    assert seed["held_out"] is False and seed["vocabulary"] == 16
    config = json.loads((tmp_path / "models" / "english" / "config.json").read_text(encoding="utf-8"))
    assert english["perplexity"] == config["metrics"]["val_perplexity"]

    table = run("models", cwd=tmp_path)
    assert table.returncode == 0 and table.stderr == ""
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["name", "tokenizer", "network"] and "bits/char" in header
    assert [row.split()[0] for row in rows] == ["english", "seed"]
    assert "gru 1x16" in rows[0] and "held-out" in rows[0] and "training" in rows[1]


def test_models_with_none_says_so_on_stderr(tmp_path: Path) -> None:
    result = run("models", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "" and "no trained model in models/" in result.stderr
    assert run("models", "--json", cwd=tmp_path).stdout == "[]\n"
