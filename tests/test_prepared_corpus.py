"""Corpora prepared on disk in pieces give what the in-memory reading gives: the same tokens, hash,
held-out lines, vocabulary, ids and counts; and the cache of prepared corpora is used, invalidated
and never trusted when damaged or incomplete."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import rnngen.data.corpus_cache as corpus_cache
import rnngen.data.prepared as prepared_module
from rnngen.config import TokenizerConfig, TokenizerKind
from rnngen.data.batches import TokenStream
from rnngen.data.corpus import CorpusText, build_corpus, held_out_line_numbers, held_out_lines, read_corpus
from rnngen.data.corpus_cache import STALE_SECONDS, cache_entries, clear_cache, open_prepared, remove_leftovers
from rnngen.data.line_blocks import LineBlocks
from rnngen.data.prepared import PreparedCorpus, SourceFiles, prepare_corpus
from rnngen.data.split_counts import load_split
from rnngen.data.streamed_corpus import prepared_corpus
from rnngen.errors import CorpusError

TEXT = (
    "\ufeffThe cat sat on the mat.\r\n"
    "The dog sat, and the cat ran!\r"
    "\n"
    "   \n"
    "a bird on a wire \u1112\u1161\u11ab\u1100\u1173\u11af text\n"  # Hangul as separate jamo: NFC composes them
    "unk the <unk> sat unk\n"
    "one\n"
    "the end of the mat and the cat\n"
    "\ufeffinner bom stays a character\n"
    "dog dog dog bird cat"
)
KOREAN = (
    "오늘 날씨가 정말 좋다.\n집 앞 공원에 사람들이 모여 있다.\n아이들이 놀이터에서 신나게 뛰어놀고 있다.\n오늘 집 앞\n"
)


def _prepare(path: Path, config: TokenizerConfig, folder: Path) -> PreparedCorpus:
    folder.mkdir()
    prepare_corpus(SourceFiles((path,), str(path), None), config, folder)
    return PreparedCorpus(folder)


def _prepared_as_read(tmp_path: Path, content: str, config: TokenizerConfig) -> tuple[PreparedCorpus, CorpusText]:
    """Prepare a text and check it against the text read whole: its hash, its tokens in order, and
    each line's count of them."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content.encode("utf-8"))
    text = read_corpus(corpus, config)
    prepared = _prepare(corpus, config, tmp_path / "prepared")
    assert prepared.sha256 == text.sha256
    ids = np.fromfile(prepared.folder / "ids.bin", dtype=prepared.id_dtype).tolist()
    assert [prepared.words[word_id] for word_id in ids] == [token for line in text.token_lines for token in line]
    assert prepared.line_lengths().tolist() == [len(tokens) for tokens in text.token_lines]
    return prepared, text


def _lines(stream: TokenStream | LineBlocks) -> list[list[int]]:
    if isinstance(stream, LineBlocks):
        return [line for block in range(stream.block_count) for line in _lines(stream.stream(block))]
    return [stream.line(index).tolist() for index in range(stream.line_count)]


@pytest.fixture(params=[1 << 22, 7], ids=["one piece", "tiny pieces"])
def chunk_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(prepared_module, "CHUNK_BYTES", request.param)
    return int(request.param)


@pytest.mark.parametrize(
    "config",
    [
        TokenizerConfig(),
        TokenizerConfig(filters="", lower=False),
        TokenizerConfig(kind=TokenizerKind.char),
    ],
    ids=["word", "word kept as written", "char"],
)
def test_prepared_tokens_and_hash_are_those_of_the_text_read_whole(
    tmp_path: Path, config: TokenizerConfig, chunk_bytes: int
) -> None:
    prepared, text = _prepared_as_read(tmp_path, TEXT, config)
    assert prepared.longest_line == max(len(tokens) for tokens in text.token_lines)


# Whitespace beyond the space (ASCII separators, Unicode spaces and line separators that only separate
# words), runs of empty and blank lines, upper case beyond ASCII, and a line of filtered characters only.
UNUSUAL = (
    "\n\n  \t \nFirst\x1cline\x1fhere\u3000and\xa0there\u2028ΣΑΣ İstanbul\r\n"
    "\n"
    "..., !!!\n"
    "ÉCOLE école\u0301 x\x0by\x0cz\x85end。 終わり\r"
    "\u200a\u2029\n"
    "last line without an end"
)


@pytest.mark.parametrize(
    "config",
    [
        TokenizerConfig(),
        TokenizerConfig(lower=False),
        TokenizerConfig(filters="", lower=False),
        TokenizerConfig(filters="。é\u3000"),
        TokenizerConfig(kind=TokenizerKind.char),
        TokenizerConfig(kind=TokenizerKind.char, filters="", lower=False),
    ],
    ids=["word", "word cased", "word kept as written", "word non-ASCII filters", "char", "char kept as written"],
)
def test_unusual_whitespace_case_and_filters_are_prepared_as_read_whole(
    tmp_path: Path, config: TokenizerConfig, chunk_bytes: int
) -> None:
    _prepared_as_read(tmp_path, UNUSUAL + "\n" + TEXT, config)


def test_a_text_without_tokens_is_prepared_empty(tmp_path: Path, chunk_bytes: int) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"\n \n...\t\r\n\n")
    prepared = _prepare(corpus, TokenizerConfig(), tmp_path / "prepared")
    assert (prepared.lines, prepared.tokens, prepared.words, prepared.has_text) == (0, 0, [], True)


def test_a_piece_of_more_words_than_uint16_holds_keeps_every_id(tmp_path: Path) -> None:
    words = [f"w{index}" for index in range(70_000)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(words) + "\n" + " ".join(reversed(words[-5:] + words[:5])) + "\n", encoding="utf-8")
    prepared = _prepare(corpus, TokenizerConfig(), tmp_path / "prepared")
    assert prepared.id_dtype == np.uint32 and prepared.words == words
    ids = np.fromfile(prepared.folder / "ids.bin", dtype=prepared.id_dtype)
    assert ids[:70_000].tolist() == list(range(70_000))
    assert ids[70_000:].tolist() == [4, 3, 2, 1, 0, 69_999, 69_998, 69_997, 69_996, 69_995]


def test_a_pool_of_workers_prepares_what_one_process_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 50, encoding="utf-8")
    alone = _prepare(corpus, TokenizerConfig(), tmp_path / "alone")
    monkeypatch.setattr(prepared_module, "CHUNK_BYTES", 300)
    monkeypatch.setattr(prepared_module, "POOL_MIN_BYTES", 0)
    pooled = _prepare(corpus, TokenizerConfig(), tmp_path / "pooled")
    assert pooled.meta["files"] == alone.meta["files"] and pooled.sha256 == alone.sha256


def test_a_folder_is_prepared_as_its_files_joined(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "more").mkdir(parents=True)
    (folder / "b.txt").write_text("\ufeffb c\nd", encoding="utf-8")
    (folder / "A.TXT").write_text("a b\n", encoding="utf-8")
    (folder / "more" / "c.txt").write_text("c d e\r\n", encoding="utf-8")
    config = TokenizerConfig()
    text = read_corpus(folder, config)
    opened, source = open_prepared(folder, config)
    assert source.folder_files == 3 and opened.corpus.sha256 == text.sha256
    assert opened.corpus.line_lengths().tolist() == [len(tokens) for tokens in text.token_lines]


def test_invalid_utf8_is_reported_on_the_same_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared_module, "CHUNK_BYTES", 5)
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"a b\nc d\ne f\n\xff g\n")
    with pytest.raises(CorpusError) as whole:
        read_corpus(corpus, TokenizerConfig())
    with pytest.raises(CorpusError) as prepared:
        open_prepared(corpus, TokenizerConfig())
    assert str(prepared.value) == str(whole.value) and "line 4" in str(whole.value)


CASES = [
    (TokenizerConfig(), {}),
    (TokenizerConfig(), {"max_words": 4}),
    (TokenizerConfig(), {"min_count": 2}),
    (TokenizerConfig(filters=""), {"marker": "<unk>"}),
    (TokenizerConfig(), {"marker": "unk", "min_count": 2}),
    (TokenizerConfig(kind=TokenizerKind.char), {"max_words": 10}),
]


@pytest.mark.parametrize(("config", "options"), CASES)
@pytest.mark.parametrize("fraction", [0.0, 0.3])
def test_the_streamed_corpus_equals_the_one_built_in_memory(
    tmp_path: Path, config: TokenizerConfig, options: dict[str, object], fraction: float
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 3, encoding="utf-8")
    text = read_corpus(corpus, config)
    prepared = _prepare(corpus, config, tmp_path / "prepared")
    held_out = held_out_lines(text.usable_lines, fraction, seed=3)
    numbers = held_out_line_numbers(prepared.lines, fraction, seed=3)
    assert np.flatnonzero(held_out).tolist() == numbers.tolist()
    settings = {"max_words": None, "min_count": 1, **options}
    expected = build_corpus(text, held_out, None, **settings)  # type: ignore[arg-type]
    streamed = prepared_corpus(prepared, str(corpus), numbers, None, **settings)  # type: ignore[arg-type]
    assert streamed.vocabulary == expected.vocabulary
    assert streamed.vocabulary.words == expected.vocabulary.words
    assert _lines(streamed.stream) == _lines(expected.stream)
    assert isinstance(streamed.stream, LineBlocks) and isinstance(expected.stream, TokenStream)
    assert (
        streamed.stream.id_counts.tolist()
        == np.bincount(expected.stream.ids, minlength=len(streamed.stream.id_counts)).tolist()
    )
    if expected.validation_stream is None:
        assert streamed.validation_stream is None
    else:
        assert streamed.validation_stream is not None
        assert streamed.validation_stream.ids.tolist() == expected.validation_stream.ids.tolist()
        assert streamed.validation_stream.line_starts.tolist() == expected.validation_stream.line_starts.tolist()
    assert streamed.validation_lines == expected.validation_lines
    assert (streamed.counts, streamed.unknown_tokens, streamed.marker_tokens) == (
        expected.counts,
        expected.unknown_tokens,
        expected.marker_tokens,
    )
    assert (streamed.sha256, streamed.usable_lines, streamed.tokens) == (text.sha256, text.usable_lines, text.tokens)


def test_the_streamed_corpus_reads_a_validation_file_as_the_in_memory_one(tmp_path: Path) -> None:
    corpus, valid = tmp_path / "corpus.txt", tmp_path / "valid.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    valid.write_text("the cat and a zebra\nzebra only\nsat on the mat\n", encoding="utf-8")
    config = TokenizerConfig()
    expected = build_corpus(read_corpus(corpus, config), None, read_corpus(valid, config).token_lines, None, 1)
    streamed = prepared_corpus(
        _prepare(corpus, config, tmp_path / "p"), "corpus", None, _prepare(valid, config, tmp_path / "v"), None, 1
    )
    assert streamed.validation_stream is not None and expected.validation_stream is not None
    assert streamed.validation_stream.ids.tolist() == expected.validation_stream.ids.tolist()
    assert streamed.validation_stream.line_starts.tolist() == expected.validation_stream.line_starts.tolist()
    assert streamed.validation_lines == expected.validation_lines


def test_morph_pieces_are_prepared_as_read_whole(tmp_path: Path) -> None:
    pytest.importorskip("kiwipiepy")
    corpus = tmp_path / "korean.txt"
    corpus.write_text(KOREAN * 3, encoding="utf-8")
    config = TokenizerConfig(kind=TokenizerKind.morph)
    text = read_corpus(corpus, config)
    prepared = _prepare(corpus, config, tmp_path / "prepared")
    held_out = held_out_lines(prepared.lines, 0.25, seed=0)
    expected = build_corpus(text, held_out, None, max_words=12, min_count=1)
    streamed = prepared_corpus(prepared, "korean", np.flatnonzero(held_out), None, max_words=12, min_count=1)
    assert streamed.vocabulary == expected.vocabulary and _lines(streamed.stream) == _lines(expected.stream)
    assert streamed.validation_lines == expected.validation_lines


def test_a_second_open_uses_the_cache_without_tokenizing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    first, _ = open_prepared(corpus, TokenizerConfig())
    assert not first.from_cache

    def no_tokenizing(*arguments: object) -> None:
        raise AssertionError("tokenized again")

    with monkeypatch.context() as patched:
        patched.setattr(corpus_cache, "prepare_corpus", no_tokenizing)
        second, _ = open_prepared(corpus, TokenizerConfig())
    assert second.from_cache and second.corpus.folder == first.corpus.folder
    # Other tokenizer settings are another entry.
    other, _ = open_prepared(corpus, TokenizerConfig(kind=TokenizerKind.char))
    assert not other.from_cache and other.corpus.folder != first.corpus.folder
    assert len(cache_entries()) == 2


def test_a_changed_corpus_is_prepared_again(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    first, _ = open_prepared(corpus, TokenizerConfig())
    corpus.write_text(TEXT + "\nmore words here", encoding="utf-8")
    second, _ = open_prepared(corpus, TokenizerConfig())
    assert not second.from_cache and second.corpus.sha256 != first.corpus.sha256
    assert second.corpus.lines == first.corpus.lines + 1


@pytest.mark.parametrize("damaged", ["ids.bin", "lengths.bin", "words.json", "meta.json"])
def test_a_damaged_entry_is_never_trusted_and_is_prepared_again(tmp_path: Path, damaged: str) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    first, _ = open_prepared(corpus, TokenizerConfig())
    path = first.corpus.folder / damaged
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    again, _ = open_prepared(corpus, TokenizerConfig())
    assert not again.from_cache
    assert json.loads((again.corpus.folder / "meta.json").read_text())["sha256"] == first.corpus.sha256


def test_an_interrupted_preparation_leaves_nothing_that_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    real = corpus_cache.prepare_corpus

    def killed(source: SourceFiles, config: TokenizerConfig, folder: Path) -> None:
        real(source, config, folder)
        (folder / "meta.json").unlink()  # as if killed before the last file was written
        raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(corpus_cache, "prepare_corpus", killed)
        open_prepared(corpus, TokenizerConfig())
    # A kill -9 skips the clean-up: leave such a partial folder behind by hand.
    partial = Path(os.environ["RNNGEN_CACHE"]) / "corpora" / ".partial-killed"
    partial.mkdir(parents=True)
    (partial / "ids.bin").write_bytes(b"\0\0")
    opened, _ = open_prepared(corpus, TokenizerConfig())
    assert not opened.from_cache and not opened.corpus.folder.name.startswith(".partial")
    assert [entry.complete for entry in cache_entries()].count(True) == 1
    assert clear_cache() > 0 and cache_entries() == []


def test_standard_input_is_spooled_and_cached_by_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class FakeInput:
        buffer = io.BytesIO(TEXT.encode("utf-8"))

    monkeypatch.setattr(sys, "stdin", FakeInput)
    first, source = open_prepared("-", TokenizerConfig())
    assert source.name == "standard input" and not first.from_cache
    FakeInput.buffer = io.BytesIO(TEXT.encode("utf-8"))
    second, _ = open_prepared("-", TokenizerConfig())
    assert second.from_cache
    # The spooled copy is gone.
    assert not list(Path(os.environ["RNNGEN_CACHE"]).glob(".partial-*"))


def test_a_second_run_with_the_same_held_out_lines_reuses_their_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnngen.data.streamed_corpus as streamed_module

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 3, encoding="utf-8")
    prepared = _prepare(corpus, TokenizerConfig(), tmp_path / "prepared")
    held_out = held_out_line_numbers(prepared.lines, 0.3, seed=3)
    first = prepared_corpus(prepared, "corpus", held_out, None, None, 1)
    passes: list[int] = []
    counting = streamed_module._training_counts
    monkeypatch.setattr(streamed_module, "_training_counts", lambda *args: passes.append(1) or counting(*args))
    again = prepared_corpus(prepared, "corpus", held_out, None, None, 1)
    assert passes == [] and again.vocabulary.words == first.vocabulary.words
    assert _lines(again.stream) == _lines(first.stream) and again.validation_lines == first.validation_lines
    # Other held-out lines are counted anew; a damaged file of counts is counted anew and replaced.
    prepared_corpus(prepared, "corpus", held_out_line_numbers(prepared.lines, 0.3, seed=4), None, None, 1)
    assert passes == [1]
    for path in prepared.folder.glob("split-*.npz"):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    damaged = prepared_corpus(prepared, "corpus", held_out, None, None, 1)
    assert passes == [1, 1] and damaged.vocabulary.words == first.vocabulary.words
    assert load_split(prepared, held_out) is not None


def test_default_validation_is_a_tenth_then_a_twentieth_of_the_lines_up_to_a_quarter_million_tokens() -> None:
    from rnngen.train.setup import resolve_val_split

    assert resolve_val_split(150, 3_000, None, False) == 0.0  # too few lines to spare any
    assert resolve_val_split(2_500, 50_000, None, False) == 0.1
    assert resolve_val_split(5_000, 100_000, None, False) == pytest.approx(0.05)  # 5,000 tokens
    assert resolve_val_split(7_000, 150_000, None, False) == pytest.approx(1 / 30)
    assert resolve_val_split(10_000, 200_000, None, False) == 0.025
    assert resolve_val_split(100_000, 2_000_000, None, False) == 0.025
    assert resolve_val_split(5_000_000, 100_000_000, None, False) == pytest.approx(0.0025)
    assert resolve_val_split(5_000_000, 100_000_000, 0.2, False) == 0.2  # as asked
    assert resolve_val_split(5_000, 100_000, None, True) == 0.0  # a validation file instead


def _dead_process_id() -> int:
    """The id of a process that has ended (the kernel does not reuse it at once)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _left_behind(folder: Path, name: str, *, as_file: bool = False, age_seconds: float = 0.0) -> Path:
    """A partial folder (holding a file) or a partial file, last written ``age_seconds`` ago."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    inner = path if as_file else path / "ids.bin"
    inner.parent.mkdir(exist_ok=True)
    inner.write_bytes(b"\0\0")
    moment = time.time() - age_seconds
    for touched in {inner, path}:
        os.utime(touched, (moment, moment))
    return path


def test_a_run_removes_what_a_killed_preparation_left_and_spares_live_writers(tmp_path: Path) -> None:
    cache = Path(os.environ["RNNGEN_CACHE"])
    host = "".join(character if character.isalnum() or character == "-" else "-" for character in socket.gethostname())
    dead, alive, day = _dead_process_id(), os.getpid(), STALE_SECONDS
    removed = [
        _left_behind(cache / "corpora", f".partial-{dead}@{host}.abcd"),
        _left_behind(cache, f".partial-{dead}@{host}.stdin-abcd", as_file=True),
        _left_behind(cache / "sources", f".partial-{dead}@{host}.efgh", as_file=True),
        _left_behind(cache / "corpora", f".partial-{alive}@another-host.abcd", age_seconds=day + 60),
        _left_behind(cache / "corpora", ".partial-without-owner", age_seconds=day + 60),
    ]
    kept = [
        _left_behind(cache / "corpora", f".partial-{alive}@{host}.abcd", age_seconds=day + 60),
        _left_behind(cache, f".partial-{alive}@{host}.stdin-abcd", as_file=True),
        _left_behind(cache / "corpora", f".partial-{dead}@another-host.abcd", age_seconds=day - 600),
        _left_behind(cache / "corpora", ".partial-young-without-owner"),
    ]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    opened, _ = open_prepared(corpus, TokenizerConfig())
    assert [path.exists() for path in removed] == [False] * len(removed)
    assert [path.exists() for path in kept] == [True] * len(kept)
    assert opened.corpus.folder.is_dir() and remove_leftovers() == 0
    # --clear removes the rest, but what a live process may still be writing.
    assert clear_cache() > 0
    assert [path.exists() for path in kept] == [True, True, True, False]
    assert not opened.corpus.folder.exists()


def test_a_preparation_names_its_partial_after_its_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    seen: list[str] = []
    real = corpus_cache.prepare_corpus

    def watched(source: SourceFiles, config: TokenizerConfig, folder: Path) -> None:
        seen.append(folder.name)
        # Another run meanwhile leaves this live preparation alone.
        assert remove_leftovers() == 0 and clear_cache() == 0 and folder.is_dir()
        real(source, config, folder)

    monkeypatch.setattr(corpus_cache, "prepare_corpus", watched)
    open_prepared(corpus, TokenizerConfig())
    assert len(seen) == 1 and seen[0].startswith(f".partial-{os.getpid()}@")
