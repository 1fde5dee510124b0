"""Korean end to end: morph and char models trained, generated from, scored and described through the
command line; continuations that attach to the prompt; kiwipiepy missing or never needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from rnngen.config import GenerationConfig, TokenizerConfig, TokenizerKind, to_json_dict
from rnngen.data.vocab import Vocabulary
from rnngen.inference.generation import TextGenerator
from rnngen.text.tokenizers import WORD_START

from .conftest import REPOSITORY, random_weights, rnngen, saved_model, small_config

KOREAN_CORPUS = REPOSITORY / "corpora" / "korean.txt"
MISSING_KIWI = '--tokenizer morph needs kiwipiepy: pip install "rnngen[ko]"'


def hand_made(
    folder: Path, kind: str, words: tuple[str, ...], favourite: str | None = None, runner_up: str | None = None
) -> Path:
    """A model folder with random weights; with a favourite token, that token always wins, and the
    runner-up comes second."""
    vocabulary = Vocabulary(words)
    config = small_config(vocabulary.size)
    weights = random_weights(config, seed=3)
    if favourite is not None:
        weights["output.kernel"][:] = 0.0
        weights["output.bias"][:] = 0.0
        weights["output.bias"][vocabulary.id_of(favourite)] = 10.0
    if runner_up is not None:
        weights["output.bias"][vocabulary.id_of(runner_up)] = 5.0
    tokenizer = to_json_dict(TokenizerConfig(kind=TokenizerKind(kind)))
    saved_model(folder, vocabulary, config, weights, tokenizer=tokenizer)
    return folder


MORPH_WORDS = ("▁영화", "가", "▁정말", "▁좋", "다", "▁재미있", "었")
CHAR_WORDS = ("영", "화", "가", "▁", "정", "말", "좋", "다")
WORD_WORDS = ("영화가", "정말", "좋다", "영화", "재미있었다")


@pytest.mark.parametrize(
    ("favourite", "expected"), [("가", "영화가가"), ("▁정말", "영화 정말 정말"), ("다", "영화다다")]
)
def test_a_morph_continuation_attaches_to_the_prompts_last_word(tmp_path: Path, favourite: str, expected: str) -> None:
    generator = TextGenerator.from_folder(hand_made(tmp_path / "morph", "morph", MORPH_WORDS, favourite))
    generation = generator.generate("영화", GenerationConfig(words=2))
    assert generation.text == expected
    assert generation.words == [favourite, favourite]


CLOSED_PROMPT_SETTINGS = [
    GenerationConfig(words=2),
    GenerationConfig(words=2, temperature=0.5, top_k=1, seed=1),
    GenerationConfig(words=2, beam=2),
]


@pytest.mark.parametrize("settings", CLOSED_PROMPT_SETTINGS, ids=["argmax", "sampling", "beam"])
@pytest.mark.parametrize(
    ("kind", "words", "runner_up", "prompt", "expected"),
    [
        # A dropped full stop ends the word: "가" may not follow it, the best word start comes first.
        ("morph", MORPH_WORDS, "▁정말", "영화.", "영화. 정말가"),
        ("morph", MORPH_WORDS, "▁정말", "영화 ...", "영화 ... 정말가"),
        # The last word was unknown and skipped (no unknown-word id): nothing can continue it.
        ("morph", MORPH_WORDS, "▁정말", "영화 엉뚱", "영화 엉뚱 정말가"),
        ("char", CHAR_WORDS, "▁", "영화.", "영화. 가"),
        # An open last word is continued as before.
        ("morph", MORPH_WORDS, "▁정말", "영화", "영화가가"),
        ("char", CHAR_WORDS, "▁", "영화", "영화가가"),
    ],
)
def test_a_closed_last_word_is_never_continued(
    tmp_path: Path,
    settings: GenerationConfig,
    kind: str,
    words: tuple[str, ...],
    runner_up: str,
    prompt: str,
    expected: str,
) -> None:
    generator = TextGenerator.from_folder(hand_made(tmp_path / kind, kind, words, favourite="가", runner_up=runner_up))
    assert generator.generate(prompt, settings).text == expected
    # Batched with open prompts, each row keeps its own rule.
    batch = generator.generate_batch(["영화", prompt, "영화"], settings, with_probabilities=False)
    assert [generation.text for generation in batch] == ["영화가가", expected, "영화가가"]


def test_next_words_after_a_closed_word_start_new_words(tmp_path: Path) -> None:
    generator = TextGenerator.from_folder(hand_made(tmp_path / "morph", "morph", MORPH_WORDS, "가", "▁정말"))
    closed, _ = generator.next_words("영화.", 20)
    open_, _ = generator.next_words("영화", 2)
    assert closed[0].word == "▁정말"
    # Only word starts and the end of the line remain; the pieces are ruled out, not merely ranked low.
    assert {word.word for word in closed} == {word for word in MORPH_WORDS if word.startswith("▁")} | {"<eol>"}
    assert [word.word for word in open_] == ["가", "▁정말"]


@pytest.mark.parametrize(
    ("kind", "words", "prompt"),
    [("word", WORD_WORDS, "영화가 정말"), ("morph", MORPH_WORDS, "영화가 정말"), ("char", CHAR_WORDS, "영화가 정말")],
)
def test_composed_and_decomposed_prompts_generate_the_same(
    tmp_path: Path, kind: str, words: tuple[str, ...], prompt: str
) -> None:
    generator = TextGenerator.from_folder(hand_made(tmp_path / kind, kind, words))
    settings = GenerationConfig(words=6, temperature=1.0, seed=2)
    composed = generator.generate(prompt, settings)
    decomposed = generator.generate(unicodedata.normalize("NFD", prompt), settings)
    assert composed == decomposed
    assert composed.text.startswith(prompt) and composed.unknown_words == []
    if kind != "word":
        assert WORD_START not in composed.text


def test_unknown_words_are_named_as_typed_not_as_pieces(tmp_path: Path) -> None:
    folder = hand_made(tmp_path / "morph", "morph", MORPH_WORDS)
    result = rnngen("generate", "영화가 거북이가 거북이를", "-n", "1", "--json", "-m", str(folder), cwd=tmp_path)
    assert result.returncode == 0
    # Kiwi cuts "거북이가" into "▁거북이" and "가": the warning names the word as it was typed.
    assert result.stderr.splitlines() == ["rnngen: warning: unknown words skipped: 거북이가 거북이를"]
    assert json.loads(result.stdout)["unknown_words"] == ["거북이가", "거북이를"]


@pytest.mark.parametrize(("kind", "words"), [("morph", MORPH_WORDS), ("char", CHAR_WORDS)])
def test_a_text_printed_as_it_grows_joins_its_pieces_as_a_whole_text_does(
    tmp_path: Path, kind: str, words: tuple[str, ...]
) -> None:
    folder = hand_made(tmp_path / kind, kind, words)
    for prompt in ("영화", "영화.", ""):
        arguments = ["-n", "12", "--temperature", "1.5", "--seed", "3", "-m", str(folder)]
        streamed = rnngen("generate", prompt, *arguments, cwd=tmp_path)
        whole = rnngen("generate", "-", *arguments, cwd=tmp_path, stdin=prompt + "\n")
        assert streamed.returncode == 0 and streamed.stdout == whole.stdout, prompt


def run_without_kiwipiepy(arguments: list[str], cwd: Path, blocker: Path) -> subprocess.CompletedProcess[str]:
    """The console script with kiwipiepy made unimportable, as on a machine without the ko extra."""
    blocker.mkdir(exist_ok=True)
    (blocker / "kiwipiepy.py").write_text("raise ImportError('No module named kiwipiepy')\n", encoding="utf-8")
    path = os.pathsep.join(part for part in (str(blocker), os.environ.get("PYTHONPATH", "")) if part)
    environment = {**os.environ, "PYTHONPATH": path}
    environment.pop("RNNGEN_DEBUG", None)
    return subprocess.run(
        ["rnngen", *arguments], cwd=cwd, capture_output=True, text=True, encoding="utf-8", env=environment
    )


def test_without_kiwipiepy_train_morph_is_a_usage_error(tmp_path: Path) -> None:
    shutil.copy(KOREAN_CORPUS, tmp_path / "korean.txt")
    result = run_without_kiwipiepy(["train", "korean.txt", "--tokenizer", "morph"], tmp_path, tmp_path / "blocker")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == f"rnngen: error: {MISSING_KIWI}"
    assert not (tmp_path / "models").exists()


def test_without_kiwipiepy_a_morph_model_fails_in_one_line_and_others_work(tmp_path: Path) -> None:
    morph = hand_made(tmp_path / "morph", "morph", MORPH_WORDS)
    result = run_without_kiwipiepy(["generate", "영화", "-m", str(morph)], tmp_path, tmp_path / "blocker")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == f"rnngen: error: {MISSING_KIWI}"
    described = run_without_kiwipiepy(["info", "--json", "-m", str(morph)], tmp_path, tmp_path / "blocker")
    assert described.returncode == 0 and json.loads(described.stdout)["tokenizer"] == "morph"
    char = hand_made(tmp_path / "char", "char", CHAR_WORDS)
    generated = run_without_kiwipiepy(["generate", "영화", "-n", "3", "-m", str(char)], tmp_path, tmp_path / "blocker")
    assert generated.returncode == 0 and generated.stderr == ""


def test_word_and_char_models_never_import_kiwipiepy(seed_model: Path, tmp_path: Path) -> None:
    char = hand_made(tmp_path / "char", "char", CHAR_WORDS)
    probe = (
        "import sys\n"
        "from rnngen.cli import main\n"
        "sys.argv = ['rnngen', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(name for name in sys.modules if name.startswith(('kiwipiepy', 'tensorflow', 'keras')))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    corpus = tmp_path / "text.txt"
    corpus.write_text("오늘 날씨가 정말 좋다\n", encoding="utf-8")
    for model in (seed_model, char):
        for arguments in (
            ["generate", "오늘", "-n", "3", "-m", str(model)],
            ["generate", "오늘", "--beam", "2", "-m", str(model)],
            ["next", "오늘", "-m", str(model)],
            ["info", "-m", str(model)],
            ["evaluate", str(corpus), "-m", str(model)],
        ):
            process = subprocess.run(
                [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, encoding="utf-8"
            )
            assert "HEAVY []" in process.stderr, (arguments, process.stderr)


@pytest.fixture(scope="module")
def korean_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """corpora/korean.txt trained with --tokenizer morph and with --tokenizer char (small and quick)."""
    workspace = tmp_path_factory.mktemp("korean")
    shutil.copy(KOREAN_CORPUS, workspace / "korean.txt")
    for kind in ("morph", "char"):
        result = rnngen(
            "train", "korean.txt", "--tokenizer", kind, "-o", f"models/{kind}", "--epochs", "15",
            "--embedding-dim", "16", "--units", "32", "--learning-rate", "0.02", "--quiet", cwd=workspace,
        )  # fmt: skip
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return workspace


@pytest.mark.parametrize("kind", ["morph", "char"])
def test_korean_models_record_their_tokenizer(korean_workspace: Path, kind: str) -> None:
    folder = korean_workspace / "models" / kind
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["tokenizer"]["kind"] == kind
    described = rnngen("info", "--json", "-m", str(folder), cwd=korean_workspace)
    assert described.returncode == 0 and json.loads(described.stdout)["tokenizer"] == kind
    vocabulary = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))["words"]
    assert "▁" in vocabulary if kind == "char" else "가" in vocabulary and "▁오늘" in vocabulary


@pytest.mark.parametrize("kind", ["morph", "char"])
def test_korean_models_generate_readable_text(korean_workspace: Path, kind: str) -> None:
    folder = str(korean_workspace / "models" / kind)
    prompts = ["오늘", "영화가 정말", "친구와 함께", "거북"]
    result = rnngen(
        "generate", "-", "-n", "12", "--json", "--temperature", "1", "--seed", "1", "-m", folder,
        cwd=korean_workspace, stdin="\n".join(prompts) + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["prompt"] for record in records] == prompts
    for record in records:
        text, words = record["text"], record["words"]
        assert WORD_START not in text and len(words) == 12
        # The text is the prompt continued token by token: a token without the mark continues the
        # word before it (never "영화 가"), one with the mark starts a new word.
        assert text == record["prompt"] + "".join(words).replace(WORD_START, " ")
    plain = rnngen("generate", "오늘", "-n", "8", "-m", folder, cwd=korean_workspace)
    assert (plain.returncode, plain.stderr) == (0, "")
    assert plain.stdout.startswith("오늘") and WORD_START not in plain.stdout


def test_a_trained_morph_model_attaches_particles(korean_workspace: Path) -> None:
    folder = str(korean_workspace / "models" / "morph")
    listed = rnngen("next", "날씨", "-k", "3", "--json", "-m", folder, cwd=korean_workspace)
    assert listed.returncode == 0 and listed.stderr == ""
    best = json.loads(listed.stdout)[0]["word"]
    # 날씨 is always followed by a particle in the corpus (날씨가), so the likeliest piece continues the
    # word rather than starting a new one, and the printed text has no space before it.
    assert not best.startswith(WORD_START)
    generated = rnngen("generate", "날씨", "-n", "1", "-m", folder, cwd=korean_workspace)
    assert generated.stdout == f"날씨{best}\n"
    plain = rnngen("next", "날씨", "-k", "2", "-m", folder, cwd=korean_workspace)
    assert plain.stdout.splitlines()[0].endswith(f"\t{best}")


@pytest.mark.parametrize("kind", ["morph", "char"])
def test_korean_models_evaluate(korean_workspace: Path, kind: str) -> None:
    folder = str(korean_workspace / "models" / kind)
    result = rnngen("evaluate", "korean.txt", "--json", "-m", folder, cwd=korean_workspace)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["oov_rate"] == 0.0 and scores["lines"] == 104
    assert 0 < scores["bits_per_char"] < 8 and scores["perplexity"] > 1
