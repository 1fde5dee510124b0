"""Reads prompts from standard input in batches, without holding back an interactive pipe.

Batching prompts lets the engine step many texts at once; but a user typing into a pipe must get each
answer before typing the next line. So a batch takes every complete line already waiting, and never
waits for more.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from typing import BinaryIO

from rnngen.errors import InputError

READ_SIZE = 1 << 16


def _decode(line: bytes, line_number: int) -> str:
    try:
        return line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise InputError(f"standard input: invalid UTF-8 on line {line_number}") from None


def _waiting(descriptor: int) -> bool:
    return bool(select.select([descriptor], [], [], 0)[0])


def prompt_batches(stream: BinaryIO, limit: int) -> Iterator[list[str]]:
    """Lines of ``stream`` (without their line ends), at most ``limit`` at a time, in order.

    Memory stays bounded by about ``limit`` lines plus one read, however long the input.
    """
    descriptor = stream.fileno()
    pending = b""
    line_number = 0
    at_end = False
    while True:
        lines = pending.split(b"\n")
        pending = lines.pop()  # an incomplete last line waits for the rest of it
        while lines:
            batch, lines = lines[:limit], lines[limit:]
            yield [_decode(line, line_number + index + 1) for index, line in enumerate(batch)]
            line_number += len(batch)
        if at_end:
            if pending:
                yield [_decode(pending, line_number + 1)]
            return
        # Block for the next data, then take whatever else is already waiting, up to about a batch.
        chunk = os.read(descriptor, READ_SIZE)
        at_end = not chunk
        pending += chunk
        while not at_end and pending.count(b"\n") < limit and _waiting(descriptor):
            chunk = os.read(descriptor, READ_SIZE)
            at_end = not chunk
            pending += chunk
