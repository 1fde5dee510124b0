"""Stopping training cleanly: SIGINT and SIGTERM are noted and acted on at the next batch end.

Keras-free, so that both training engines (Keras's fit and the numpy one) share it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rnngen.errors import RnngenError


class TrainingInterrupted(RnngenError):
    """Training stopped on a signal; the exit code is the shell's 128 + signal number."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_caught() -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM are noted in the yielded list instead of killing the process,
    so training stops at a batch end, never in the middle of writing a file. A second signal of
    the same kind acts as usual (Ctrl-C twice forces the stop). Outside the main thread, where
    Python allows no handlers, nothing changes."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signal_number: int, frame: FrameType | None) -> None:
        caught.append(signal_number)
        signal.signal(signal_number, previous[signal.Signals(signal_number)])

    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, note)
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
