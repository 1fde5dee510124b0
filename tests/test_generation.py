"""Generation through the API and the console script: sampling, beam search, next words, pipelines."""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rnngen.config import CellKind, GenerationConfig
from rnngen.data.vocab import Vocabulary
from rnngen.inference.generation import TextGenerator

from .conftest import random_weights, rnngen, saved_model, small_config


@pytest.fixture(scope="module")
def random_generator(tmp_path_factory: pytest.TempPathFactory) -> TextGenerator:
    """A small untrained model with random weights: its choices are far from certain."""
    vocabulary = Vocabulary(("a", "b", "c", "d"))
    config = small_config(vocabulary.size, cell=CellKind.gru, embedding_dim=3, units=4)
    weights = random_weights(config, seed=5, scale=1.5)
    return TextGenerator(saved_model(tmp_path_factory.mktemp("random") / "model", vocabulary, config, weights))


def mean_log_probability(generator: TextGenerator, prompt: str, words: list[str]) -> float:
    readings = generator._read_prompts([generator._encode(prompt, strict=False)])
    total = 0.0
    for word in words:
        word_id = generator.vocabulary.id_of(word)
        assert word_id is not None
        total += float(np.log(readings.probabilities()[0, word_id]))
        readings.feed(np.array([word_id]))
    return total / len(words)


def test_wide_beam_finds_the_most_likely_continuation(random_generator: TextGenerator) -> None:
    every = [list(words) for words in itertools.product("abcd", repeat=3)]
    best = max(every, key=lambda words: mean_log_probability(random_generator, "a b", words))
    found = random_generator.generate("a b", GenerationConfig(words=3, beam=64))
    assert found.words == best
    greedy = random_generator.generate("a b", GenerationConfig(words=3))
    assert mean_log_probability(random_generator, "a b", found.words) >= mean_log_probability(
        random_generator, "a b", greedy.words
    )


def test_same_seed_same_text_and_batches_do_not_matter(random_generator: TextGenerator) -> None:
    settings = GenerationConfig(words=12, temperature=1.5, seed=11)
    alone = [random_generator.generate("a", settings, index=i).text for i in range(6)]
    together = [generation.text for generation in random_generator.generate_batch(["a"] * 6, settings)]
    assert alone == together
    assert len(set(alone)) > 1  # each prompt line draws its own words
    other_seed = random_generator.generate_batch(["a"] * 6, GenerationConfig(words=12, temperature=1.5, seed=12))
    assert [generation.text for generation in other_seed] != alone


def test_generated_probabilities_are_the_models(random_generator: TextGenerator) -> None:
    generation = random_generator.generate("c", GenerationConfig(words=4))
    readings = random_generator._read_prompts([random_generator._encode("c", strict=False)])
    for word, probability in zip(generation.words, generation.probabilities, strict=True):
        word_id = random_generator.vocabulary.id_of(word)
        assert probability == pytest.approx(float(readings.probabilities()[0, word_id]))
        readings.feed(np.array([word_id]))


def test_next_words_are_sorted_and_sum_to_at_most_one(random_generator: TextGenerator) -> None:
    words, unknown = random_generator.next_words("a zebra", 10)
    assert unknown == ["zebra"]
    assert len(words) == 5  # four words and the end of the line
    probabilities = [word.probability for word in words]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-6) or sum(probabilities) < 1.0
    assert "<eol>" in [word.word for word in words]


def test_cli_sampling_is_reproducible_with_a_seed(seed_model: Path, tmp_path: Path) -> None:
    arguments = ["generate", "집", "-n", "6", "--temperature", "3", "--top-k", "5", "-m", str(seed_model)]
    first = rnngen(*arguments, "--seed", "4", cwd=tmp_path)
    second = rnngen(*arguments, "--seed", "4", cwd=tmp_path)
    assert first.returncode == 0 and first.stdout == second.stdout and first.stderr == ""
    assert first.stdout.startswith("집 ") and len(first.stdout.split()) == 7


def test_cli_json_lines_and_next(seed_model: Path, tmp_path: Path) -> None:
    result = rnngen(
        "generate", "-", "-n", "3", "--json", "-m", str(seed_model), cwd=tmp_path, stdin="오늘\n거북이 집\n"
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["text"] for record in records] == ["오늘 날씨가 정말 좋다", "거북이 집 앞 공원에 사람들이"]
    assert records[1]["unknown_words"] == ["거북이"] and records[1]["words"] == ["앞", "공원에", "사람들이"]
    assert all(0 < probability <= 1 for record in records for probability in record["probabilities"])

    listed = rnngen("next", "집", "-k", "2", "--json", "-m", str(seed_model), cwd=tmp_path)
    assert listed.returncode == 0 and listed.stderr == ""
    top = json.loads(listed.stdout)
    assert [entry["word"] for entry in top][0] == "앞" and len(top) == 2
    plain = rnngen("next", "집", "-k", "2", "-m", str(seed_model), cwd=tmp_path)
    assert plain.stdout.splitlines()[0].endswith("\t앞")


def test_cli_beam_and_stop_at_eol(seed_model: Path, tmp_path: Path) -> None:
    result = rnngen(
        "generate", "아이들이", "-n", "9", "--beam", "4", "--stop-at-eol", "-m", str(seed_model), cwd=tmp_path
    )
    assert result.stdout == "아이들이 놀이터에서 신나게 뛰어놀고 있다\n"


def test_many_prompts_in_order_one_line_each(seed_model: Path, tmp_path: Path) -> None:
    prompts = ["오늘", "집", "아이들이", "", "거북이"] * 200
    result = rnngen("generate", "-", "-n", "2", "-m", str(seed_model), cwd=tmp_path, stdin="\n".join(prompts) + "\n")
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == len(prompts)
    assert lines[:5] == ["오늘 날씨가 정말", "집 앞 공원에", "아이들이 놀이터에서 신나게", lines[3], lines[4]]
    assert lines[5:10] == lines[:5] and lines[-5:] == lines[:5]


def test_an_interactive_pipe_gets_each_answer_before_the_next_prompt(seed_model: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        ["rnngen", "generate", "-", "-n", "3", "-m", str(seed_model)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for prompt, expected in (("오늘", "오늘 날씨가 정말 좋다"), ("집", "집 앞 공원에 사람들이")):
            process.stdin.write((prompt + "\n").encode())
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "no answer while the pipe stays open"
            assert process.stdout.readline().decode().rstrip("\n") == expected
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_a_closed_pipe_ends_quietly(seed_model: Path, tmp_path: Path) -> None:
    script = (
        f"yes 오늘 | head -n 20000 | rnngen generate - -n 3 -m {seed_model} 2>{tmp_path / 'err'} | head -n 1; "
        "echo status=${PIPESTATUS[2]}"
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env=os.environ)
    assert result.stdout.splitlines() == ["오늘 날씨가 정말 좋다", "status=0"]
    assert (tmp_path / "err").read_text() == ""


def test_bad_generation_options_are_usage_errors(seed_model: Path, tmp_path: Path) -> None:
    for arguments in (["--top-p", "1.5"], ["--beam", "0"], ["--beam", "2", "--temperature", "1"], ["-n", "-1"]):
        result = rnngen("generate", "오늘", *arguments, "-m", str(seed_model), cwd=tmp_path)
        assert result.returncode == 2, arguments
        assert "Traceback" not in result.stderr


def token_ngrams(generator: TextGenerator, prompt: str, words: list[str], size: int) -> list[tuple[int, ...]]:
    ids = generator._encode(prompt, strict=False).ids + [generator.vocabulary.id_of(word) for word in words]
    return [tuple(ids[start : start + size]) for start in range(len(ids) - size + 1)]


REPEAT_SETTINGS = {
    "argmax": GenerationConfig(words=10, no_repeat_ngram=2),
    "sampling": GenerationConfig(words=10, no_repeat_ngram=2, temperature=2.0, top_k=3, top_p=0.9, seed=3),
    "beam": GenerationConfig(words=10, no_repeat_ngram=2, beam=3),
}


@pytest.mark.parametrize("settings", REPEAT_SETTINGS.values(), ids=REPEAT_SETTINGS.keys())
def test_no_ngram_of_the_text_repeats(random_generator: TextGenerator, settings: GenerationConfig) -> None:
    prompts = ["a", "a b a", "c c", "d b"]
    generations = random_generator.generate_batch(prompts, settings)
    for prompt, generation in zip(prompts, generations, strict=True):
        bigrams = token_ngrams(random_generator, prompt, generation.words, 2)
        if prompt != "c c":  # that prompt repeats itself; nothing generated may add another
            assert len(set(bigrams)) == len(bigrams), generation.text
        assert bigrams.count((3, 3)) <= 1
        assert generation.words  # a vocabulary of four words has sixteen pairs: none runs out this soon
    # Each prompt has its own history: in a batch or alone, the same text.
    alone = [random_generator.generate(prompt, settings, index=i).text for i, prompt in enumerate(prompts)]
    assert [generation.text for generation in generations] == alone


@pytest.mark.parametrize("settings", REPEAT_SETTINGS.values(), ids=REPEAT_SETTINGS.keys())
def test_a_continuation_ends_where_the_rules_leave_no_word(random_generator: TextGenerator, settings) -> None:  # type: ignore[no-untyped-def]
    every_token_once = GenerationConfig(**{**settings.__dict__, "no_repeat_ngram": 1, "words": 10})
    generation = random_generator.generate("a", every_token_once)
    assert sorted(["a", *generation.words]) == ["a", "b", "c", "d"]


def test_argmax_with_the_penalty_takes_the_best_penalised_logit(tmp_path: Path) -> None:
    vocabulary = Vocabulary(("a", "b", "c", "d"))
    config = small_config(vocabulary.size, cell=CellKind.gru, embedding_dim=3, units=4)
    weights = random_weights(config, seed=5, scale=1.5)
    weights["output.bias"] += 5.0  # every logit positive: the penalty divides them
    random_generator = TextGenerator(saved_model(tmp_path / "model", vocabulary, config, weights))
    settings = GenerationConfig(words=8, repetition_penalty=5.0)
    readings = random_generator._read_prompts([random_generator._encode("a b", strict=False)])
    text = [1, 2]
    expected = []
    for _ in range(settings.words):
        logits = readings.logits()[0].astype(np.float64)
        seen = sorted(set(text))
        logits[seen] = np.where(logits[seen] > 0, logits[seen] / 5.0, logits[seen] * 5.0)
        logits[[0, random_generator.vocabulary.end_of_line_id]] = -np.inf
        word_id = int(np.argmax(logits))
        expected.append(random_generator.vocabulary.word_of(word_id))
        text.append(word_id)
        readings.feed(np.array([word_id]))
    plain = random_generator.generate_batch(["a b"], settings, with_probabilities=False)[0]
    with_probabilities = random_generator.generate("a b", settings)
    assert plain.words == with_probabilities.words == expected
    assert expected != random_generator.generate("a b", GenerationConfig(words=8)).words
    # The probabilities reported are still the model's own.
    readings = random_generator._read_prompts([random_generator._encode("a b", strict=False)])
    for word, probability in zip(with_probabilities.words, with_probabilities.probabilities, strict=True):
        word_id = random_generator.vocabulary.id_of(word)
        assert probability == pytest.approx(float(readings.probabilities()[0, word_id]))
        readings.feed(np.array([word_id]))


def word_pairs(text: str) -> list[tuple[str, str]]:
    words = text.split()
    return list(zip(words, words[1:], strict=False))


def test_a_looping_model_stops_repeating_itself(seed_model: Path, tmp_path: Path) -> None:
    arguments = ["generate", "있다", "-n", "12", "-m", str(seed_model)]
    looping = rnngen(*arguments, cwd=tmp_path)
    assert looping.returncode == 0 and looping.stderr == ""
    pairs = word_pairs(looping.stdout)
    assert len(set(pairs)) < len(pairs), "the example needs a prompt the model loops on"
    for options in (["--no-repeat-ngram", "2"], ["--no-repeat-ngram", "2", "--beam", "3"]):
        held = rnngen(*arguments, *options, cwd=tmp_path)
        assert held.returncode == 0 and held.stderr == ""
        pairs = word_pairs(held.stdout)
        assert len(set(pairs)) == len(pairs) and len(pairs) > 3, held.stdout
    for options in (["--repetition-penalty", "5"], ["--repetition-penalty", "5", "--beam", "3"]):
        penalised = rnngen(*arguments, *options, cwd=tmp_path)
        assert penalised.returncode == 0 and penalised.stderr == ""
        assert penalised.stdout != looping.stdout  # ... 있다 있다 있다 ... is broken up


def test_one_prompt_is_printed_as_it_grows(seed_model: Path, tmp_path: Path) -> None:
    script = f"rnngen generate 오늘 -n 1000000 -m {seed_model} | head -c 50; echo; echo status=${{PIPESTATUS[0]}}"
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, env=os.environ)
    assert time.monotonic() - started < 20
    # 50 bytes may end inside a character.
    printed, status = result.stdout.decode(errors="replace").rsplit("\n", 2)[:2]
    assert status == "status=0" and result.stderr == b""
    assert printed.startswith("오늘 날씨가 정말 좋다")


def test_printed_as_it_grows_or_all_at_once_the_text_is_the_same(seed_model: Path, tmp_path: Path) -> None:
    for options in (
        [],
        ["--temperature", "2", "--seed", "1"],
        ["--no-repeat-ngram", "1", "--top-p", "0.9", "--seed", "2"],
    ):
        arguments = ["-n", "30", "-m", str(seed_model), *options]
        streamed = rnngen("generate", "집 앞", *arguments, cwd=tmp_path)
        batched = rnngen("generate", "-", *arguments, cwd=tmp_path, stdin="집 앞\n")
        as_json = rnngen("generate", "집 앞", "--json", *arguments, cwd=tmp_path)
        assert streamed.returncode == 0 and streamed.stdout == batched.stdout
        assert json.loads(as_json.stdout)["text"] + "\n" == streamed.stdout
