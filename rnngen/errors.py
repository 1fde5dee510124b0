"""The exception types that the command line turns into short messages and exit codes."""

from __future__ import annotations


class RnngenError(Exception):
    """A failure the user can act on; the message is shown as is, without a traceback."""

    exit_code = 1


class UsageError(RnngenError):
    """The command was called with options that cannot work together (exit code 2)."""

    exit_code = 2


class CorpusError(RnngenError):
    """The training corpus is missing, unreadable or holds nothing to learn from."""


class ModelFolderError(RnngenError):
    """A model folder is missing, incomplete or not one that rnngen wrote."""


class UnknownWordsError(RnngenError):
    """The prompt has words outside the vocabulary and the caller asked for strictness."""


class InputError(RnngenError):
    """Text given to a command (prompts on standard input, say) cannot be read."""


class MissingDependencyError(RnngenError):
    """An optional package that the requested feature needs is not installed."""
