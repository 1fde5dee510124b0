"""Where training runs and in which number format: the device (--device) and precision (--precision).

Works on each Keras backend: TensorFlow, JAX and PyTorch find their GPUs differently, and each is
asked in its own terms. Nothing here imports TensorFlow unless it is the backend.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from rnngen.config import DeviceKind, PrecisionKind
from rnngen.errors import UsageError
from rnngen.train.keras_engine.backend import import_keras

keras = import_keras()

GPU = "gpu"
CPU = "cpu"


def _no_gpu_error(backend: str) -> UsageError:
    return UsageError(
        f"--device gpu: no GPU is visible to {backend} (check the driver, CUDA_VISIBLE_DEVICES and that a "
        "GPU build is installed), or train with --device cpu"
    )


def _tensorflow_device(device: DeviceKind) -> str:
    import tensorflow as tf

    gpus = tf.config.get_visible_devices("GPU")
    if device is DeviceKind.cpu:
        if gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                # TensorFlow fixes its devices when it first runs an operation.
                raise UsageError(
                    "--device cpu: TensorFlow has already started on the GPU in this process; "
                    "set CUDA_VISIBLE_DEVICES=-1 before starting instead"
                ) from None
        return CPU
    if device is DeviceKind.gpu and not gpus:
        raise _no_gpu_error("TensorFlow")
    return GPU if gpus else CPU


def _jax_gpus() -> list[Any]:
    import jax

    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib, or no device for it
        return []


def _jax_device(device: DeviceKind) -> str:
    import jax

    gpus = _jax_gpus()
    if device is DeviceKind.cpu:
        # Keras's JAX backend puts arrays on JAX's default device.
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
        return CPU
    if device is DeviceKind.gpu and not gpus:
        raise _no_gpu_error("JAX")
    return GPU if gpus else CPU


def _torch_device(device: DeviceKind) -> str:
    import torch

    has_gpu = torch.cuda.is_available()
    # Keras's PyTorch backend chooses its device once, when it is imported.
    chosen = os.environ.get("KERAS_TORCH_DEVICE", "cuda" if has_gpu else "cpu")
    if device is DeviceKind.cpu and chosen != "cpu":
        raise UsageError("--device cpu with the torch backend: set KERAS_TORCH_DEVICE=cpu before starting rnngen")
    if device is DeviceKind.gpu and not (has_gpu and chosen.startswith("cuda")):
        raise _no_gpu_error("PyTorch")
    return GPU if chosen.startswith("cuda") else CPU


def select_device(device: DeviceKind) -> str:
    """Make Keras train on the requested device, before anything runs on one; "gpu" or "cpu".

    ``auto`` takes a GPU when one is visible, ``cpu`` hides the GPUs, and ``gpu`` without a visible
    GPU is a usage error (exit code 2), not a silent fall-back to hours on the CPU.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_device(device)
    if backend == "jax":
        return _jax_device(device)
    if backend == "torch":
        return _torch_device(device)
    if device is DeviceKind.gpu:
        raise _no_gpu_error(f"the {backend} backend")
    return CPU


def gpu_available() -> bool:
    """Whether Keras's backend sees a GPU to train on (``--device auto`` would take it)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.get_visible_devices("GPU"))
    if backend == "jax":
        return bool(_jax_gpus())
    if backend == "torch":
        import torch

        return torch.cuda.is_available() and os.environ.get("KERAS_TORCH_DEVICE", "cuda").startswith("cuda")
    return False


def dtype_policy_name(precision: PrecisionKind, device: str) -> str:
    """The Keras dtype policy for a precision on a device.

    Mixed precision computes in 16 bits and keeps the weights in float32: float16 on a GPU (tensor
    cores; Keras then scales the loss so small gradients do not vanish), bfloat16 on a CPU, which
    has float32's range (no loss scaling) and runs fast on CPUs with AVX-512 BF16 or AMX.
    """
    if precision is PrecisionKind.float32:
        return "float32"
    return "mixed_float16" if device == GPU else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Layers created inside compute with the named policy; the global policy is put back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
