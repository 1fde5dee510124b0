"""The Numpy engine as the training run sees it (rnngen.train.engines.Engine)."""

from __future__ import annotations

from typing import Any

from rnngen.config import DistributeKind, EngineKind, PrecisionKind, XlaKind
from rnngen.errors import UsageError
from rnngen.train.engines import numpy_engine_limit
from rnngen.train.numpy_engine.session import NumpySession
from rnngen.train.request import TrainingRequest
from rnngen.train.setup import PreparedRun


class NumpyEngine:
    """The numpy engine, for a request it can train (a usage error names the first option it cannot)."""

    kind = EngineKind.numpy
    backend = "numpy"
    chief = True

    def __init__(self, request: TrainingRequest) -> None:
        limit = numpy_engine_limit(request.architecture, request.execution)
        if limit is not None:
            option, instead = limit
            raise UsageError(f"--engine numpy {instead} (no {option}); use --engine keras")
        self.request = request

    def execution_record(self) -> dict[str, Any]:
        """One CPU, float32, nothing compiled."""
        return {
            "engine": EngineKind.numpy.value,
            "engine_requested": self.request.execution.engine.value,
            "distribute": DistributeKind.none.value,
            "device": "cpu",
            "precision": PrecisionKind.float32.value,
            "xla": XlaKind.off.value,
            "dtype_policy": "float32",
            "replicas": 1,
            "workers": 1,
        }

    def start(self, run: PreparedRun) -> NumpySession:
        return NumpySession(run)
