"""Imports Keras quietly: its backend's start-up chatter must not reach a user's stderr."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from rnngen.train.allocator import keep_freed_memory

# TensorFlow reads these when it is first imported: no C++ info or warning lines. (oneDNN stays on:
# it nearly halves training time on CPU; its start-up notice is held back with the rest.)
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "ABSL_MIN_LOG_LEVEL": "3"}


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a moment.

    Some TensorFlow builds write lines such as "Could not find cuda drivers" from C++ before any
    log level applies, so only the descriptor itself can hold them back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_keras() -> ModuleType:
    """The keras module, its backend imported with its start-up messages held back."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    keep_freed_memory()  # before the backend's own threads and arenas exist
    with _stderr_silenced():
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
            # Touching the device list makes TensorFlow finish its (noisy) platform start-up now.
            tf.config.list_physical_devices()
        elif importlib.util.find_spec("tensorflow") is not None:
            # On another backend Keras still imports an installed TensorFlow later, to seed it in
            # keras.utils.set_random_seed; importing it here keeps its start-up lines held back.
            import tensorflow  # noqa: F401
    return keras
