"""Pads window batches to a few fixed shapes, for backends that compile one program per input shape.

JAX (through XLA) compiles the training step anew for every (rows, time) shape it meets. Window
batches come in as many shapes as there are line lengths, and the logits budget makes long lines
come in fewer rows, so a corpus such as the Penn Treebank would cost a compilation for each of
dozens of shapes. Rounded up to a multiple of WIDTH_MULTIPLE positions, and to as many rows as the
batch size and the budget allow, they come in a handful. The padding is masked: targets of id 0 add
nothing to the loss, its gradient or the per-token metrics. (TensorFlow traces one program for all
shapes, and is left alone.)
"""

from __future__ import annotations

import numpy as np

from rnngen.data.vocab import PADDING_ID

WIDTH_MULTIPLE = 8


def bucket_shape(rows: int, width: int, batch_size: int, max_positions: int) -> tuple[int, int]:
    """The (rows, width) a batch of this shape is padded to."""
    padded_width = -(-width // WIDTH_MULTIPLE) * WIDTH_MULTIPLE
    padded_rows = max(rows, min(batch_size, max_positions // padded_width))
    return padded_rows, padded_width


def pad_to_bucket(
    inputs: np.ndarray, targets: np.ndarray, batch_size: int, max_positions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (rows, width) padded with PADDING_ID to their bucket's shape."""
    rows, width = bucket_shape(inputs.shape[0], inputs.shape[1], batch_size, max_positions)
    padding = ((0, rows - inputs.shape[0]), (0, width - inputs.shape[1]))
    return (
        np.pad(inputs, padding, constant_values=PADDING_ID),
        np.pad(targets, padding, constant_values=PADDING_ID),
    )
