"""Generation speed: rnngen's numpy engine against the notebook's TensorFlow path, side by side.

The notebook generates by importing TensorFlow, then for every word re-tokenising the whole text,
re-padding it, calling ``model.predict`` on it and scanning ``word_index`` for the chosen id. This
script measures, in one run:

1. whole process, `rnngen generate 오늘 -n 3` on a model trained on the seed corpus, against a process
   that does the same through the notebook's path (median of several runs each);
2. time per extra word on a PTB-size model (vocabulary 10,000, embedding 200, 2 x LSTM 200), for short
   and long texts, against ``model.predict`` per word on the same weights;
3. 1,000 prompts x 20 words through `rnngen generate -` (whole process), in words per second (median
   of five runs, with the slowest and the fastest).

    python benchmarks/generation.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rnngen.config import CellKind, GenerationConfig, ModelConfig, TokenizerConfig, to_json_dict
from rnngen.data.vocab import Vocabulary
from rnngen.inference.generation import TextGenerator
from rnngen.network.weights import expected_weight_shapes
from rnngen.store.folder import read_model_folder, write_model_folder

HERE = Path(__file__).resolve().parent
SEED_CORPUS = HERE.parent / "corpora" / "seed.txt"
RUNS = 5

# The notebook's generation path, as a process of its own (tokenizer: split on spaces; the seed
# corpus has no punctuation inside words, so this matches the notebook's Tokenizer on it).
NOTEBOOK_GENERATE = """
import os, sys, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
from rnngen.train.keras_engine import model as _registers_rnngen_layers
folder, prompt, words = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = keras.saving.load_model(os.path.join(folder, "model.keras"))
vocabulary = json.load(open(os.path.join(folder, "vocabulary.json"), encoding="utf-8"))
word_index = {word: index + 1 for index, word in enumerate(vocabulary["words"])}
maxlen = json.load(open(os.path.join(folder, "config.json"), encoding="utf-8"))["model"]["max_len"] - 1
current = prompt
for _ in range(words):
    encoded = [vocabulary["end_of_line_id"]] + [word_index[w] for w in current.split() if w in word_index]
    padded = np.zeros((1, maxlen), dtype="int32")
    encoded = encoded[-maxlen:]
    padded[0, maxlen - len(encoded):] = encoded
    result = model.predict(padded, verbose=0)
    result = int(np.argmax(result[0, -1] if result.ndim == 3 else result[0]))
    for word, index in word_index.items():
        if index == result:
            break
    current = current + " " + word
print(current)
"""


def timed(command: list[str], stdin: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, result.stdout


def ptb_size_model(folder: Path) -> Path:
    """A model folder with random weights of PTB size: shapes, not training, set the speed."""
    vocabulary = Vocabulary(tuple(f"w{index}" for index in range(9_999)))
    config = ModelConfig(
        vocab_size=vocabulary.size,
        max_len=36,
        cell=CellKind.lstm,
        layers=2,
        bidirectional=False,
        embedding_dim=200,
        units=200,
        dropout=0.0,
    )
    rng = np.random.default_rng(0)
    weights = {
        name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in expected_weight_shapes(config).items()
    }
    destination = folder / "ptb-size"
    settings = {"tokenizer": to_json_dict(TokenizerConfig()), "model": to_json_dict(config)}
    write_model_folder(destination, settings, vocabulary, weights)
    return destination


def engine_seconds(generator: TextGenerator, words: int) -> float:
    """Seconds to continue one prompt by ``words`` words (best of 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        generator.generate("w1 w2 w3", GenerationConfig(words=words))
        best = min(best, time.perf_counter() - started)
    return best


def predict_ms_per_word(folder: Path, words: int) -> float:
    """The notebook's way on the same weights: model.predict on the re-padded text for each word."""
    from rnngen.train.keras_engine.model import build_model, import_weights

    stored = read_model_folder(folder)
    model = build_model(stored.model)
    import_weights(model, stored.model, stored.weights)
    context = np.zeros((1, stored.model.context_len), dtype="int32")
    context[0, -3:] = [1, 2, 3]
    model.predict(context, verbose=0)
    started = time.perf_counter()
    for _ in range(words):
        probabilities = model.predict(context, verbose=0)
        context = np.roll(context, -1, axis=1)
        context[0, -1] = int(np.argmax(probabilities[0]))
    return (time.perf_counter() - started) / words * 1e3


def main() -> None:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        seed_model = folder / "seed"
        subprocess.run(
            [sys.executable, "-m", "rnngen", "train", str(SEED_CORPUS), "-o", str(seed_model), "--quiet"],
            check=True,
            capture_output=True,
        )
        # The notebook's side loads the Keras model, which the numpy engine does not write.
        subprocess.run(
            [sys.executable, "-m", "rnngen", "export", str(seed_model), "--keras"], check=True, capture_output=True
        )
        rnngen_command = [sys.executable, "-m", "rnngen", "generate", "오늘", "-n", "3", "-m", str(seed_model)]
        notebook_command = [sys.executable, "-c", NOTEBOOK_GENERATE, str(seed_model), "오늘", "3"]
        rnngen_times, notebook_times = [], []
        for _ in range(RUNS):
            seconds, rnngen_output = timed(rnngen_command)
            rnngen_times.append(seconds)
            seconds, notebook_output = timed(notebook_command)
            notebook_times.append(seconds)
        assert rnngen_output.strip() == notebook_output.strip() == "오늘 날씨가 정말 좋다", (
            rnngen_output,
            notebook_output,
        )
        rnngen_seed, notebook_seed = statistics.median(rnngen_times), statistics.median(notebook_times)

        ptb_folder = ptb_size_model(folder)
        generator = TextGenerator.from_folder(ptb_folder)
        seconds = {words: engine_seconds(generator, words) for words in (10, 100, 1000)}
        # The cost of one more word, over short and long texts: flat if the state is carried.
        early = (seconds[100] - seconds[10]) / 90 * 1e3
        late = (seconds[1000] - seconds[100]) / 900 * 1e3
        predict_per_word = predict_ms_per_word(ptb_folder, 30)

        # 1,000 different prompts of two words each.
        prompts = "\n".join(f"w{index} w{index * 7 % 9_999}" for index in range(1000)) + "\n"
        pipeline_command = [sys.executable, "-m", "rnngen", "generate", "-", "-n", "20", "-m", str(ptb_folder)]
        pipeline_times = []
        for _ in range(RUNS):
            pipeline_seconds, pipeline_output = timed(pipeline_command, stdin=prompts)
            assert len(pipeline_output.splitlines()) == 1000
            pipeline_times.append(pipeline_seconds)
        words_per_second = 1000 * 20 / statistics.median(pipeline_times)
        slowest, fastest = 1000 * 20 / max(pipeline_times), 1000 * 20 / min(pipeline_times)

    rows = [
        (
            "generate 오늘 -n 3, whole process (s, median of 5)",
            f"{notebook_seed:.2f}",
            f"{rnngen_seed:.2f}",
            f"{notebook_seed / rnngen_seed:.1f}x",
            "<= 0.5 s and >= 10x",
        ),
        (
            "PTB-size model, ms per extra word, words 10-100",
            f"{predict_per_word:.2f}",
            f"{early:.3f}",
            f"{predict_per_word / early:.0f}x",
            "<= 0.3 ms",
        ),
        ("PTB-size model, ms per extra word, words 100-1,000", "", f"{late:.3f}", "", "<= 0.3 ms, flat"),
        ("PTB-size model, one prompt + 10 words (ms)", "", f"{seconds[10] * 1e3:.1f}", "", ""),
        ("1,000 prompts x 20 words via stdin (words/s, median of 5)", "", f"{words_per_second:,.0f}", "", ">= 20,000"),
        ("  slowest and fastest of the 5 runs (words/s)", "", f"{slowest:,.0f}", f"{fastest:,.0f}", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'notebook':>8}  {'rnngen':>8}  {'ratio':>6}  target")
    for name, notebook, ours, ratio, target in rows:
        print(f"{name:<{width}}  {notebook:>8}  {ours:>8}  {ratio:>6}  {target}")


if __name__ == "__main__":
    main()
