"""A text's own unknown-word marker (PTB's <unk>) read as the model's unknown word with --unk-token:
recorded with the model, never generated, scored by evaluate as the unknown-word event, kept by --resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rnngen.config import ArchitectureConfig, TokenizerConfig, TrainingConfig
from rnngen.train import train_corpus

from .conftest import rnngen

SMALL_MODEL = ["--embedding-dim", "8", "--units", "16", "--epochs", "60"]


def marked_corpus() -> str:
    """24 lines; after "the" always comes the marker, 19 times in all."""
    verbs = ["sat on", "ran to", "slept on"]
    places = ["a mat", "a rug", "a <unk>"]
    lines = []
    for index in range(12):
        lines.append(f"the <unk> {verbs[index % 3]} {places[(index // 3) % 3]}")
        lines.append(f"my cat {verbs[(index + 1) % 3]} {places[index % 3]}")
    return "\n".join(lines) + "\n"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The marked corpus, and a model trained on it with the marker and one without."""
    folder = tmp_path_factory.mktemp("marker")
    (folder / "corpus.txt").write_text(marked_corpus(), encoding="utf-8")
    marked = rnngen(
        "train", "corpus.txt", "--filters", "", "--unk-token", "<unk>", *SMALL_MODEL, "-o", "marked", cwd=folder
    )
    assert marked.returncode == 0, marked.stderr
    assert marked.stdout == "marked\n"
    assert "unknown-word marker '<unk>': 19 of the training tokens\n" in marked.stderr
    plain = rnngen("train", "corpus.txt", "--filters", "", *SMALL_MODEL, "-o", "plain", "--quiet", cwd=folder)
    assert plain.returncode == 0, plain.stderr
    return folder


def test_the_marker_is_recorded_as_the_unknown_word(workspace: Path) -> None:
    vocabulary = read_json(workspace / "marked" / "vocabulary.json")
    assert vocabulary["unknown_marker"] == "<unk>" and "<unk>" not in vocabulary["words"]
    assert vocabulary["unknown_id"] == len(vocabulary["words"]) + 2
    config = read_json(workspace / "marked" / "config.json")
    assert config["training"]["unk_token"] == "<unk>" and config["corpus"]["unknown_marker_tokens"] == 19
    info = json.loads(rnngen("info", "--json", "-m", "marked", cwd=workspace).stdout)
    assert info["vocabulary"]["unknown_marker"] == "<unk>" and info["vocabulary"]["unknown_word"] is True

    # Without the option the marker is a word like any other, as before.
    plain = read_json(workspace / "plain" / "vocabulary.json")
    assert "<unk>" in plain["words"] and plain["unknown_id"] is None and "unknown_marker" not in plain
    assert read_json(workspace / "plain" / "config.json")["training"]["unk_token"] is None


def test_the_marker_is_never_generated(workspace: Path) -> None:
    # The model without the marker continues "the" with it, as the text always does ...
    plain = rnngen("generate", "the", "-n", "1", "-m", "plain", cwd=workspace)
    assert plain.stdout == "the <unk>\n"
    # ... the model that reads it as the unknown word never says it, whatever the prompt.
    for prompt in ("the", "my cat sat on a", "the <unk> ran to the"):
        generated = rnngen("generate", prompt, "-n", "6", "-m", "marked", cwd=workspace)
        assert generated.returncode == 0 and generated.stderr == ""  # the marker in a prompt is no unknown word
        continuation = generated.stdout.split()[len(prompt.split()) :]
        assert len(continuation) == 6 and "<unk>" not in continuation
    listed = rnngen("next", "the", "-k", "20", "--json", "-m", "marked", cwd=workspace)
    assert "<unk>" not in [entry["word"] for entry in json.loads(listed.stdout)]


def test_evaluate_reads_the_marker_as_the_unknown_word_event(workspace: Path) -> None:
    (workspace / "marked.txt").write_text("the <unk> sat on a <unk>\n", encoding="utf-8")
    (workspace / "novel.txt").write_text("the zzzzz sat on a <unk>\n", encoding="utf-8")
    marked = json.loads(rnngen("evaluate", "marked.txt", "--json", "-m", "marked", cwd=workspace).stdout)
    novel = json.loads(rnngen("evaluate", "novel.txt", "--json", "-m", "marked", cwd=workspace).stdout)
    assert marked["unknown_tokens"] == 2 and marked["oov_rate"] == pytest.approx(2 / 6)
    assert marked["scored_tokens"] == marked["tokens"] == 7  # read as the unknown word, not skipped
    # A new word is the same unknown-word event and its spelling on top; the marker, written as the text
    # has it, costs the event alone.
    distinct = read_json(workspace / "marked" / "config.json")["corpus"]["distinct_characters"]
    spelling = (len("zzzzz") + 1) * math.log2(distinct + 1)
    characters = marked["characters"]
    assert novel["characters"] == characters
    assert (novel["bits_per_char"] - marked["bits_per_char"]) * characters == pytest.approx(spelling)
    assert novel["perplexity"] == pytest.approx(marked["perplexity"])


def test_the_marker_is_matched_as_the_filters_leave_the_text(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(marked_corpus(), encoding="utf-8")
    # The default filters remove the angle brackets from the text and from the marker alike.
    filtered = rnngen("train", "corpus.txt", "--unk-token", "<unk>", *SMALL_MODEL[:4], "--epochs", "1", cwd=tmp_path)
    assert filtered.returncode == 0, filtered.stderr
    assert "unknown-word marker 'unk' (--unk-token '<unk>' as --filters and --lower leave it): 19 of" in filtered.stderr
    assert read_json(tmp_path / "models" / "corpus" / "vocabulary.json")["unknown_marker"] == "unk"

    # A marker the tokenizer cuts into pieces cannot be matched.
    cut = rnngen("train", "corpus.txt", "--unk-token", "<unk>", "--tokenizer", "char", "-o", "char", cwd=tmp_path)
    assert cut.returncode == 2 and cut.stdout == "" and not (tmp_path / "char").exists()
    assert cut.stderr.count("\n") == 1 and "--filters" in cut.stderr and "'u' 'n' 'k'" in cut.stderr

    # A marker the text never holds trains, with a warning.
    absent = rnngen("train", "corpus.txt", "--unk-token", "XYZ", "--epochs", "1", "-o", "absent", cwd=tmp_path)
    assert absent.returncode == 0 and absent.stdout == "absent\n"
    assert "rnngen: warning: the unknown-word marker 'xyz' (--unk-token 'XYZ' as --filters" in absent.stderr
    assert "never occurs in the training lines" in absent.stderr


class StopAfterTheFirstEpoch:
    """A reporter that interrupts training once the first epoch is checkpointed, as Ctrl-C would."""

    def on_data_read(self, report: object) -> None: ...

    def on_train_begin(self, outline: object) -> None: ...

    def on_batch_end(self, epoch: int, step: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        raise KeyboardInterrupt

    def on_train_end(self) -> None: ...


def test_resume_keeps_the_marker(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text(marked_corpus(), encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        train_corpus(
            tmp_path / "corpus.txt",
            tmp_path / "models" / "corpus",
            tokenizer_config=TokenizerConfig(filters=""),
            architecture=ArchitectureConfig(embedding_dim=8, units=16),
            training=TrainingConfig(epochs=3, unk_token="<unk>"),
            reporter=StopAfterTheFirstEpoch(),
        )
    other = rnngen("train", "corpus.txt", "--resume", "--unk-token", "<eol>", cwd=tmp_path)
    assert other.returncode == 2 and "--unk-token" in other.stderr, other.stderr

    resumed = rnngen("train", "corpus.txt", "--resume", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    folder = tmp_path / "models" / "corpus"
    assert read_json(folder / "vocabulary.json")["unknown_marker"] == "<unk>"
    config = read_json(folder / "config.json")
    assert config["training"]["unk_token"] == "<unk>" and config["resumed_at_epoch"] == 1
