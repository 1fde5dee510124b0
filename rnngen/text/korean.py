"""Korean morpheme pieces: each word cut where Kiwi's morphemes start, the pieces spelled as written.

Tokens are surface text, never Kiwi's dictionary forms: "영화가" gives "▁영화" and "가", and "했다"
(하 + 었 + 다, the first two contracted into one syllable) gives "했" and "다". So joining tokens back
is exact and needs no analyser. Kiwi (kiwipiepy) is started on first use, once per process, and only
when a morph tokenizer actually meets a word it has not seen; importing this module costs nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rnngen.errors import MissingDependencyError
from rnngen.text.tokenizers import WORD_START, LineTokenizer, extend_marked_pieces, join_marked

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

MISSING_KIWI_MESSAGE = '--tokenizer morph needs kiwipiepy: pip install "rnngen[ko]"'

# word -> its pieces, the first marked with WORD_START. Words are analysed alone, without the sentence
# around them, so a word always gets the same pieces (in the corpus, in a prompt, in a test file) and
# one analysis serves every occurrence. Emptied when it reaches this many words: memory stays bounded
# (about 300 bytes a word) on endless input, and frequent words come back at once.
MAX_CACHED_WORDS = 1 << 19
MAX_WORKERS = 5
_pieces_of_word: dict[str, tuple[str, ...]] = {}
# One string object per distinct piece, shared by every word and every token list that holds it: a
# corpus's token lists then cost a pointer per token, not a string each.
_shared_pieces: dict[str, str] = {}
_analyser: Kiwi | None = None


def require_kiwipiepy() -> None:
    """Fail with one line that says what to install when kiwipiepy or its model is missing."""
    try:
        import kiwipiepy  # noqa: F401
        import kiwipiepy_model  # noqa: F401
    except ImportError:
        raise MissingDependencyError(MISSING_KIWI_MESSAGE) from None


def _kiwi() -> Kiwi:
    """The process's one analyser, started on first use (a few seconds)."""
    global _analyser
    if _analyser is None:
        require_kiwipiepy()
        from kiwipiepy import Kiwi

        # Each word is analysed alone, so the dictionaries of typos and of multi-word proper nouns
        # could never apply: leaving them out saves start-up time and memory.
        _analyser = Kiwi(num_workers=_worker_count(), load_typo_dict=False, load_multi_dict=False)
    return _analyser


def _worker_count() -> int:
    """Kiwi's analysing threads: one more than the cores this process may use, at most 5.

    The calling thread turns every analysis into Python objects and cuts the word, while holding
    the interpreter lock; one extra worker keeps the cores busy meanwhile (on two cores: three workers
    tokenized NSMC 6-10 % faster than two, four slower again).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(MAX_WORKERS, cores + 1)


def _analysis_options() -> dict[str, Any]:
    """Kiwi options for single words.

    URL, e-mail, hashtag and similar pattern matching is off (match options 0): it costs about half
    of the analysis time and only keeps such strings whole, which the default filters break up anyway.
    """
    return {"match_options": 0}


def cut_word(word: str, morpheme_starts: Iterable[int]) -> list[str]:
    """The word cut at each distinct morpheme start inside it, the first piece marked.

    Contracted morphemes (하 + 었 -> 했) share a start, so a syllable is never split and no character
    is ever lost, whatever the analyser reports.
    """
    bounds = [0]
    for start in sorted(morpheme_starts):
        if bounds[-1] < start < len(word):
            bounds.append(start)
    bounds.append(len(word))
    pieces = [word[begin:end] for begin, end in zip(bounds[:-1], bounds[1:], strict=True)]
    pieces[0] = WORD_START + pieces[0]
    return pieces


def forget_analyses() -> None:
    """Empty the word cache, as if no word had been analysed yet."""
    _pieces_of_word.clear()
    _shared_pieces.clear()


def analyse_words(words: Iterable[str]) -> None:
    """Make sure every word has its pieces in the cache, analysing the new ones in one call to Kiwi."""
    # Sorted: each word's analysis depends on the word alone, but Kiwi ran about 15 % faster through
    # NSMC's words in alphabetical order than in the corpus's order or a hash order (neighbours share
    # their beginnings, which likely keeps Kiwi's tables in the processor's caches).
    unseen = sorted(set(words).difference(_pieces_of_word))
    if not unseen:
        return
    if len(_pieces_of_word) + len(unseen) > MAX_CACHED_WORDS:
        forget_analyses()
    analyses = _kiwi().tokenize(unseen, **_analysis_options())
    share = _shared_pieces.setdefault
    for word, morphemes in zip(unseen, analyses, strict=True):
        pieces = cut_word(word, [morpheme.start for morpheme in morphemes])
        _pieces_of_word[word] = tuple(map(share, pieces, pieces))


@dataclass(frozen=True)
class MorphTokenizer(LineTokenizer):
    """Korean morpheme pieces of each whitespace-separated word (eojeol), as written.

    A piece that begins a word carries WORD_START ("▁영화"); the pieces after it in the same word do
    not ("가"). ``join`` turns each mark into a space, so ``join(split(line))`` gives the cleaned line
    with its words separated by single spaces, and generated text never splits a word from its particle.
    """

    reserves_word_start: ClassVar[bool] = True

    def _split_cleaned(self, lines: Sequence[str]) -> Iterable[list[str]]:
        line_words = [line.split() for line in lines]
        analyse_words(itertools.chain.from_iterable(line_words))
        pieces_of = _pieces_of_word.__getitem__
        # Chained in C, without a Python step per word or per piece.
        return [list(itertools.chain.from_iterable(map(pieces_of, words))) for words in line_words]

    def join(self, tokens: Iterable[str]) -> str:
        return join_marked(tokens)

    def extend_pieces(self, text: str, tokens: Iterable[str]) -> Iterator[str]:
        return extend_marked_pieces(text, tokens)
