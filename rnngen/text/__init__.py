"""Text in, tokens out: reading and normalising text (clean.py), cutting lines into words or characters
(tokenizers.py) or Korean morpheme pieces (korean.py, loaded only for morph models).

``make_tokenizer`` is the one place a tokenizer configuration becomes a tokenizer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from rnngen.config import TokenizerConfig, TokenizerKind
from rnngen.text.tokenizers import CharTokenizer, LineTokenizer, WordTokenizer


def make_tokenizer(config: TokenizerConfig) -> LineTokenizer:
    """The tokenizer a saved or requested configuration describes."""
    if config.kind is TokenizerKind.char:
        return CharTokenizer(filters=config.filters, lower=config.lower)
    if config.kind is TokenizerKind.morph:
        # Imported here so that word and char models never load the Korean module.
        from rnngen.text.korean import MorphTokenizer

        return MorphTokenizer(filters=config.filters, lower=config.lower)
    return WordTokenizer(filters=config.filters, lower=config.lower)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a while, then back as it was.

    Tokenizing a corpus creates a list per line (and the morph tokenizer a tuple per new word), none
    of which can take part in a reference cycle; as they pile up the collector would scan them all
    again and again for nothing (about 6 % of the time on NSMC's 150,000 lines).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tokenize_lines(text: str, tokenizer_config: TokenizerConfig) -> list[list[str]]:
    """The tokens of every non-empty line of a text."""
    tokenizer = make_tokenizer(tokenizer_config)
    with _cycle_collector_paused():
        return [tokens for tokens in tokenizer.split_lines(text.split("\n")) if tokens]


def tokenize_text(text: str, tokenizer_config: TokenizerConfig) -> tuple[list[str], np.ndarray]:
    """The tokens of a text end to end, and (non-empty lines,) int64 how many each non-empty line holds:
    ``tokenize_lines`` without a list per line."""
    tokenizer = make_tokenizer(tokenizer_config)
    with _cycle_collector_paused():
        tokens, counts = tokenizer.split_text(text)
    return tokens, counts[counts > 0]
