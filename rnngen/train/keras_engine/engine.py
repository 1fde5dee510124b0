"""The Keras engine as the training run sees it (rnngen.train.engines.Engine)."""

from __future__ import annotations

from typing import Any

from rnngen.config import EngineKind
from rnngen.train.keras_engine.backend import import_keras
from rnngen.train.keras_engine.distribution import place_training
from rnngen.train.keras_engine.session import KerasSession
from rnngen.train.request import TrainingRequest
from rnngen.train.setup import PreparedRun

keras = import_keras()


class KerasEngine:
    """The Keras engine, placed for a request: its device, precision and strategy chosen before
    TensorFlow runs anything (a strategy must exist before the first operation)."""

    kind = EngineKind.keras

    def __init__(self, request: TrainingRequest) -> None:
        self.request = request
        self.placement = place_training(request.execution)
        self.backend = keras.backend.backend()
        self.chief = self.placement.chief

    def execution_record(self) -> dict[str, Any]:
        return self.placement.to_json(self.request.execution)

    def start(self, run: PreparedRun) -> KerasSession:
        return KerasSession(run, self.placement, self.request.execution)
