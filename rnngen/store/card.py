"""The model card: what a model folder holds, in a few readable fields."""

from __future__ import annotations

import math
from typing import Any

from rnngen.config import LATER_MODEL_SETTINGS, LATER_TRAINING_SETTINGS
from rnngen.network.weights import expected_weight_shapes
from rnngen.store.folder import StoredModel

# Keras's epoch loss (``loss``, ``val_loss``) averages the batches' means, and batches hold different
# numbers of real targets, so it is not the cross-entropy per token that the progress lines, the
# training summary and the perplexities use. The history keeps it as Keras reported it; the kept
# epoch's figures leave it out (folders written before did not), so one name means one number.
BATCH_MEAN_LOSSES = frozenset({"loss", "val_loss"})


def kept_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The kept epoch's figures without Keras's batch-averaged losses."""
    return {name: value for name, value in metrics.items() if name not in BATCH_MEAN_LOSSES}


def parameter_count(stored: StoredModel) -> int:
    return sum(math.prod(shape) for shape in expected_weight_shapes(stored.model).values())


def _settings_or_off(section: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {name: section.get(name, off) for name, off in settings.items()}


def model_card(stored: StoredModel) -> dict[str, Any]:
    """The model's settings, data and scores as one flat-ish dictionary (the JSON of `rnngen info`)."""
    config = stored.config
    model = stored.model
    corpus = config.get("corpus", {})
    calibration = config.get("calibration", {})
    return {
        "folder": str(stored.folder),
        "created": config.get("created"),
        "tokenizer": stored.tokenizer.kind.value,
        "lower": stored.tokenizer.lower,
        "filters": stored.tokenizer.filters,
        "vocabulary": {
            "words": len(stored.vocabulary.words),
            "ids": stored.vocabulary.size,
            "unknown_word": stored.vocabulary.unknown_id is not None,
            # The text's own marker read as the unknown word (--unk-token), as the tokenizer kept it.
            "unknown_marker": stored.vocabulary.unknown_marker,
            # After --unk-singletons (rnngen/train/calibration.py): the words only the held-out lines
            # had, given ids once validation was done, and the nats added to <unk>'s output bias.
            "held_out_words": calibration.get("held_out_words", 0),
            "unknown_bias_shift": calibration.get("shifts", {}).get("<unk>"),
        },
        "model": {
            "cell": model.cell.value,
            "layers": model.layers,
            "bidirectional": model.bidirectional,
            "embedding_dim": model.embedding_dim,
            "units": model.units,
            "dropout": model.dropout,
            "max_len": model.max_len,
            "parameters": parameter_count(stored),
            # The share of each probability the trigram of word counts gives (rnngen/train/mixture.py).
            "trigram_weight": 0.0 if stored.mixture is None else round(1.0 - stored.mixture.network_weight, 6),
            # The networks of several seeds merged into this one (rnngen/train/networks.py); units and
            # embedding_dim are the merged network's, the networks' own times this.
            "networks": len(config.get("networks") or ()) or 1,
        },
        "corpus": {
            "source": corpus.get("source"),
            "sha256": corpus.get("sha256"),
            "lines": corpus.get("usable_lines"),
            "tokens": corpus.get("tokens"),
            "training_targets": corpus.get("training_targets"),
            "validation_targets": corpus.get("validation_targets"),
        },
        "training": {
            "epochs_run": config.get("epochs_run"),
            # Updates in all: an epoch a budget cut short counts in epochs_run with only its batches done.
            "steps_run": config.get("steps_run"),
            "kept_epoch": config.get("metrics", {}).get("epoch"),
            "stop_reason": config.get("stop_reason"),
            "seconds": config.get("training_seconds"),
            **{key: config.get("training", {}).get(key) for key in ("batch_size", "learning_rate", "seed")},
            **_settings_or_off(config.get("training", {}), LATER_TRAINING_SETTINGS),
        },
        # AWD-LSTM's regularisers (rnngen.config.ArchitectureConfig).
        "regularisers": _settings_or_off(config.get("model", {}), LATER_MODEL_SETTINGS),
        "metrics": kept_figures(config.get("metrics", {})),
        "versions": config.get("versions", {}),
    }
