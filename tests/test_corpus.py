"""Holding out validation lines: whole lines, chosen by the seed, and a vocabulary from the rest alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnngen.config import TokenizerConfig, TokenizerKind
from rnngen.data.corpus import CorpusText, WordCounts, build_corpus, held_out_lines, read_source, unknown_marker
from rnngen.errors import UsageError


def test_validation_lines_are_held_out_whole_and_by_the_seed() -> None:
    chosen = held_out_lines(10, fraction=0.3, seed=0)
    assert chosen.sum() == 3
    assert np.array_equal(chosen, held_out_lines(10, fraction=0.3, seed=0))
    assert not np.array_equal(chosen, held_out_lines(10, fraction=0.3, seed=1))
    assert not held_out_lines(10, fraction=0.0, seed=0).any()
    assert not held_out_lines(1, fraction=0.3, seed=0).any()  # nothing would be left to train on


def test_the_vocabulary_comes_from_the_training_lines_only() -> None:
    text = CorpusText("corpus", "0" * 64, [["a", "b"], ["a", "c"], ["held", "out", "a"]])
    corpus = build_corpus(text, np.array([False, False, True]), None, max_words=None, min_count=1)
    assert corpus.vocabulary.words == ("a", "b", "c")
    assert corpus.validation_lines == [["held", "out", "a"]]
    # The held-out line's unknown words are left out of its ids, as evaluate leaves them out.
    assert corpus.validation_stream is not None and corpus.validation_stream.ids.tolist() == [1]
    assert corpus.stream.line_count == 2 and corpus.usable_lines == 3 and corpus.tokens == 7
    assert corpus.counts == WordCounts(tokens=4, singleton_tokens=2, distinct_characters=3)


def test_a_validation_file_replaces_the_held_out_lines() -> None:
    text = CorpusText("corpus", "0" * 64, [["a", "b"], ["b", "c"]])
    corpus = build_corpus(text, None, [["c", "d"]], max_words=None, min_count=1)
    assert corpus.stream.line_count == 2 and corpus.validation_lines == [["c", "d"]]


def test_the_escape_probability_is_the_share_of_words_seen_once() -> None:
    assert WordCounts.of([["a", "a", "b", "c"]]).escape_probability == 0.5
    # At least one token's share, even when every word was seen twice.
    assert WordCounts.of([["a", "a", "b", "b"]]).escape_probability == 0.25


def test_a_folder_joins_its_txt_files_in_path_order_whatever_the_case(tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    for name, line in [("b.txt", "b"), ("A.TXT", "a"), ("more/c.Txt", "c"), ("d.md", "d"), ("e.txt.bak", "e")]:
        (tmp_path / name).write_text(line + "\n", encoding="utf-8")
    read = read_source(tmp_path)
    # Path order, as sorted() orders paths: upper case before lower case, a folder's files at its name.
    assert read.text == "a\n\nb\n\nc\n" and read.files == 3
    assert read_source(tmp_path / "b.txt").files is None


def test_the_unknown_word_marker_is_read_as_the_tokenizer_reads_the_text() -> None:
    assert unknown_marker("<unk>", TokenizerConfig(filters="")) == "<unk>"
    # The default filters drop the angle brackets, in the text and in the marker alike.
    assert unknown_marker("<unk>", TokenizerConfig()) == "unk"
    assert unknown_marker("UNK", TokenizerConfig()) == "unk"
    for token, config in [
        ("<>", TokenizerConfig()),
        ("two words", TokenizerConfig()),
        ("<unk>", TokenizerConfig(kind=TokenizerKind.char, filters="")),
    ]:
        with pytest.raises(UsageError, match="--filters"):
            unknown_marker(token, config)


def test_the_marker_is_counted_and_kept_out_of_the_unknown_tokens() -> None:
    text = CorpusText("corpus", "0" * 64, [["a", "<unk>", "b"], ["<unk>", "c"]])
    corpus = build_corpus(text, None, None, max_words=None, min_count=1, marker="<unk>")
    assert corpus.vocabulary.unknown_marker == "<unk>" and corpus.vocabulary.words == ("a", "b", "c")
    assert corpus.marker_tokens == 2 and corpus.unknown_tokens == 0
    assert corpus.stream.ids.tolist() == [1, 5, 2, 5, 3]
