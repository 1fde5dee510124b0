"""Loss and gradients of a one-directional recurrent language model in numpy, by backpropagation through time.

The model is the one the Keras engine's `model.py` builds (embedding -> dropout -> recurrent layers ->
dropout -> output softmax; the random masks are masks.py's), with its weights under the names of
`rnngen.network.weights` and Keras 3's gate orders, so the arrays go into the model folder as they are.
A batch is a pair of post-padded (batch, time) id arrays from `rnngen.data.batches.WindowBatches`; id 0
is padding. The loss is the mean cross-entropy over the batch's real targets, as Keras computes it
for a masked sequence.

Padding sits at the end of a row, so every row starts from a zero state on its first real id, as
under Keras's masking. The steps after a row's end compute values nothing reads: their targets are
padding, so no gradient flows back through them.

A stateful run (--stateful) instead starts each row from the states the previous batch's row ended in,
and no gradient flows back into them: back-propagation through time truncated at the batch's edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnngen.config import CellKind, ModelConfig
from rnngen.data.vocab import PADDING_ID
from rnngen.network.forward import State, sigmoid, softmax_in_place
from rnngen.network.weights import EMBEDDING, OUTPUT_BIAS, OUTPUT_KERNEL, cell_weight_names, output_kernel
from rnngen.train.numpy_engine.masks import BatchMasks, draw_masks
from rnngen.train.numpy_engine.row_gradient import Gradients, RowGradient
from rnngen.train.numpy_engine.sampled_softmax import Candidates


@dataclass(frozen=True)
class BatchScore:
    """Totals over one batch's real targets."""

    cross_entropy: float  # summed over targets, in nats
    correct: int  # targets that were the most likely id
    targets: int
    # AR's and TAR's penalties (--ar, --tar), added to the mean cross-entropy the gradients are of.
    penalty: float = 0.0
    # Each layer's states after the batch's last step, (batch, units) arrays as the network's State: what
    # a stateful run's next batch starts from. Meaningful for batches without padding alone. Not part of
    # a score's equality: two scores are equal when their figures are.
    end_states: list[State] | None = field(default=None, compare=False)


# -- the recurrent cells: forward over all steps keeping what backward needs, and backward ---------


@dataclass
class _CellTrace:
    """What one layer's forward pass keeps for its backward pass, (time, batch, ...) arrays."""

    outputs: np.ndarray  # (time, batch, units): the hidden state after each step
    parts: tuple[np.ndarray, ...]  # the cell's own intermediate values
    initial: State  # the states before the first step: zeros, or a stateful run's carried ones

    def end_state(self) -> State:
        """The states after the last step, in the network's State order: (h,) or (h, c)."""
        if len(self.initial) == 2:
            return (self.outputs[-1].copy(), self.parts[1][-1].copy())
        return (self.outputs[-1].copy(),)


def _start_state(initial: State | None, batch: int, units: int, parts: int, dtype: np.dtype) -> State:
    """The states a layer starts from: ``initial``, or zeros."""
    if initial is None:
        return tuple(np.zeros((batch, units), dtype=dtype) for _ in range(parts))
    if len(initial) != parts or any(state.shape != (batch, units) for state in initial):
        raise ValueError(f"initial states must be {parts} arrays of shape {(batch, units)}")
    return tuple(state.astype(dtype, copy=False) for state in initial)


def _previous_outputs(outputs: np.ndarray, initial_hidden: np.ndarray) -> np.ndarray:
    """(time, batch, units): the hidden state before each step (the initial one before the first)."""
    previous = np.empty_like(outputs)
    previous[0] = initial_hidden
    previous[1:] = outputs[:-1]
    return previous


def _lstm_forward(projected: np.ndarray, recurrent_kernel: np.ndarray, initial: State | None) -> _CellTrace:
    """Gates in Keras's order: input, forget, candidate, output. ``projected`` is x @ W + b."""
    time, batch, _ = projected.shape
    units = recurrent_kernel.shape[0]
    gates = np.empty_like(projected)  # (time, batch, 4 units), after their activations
    cells = np.empty((time, batch, units), dtype=projected.dtype)
    squashed = np.empty_like(cells)  # tanh(cell)
    outputs = np.empty_like(cells)
    start = _start_state(initial, batch, units, 2, projected.dtype)
    hidden, cell = start
    for step in range(time):
        activated = gates[step]
        np.matmul(hidden, recurrent_kernel, out=activated)
        activated += projected[step]
        activated[:, : 2 * units] = sigmoid(activated[:, : 2 * units])
        np.tanh(activated[:, 2 * units : 3 * units], out=activated[:, 2 * units : 3 * units])
        activated[:, 3 * units :] = sigmoid(activated[:, 3 * units :])
        cell = activated[:, units : 2 * units] * cell + activated[:, :units] * activated[:, 2 * units : 3 * units]
        cells[step] = cell
        np.tanh(cell, out=squashed[step])
        hidden = outputs[step]
        np.multiply(activated[:, 3 * units :], squashed[step], out=hidden)
    return _CellTrace(outputs, (gates, cells, squashed), start)


def _lstm_backward(
    trace: _CellTrace, output_gradient: np.ndarray, recurrent_kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(d projected (time, batch, 4 units), d recurrent kernel) from d outputs (time, batch, units)."""
    gates, cells, squashed = trace.parts
    time, batch, units = output_gradient.shape
    gate_gradient = np.empty_like(gates)
    hidden_gradient = np.zeros((batch, units), dtype=gates.dtype)
    cell_gradient = np.zeros_like(hidden_gradient)
    transposed = np.ascontiguousarray(recurrent_kernel.T)
    for step in range(time - 1, -1, -1):
        hidden_gradient += output_gradient[step]
        activated = gates[step]
        input_gate, forget_gate = activated[:, :units], activated[:, units : 2 * units]
        candidate, output_gate = activated[:, 2 * units : 3 * units], activated[:, 3 * units :]
        cell_gradient += hidden_gradient * output_gate * (1.0 - squashed[step] ** 2)
        previous_cell = cells[step - 1] if step > 0 else trace.initial[1]
        gradient = gate_gradient[step]
        gradient[:, :units] = cell_gradient * candidate * input_gate * (1.0 - input_gate)
        gradient[:, units : 2 * units] = cell_gradient * previous_cell * forget_gate * (1.0 - forget_gate)
        gradient[:, 2 * units : 3 * units] = cell_gradient * input_gate * (1.0 - candidate**2)
        gradient[:, 3 * units :] = hidden_gradient * squashed[step] * output_gate * (1.0 - output_gate)
        cell_gradient *= forget_gate
        hidden_gradient = gradient @ transposed
    previous = _previous_outputs(trace.outputs, trace.initial[0]).reshape(time * batch, units)
    kernel_gradient = previous.T @ gate_gradient.reshape(time * batch, 4 * units)
    return gate_gradient, kernel_gradient


def _gru_forward(
    projected: np.ndarray, recurrent_kernel: np.ndarray, recurrent_bias: np.ndarray, initial: State | None
) -> _CellTrace:
    """Keras 3's GRU (reset_after=True): gates update, reset, candidate; the reset gate scales the
    recurrent part after its product, and that part has a bias of its own."""
    time, batch, _ = projected.shape
    units = recurrent_kernel.shape[0]
    gates = np.empty_like(projected)  # update, reset, candidate after their activations
    recurrent_candidates = np.empty((time, batch, units), dtype=projected.dtype)  # h @ U_h + b_h
    outputs = np.empty_like(recurrent_candidates)
    start = _start_state(initial, batch, units, 1, projected.dtype)
    hidden = start[0]
    for step in range(time):
        recurrent = hidden @ recurrent_kernel + recurrent_bias
        activated = gates[step]
        activated[:, : 2 * units] = sigmoid(projected[step, :, : 2 * units] + recurrent[:, : 2 * units])
        reset = activated[:, units : 2 * units]
        recurrent_candidates[step] = recurrent[:, 2 * units :]
        activated[:, 2 * units :] = np.tanh(projected[step, :, 2 * units :] + reset * recurrent[:, 2 * units :])
        update, candidate = activated[:, :units], activated[:, 2 * units :]
        hidden = outputs[step]
        np.copyto(hidden, update * (outputs[step - 1] if step > 0 else start[0]) + (1.0 - update) * candidate)
    return _CellTrace(outputs, (gates, recurrent_candidates), start)


def _gru_backward(
    trace: _CellTrace, output_gradient: np.ndarray, recurrent_kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d projected, d recurrent kernel, d recurrent bias (3 units,)) from d outputs."""
    gates, recurrent_candidates = trace.parts
    time, batch, units = output_gradient.shape
    previous = _previous_outputs(trace.outputs, trace.initial[0])
    input_gradient = np.empty_like(gates)  # d (x @ W + b_input)
    recurrent_gradient = np.empty_like(gates)  # d (h @ U + b_recurrent)
    hidden_gradient = np.zeros((batch, units), dtype=gates.dtype)
    transposed = np.ascontiguousarray(recurrent_kernel.T)
    for step in range(time - 1, -1, -1):
        hidden_gradient += output_gradient[step]
        activated = gates[step]
        update, reset, candidate = activated[:, :units], activated[:, units : 2 * units], activated[:, 2 * units :]
        candidate_gradient = hidden_gradient * (1.0 - update) * (1.0 - candidate**2)
        update_gradient = hidden_gradient * (previous[step] - candidate) * update * (1.0 - update)
        reset_gradient = candidate_gradient * recurrent_candidates[step] * reset * (1.0 - reset)
        into_input, into_recurrent = input_gradient[step], recurrent_gradient[step]
        into_input[:, :units] = update_gradient
        into_input[:, units : 2 * units] = reset_gradient
        into_input[:, 2 * units :] = candidate_gradient
        into_recurrent[:, : 2 * units] = into_input[:, : 2 * units]
        into_recurrent[:, 2 * units :] = candidate_gradient * reset
        hidden_gradient = hidden_gradient * update + into_recurrent @ transposed
    flat_recurrent = recurrent_gradient.reshape(time * batch, 3 * units)
    kernel_gradient = previous.reshape(time * batch, units).T @ flat_recurrent
    return input_gradient, kernel_gradient, flat_recurrent.sum(axis=0)


def _simple_forward(projected: np.ndarray, recurrent_kernel: np.ndarray, initial: State | None) -> _CellTrace:
    outputs = np.empty_like(projected)  # (time, batch, units)
    time, batch, units = projected.shape
    start = _start_state(initial, batch, units, 1, projected.dtype)
    if initial is None:
        np.tanh(projected[0], out=outputs[0])  # the state before the first step is zero
    else:
        np.tanh(projected[0] + start[0] @ recurrent_kernel, out=outputs[0])
    for step in range(1, time):
        np.tanh(projected[step] + outputs[step - 1] @ recurrent_kernel, out=outputs[step])
    return _CellTrace(outputs, (), start)


def _simple_backward(
    trace: _CellTrace, output_gradient: np.ndarray, recurrent_kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    time, batch, units = output_gradient.shape
    projected_gradient = np.empty_like(output_gradient)
    hidden_gradient = np.zeros((batch, units), dtype=output_gradient.dtype)
    transposed = np.ascontiguousarray(recurrent_kernel.T)
    for step in range(time - 1, -1, -1):
        hidden_gradient += output_gradient[step]
        gradient = projected_gradient[step]
        np.multiply(hidden_gradient, 1.0 - trace.outputs[step] ** 2, out=gradient)
        hidden_gradient = gradient @ transposed
    previous = _previous_outputs(trace.outputs, trace.initial[0]).reshape(time * batch, units)
    return projected_gradient, previous.T @ projected_gradient.reshape(time * batch, units)


# -- the whole model ----------------------------------------------------------------------------------


@dataclass
class _LayerTrace:
    inputs: np.ndarray  # (time, batch, inputs): what the layer read, after dropout
    keep: np.ndarray | None  # dropout's scaled mask on the inputs, or None
    recurrent_keep: np.ndarray | None  # weight drop's scaled mask on the recurrent kernel, or None
    cell: _CellTrace


def _masked(values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return values if keep is None else values * keep


def _layer_forward(
    weights: Mapping[str, np.ndarray],
    kind: CellKind,
    layer: int,
    inputs: np.ndarray,
    recurrent_keep: np.ndarray | None,
    initial: State | None,
) -> _CellTrace:
    kernel, recurrent_kernel, bias = (weights[name] for name in cell_weight_names(layer))
    recurrent_kernel = _masked(recurrent_kernel, recurrent_keep)
    time, batch, width = inputs.shape
    projected = inputs.reshape(time * batch, width) @ kernel
    projected += bias[0] if kind is CellKind.gru else bias
    projected = projected.reshape(time, batch, -1)
    if kind is CellKind.lstm:
        return _lstm_forward(projected, recurrent_kernel, initial)
    if kind is CellKind.gru:
        return _gru_forward(projected, recurrent_kernel, bias[1], initial)
    return _simple_forward(projected, recurrent_kernel, initial)


def _score(probabilities: np.ndarray, targets: np.ndarray) -> BatchScore:
    rows = np.arange(len(targets))
    chosen = probabilities[rows, targets]
    cross_entropy = float(-np.log(np.maximum(chosen, np.finfo(np.float32).tiny)).sum(dtype=np.float64))
    correct = int(np.count_nonzero(probabilities.argmax(axis=1) == targets))
    return BatchScore(cross_entropy, correct, len(targets))


def _forward(
    weights: Mapping[str, np.ndarray],
    config: ModelConfig,
    inputs: np.ndarray,
    masks: BatchMasks,
    initial_states: Sequence[State] | None = None,
) -> tuple[list[_LayerTrace], np.ndarray]:
    """Layer traces, and the top layer's outputs (time, batch, units) after dropout. Each layer starts
    from its ``initial_states`` entry, or from zeros without them."""
    if initial_states is not None and len(initial_states) != config.layers:
        raise ValueError(f"initial states for {len(initial_states)} layers, where the model has {config.layers}")
    ids = inputs.T  # (time, batch)
    hidden = weights[EMBEDDING][ids]  # (time, batch, embedding_dim)
    if masks.embedding_rows is not None:
        # Dropping a row of the matrix drops its word at every position of the batch.
        hidden *= masks.embedding_rows[ids][..., np.newaxis]
    traces = []
    for layer in range(config.layers):
        layer_inputs = _masked(hidden, masks.layer_inputs[layer])
        recurrent_keep = masks.recurrent_kernels[layer]
        initial = None if initial_states is None else initial_states[layer]
        cell = _layer_forward(weights, config.cell, layer, layer_inputs, recurrent_keep, initial)
        traces.append(_LayerTrace(layer_inputs, masks.layer_inputs[layer], recurrent_keep, cell))
        hidden = cell.outputs
    return traces, _masked(hidden, masks.top)


def _check_batch(config: ModelConfig, inputs: np.ndarray, targets: np.ndarray) -> None:
    if config.bidirectional:
        raise ValueError("backprop trains one-directional models only")
    if inputs.shape != targets.shape or inputs.ndim != 2:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must be the same (batch, time)")


def score_batch(
    weights: Mapping[str, np.ndarray],
    config: ModelConfig,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_states: Sequence[State] | None = None,
) -> BatchScore:
    """Cross-entropy and accuracy over a batch's real targets, without dropout (validation), read from
    ``initial_states`` (zeros without them)."""
    _check_batch(config, inputs, targets)
    masks = draw_masks(config, inputs.shape[1], inputs.shape[0], None)
    traces, top = _forward(weights, config, inputs, masks, initial_states)
    real = np.flatnonzero(targets.T.ravel() != PADDING_ID)  # time-major positions of real targets
    logits = top.reshape(-1, top.shape[-1])[real] @ output_kernel(weights, config)
    logits += weights[OUTPUT_BIAS]
    score = _score(softmax_in_place(logits, sum_dtype=None), targets.T.ravel()[real])
    return _with_end_states(score, traces)


def _with_end_states(score: BatchScore, traces: list[_LayerTrace], penalty: float = 0.0) -> BatchScore:
    end_states = [trace.cell.end_state() for trace in traces]
    return BatchScore(score.cross_entropy, score.correct, score.targets, penalty, end_states)


def _activation_penalties(
    config: ModelConfig, top: np.ndarray, outputs: np.ndarray, real: np.ndarray
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """AR's and TAR's penalties on the last layer, with their gradients: AR's with respect to its
    outputs after dropout (``top``, (time, batch, units)), TAR's with respect to the change of its
    outputs before dropout from each step to the next ((time - 1, batch, units)); None where off.

    Each is a mean over the real positions (``real``, (time, batch) booleans) and units, as AWD-LSTM
    takes it over a batch without padding: AR over every real position, TAR over every step whose
    step before is real too (the first step of a batch has none: no change is charged across batches).
    Computed in the outputs' own precision, with masks only where a batch has padding: these are
    whole passes over the batch's largest activations, a few percent of a step each.
    """
    alpha, beta = config.activation_regularization, config.temporal_activation_regularization
    padded = not real.all()
    penalty = 0.0
    top_gradient = change_gradient = None
    units = top.shape[-1]
    if alpha > 0:
        real_top = top * real[..., np.newaxis].astype(top.dtype) if padded else top
        flat = real_top.ravel()
        scale = 1.0 / (np.count_nonzero(real) * units)
        penalty += alpha * scale * float(np.dot(flat, flat))
        top_gradient = real_top * (2 * alpha * scale)
    if beta > 0:
        pairs = real[1:] & real[:-1]  # (time - 1, batch)
        count = np.count_nonzero(pairs)
        if count:
            change_gradient = outputs[1:] - outputs[:-1]
            if padded:
                change_gradient *= pairs[..., np.newaxis].astype(outputs.dtype)
            flat = change_gradient.ravel()
            scale = 1.0 / (count * units)
            penalty += beta * scale * float(np.dot(flat, flat))
            change_gradient *= 2 * beta * scale
    return penalty, top_gradient, change_gradient


def _summed_per_id(ids: np.ndarray, gradients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ids, sorted, and the gradients of the looked-up rows summed per id (ids (n,),
    gradients (n, dim))."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    return sorted_ids[starts].astype(np.int64), np.add.reduceat(gradients[order], starts, axis=0)


def _spread_over_vocabulary(vocab_size: int, candidates: Candidates | None, gradient: np.ndarray) -> np.ndarray:
    """An output-layer gradient over the candidates' columns (its last axis) put in place among zeros
    for the words not scored, since the optimizer steps whole arrays; as it is without candidates."""
    if candidates is None:
        return gradient
    full = np.zeros((*gradient.shape[:-1], vocab_size), dtype=gradient.dtype)
    full[..., candidates.ids] = gradient
    return full


def loss_and_gradients(
    weights: Mapping[str, np.ndarray],
    config: ModelConfig,
    inputs: np.ndarray,
    targets: np.ndarray,
    random: np.random.Generator | None = None,
    candidates: Candidates | None = None,
    initial_states: Sequence[State] | None = None,
) -> tuple[BatchScore, Gradients]:
    """One training batch: its score, and the gradient of its mean cross-entropy per real target for
    every trainable array (`trainable_names`). ``random`` draws the masks of dropout and the other
    regularisers (masks.py); None turns them off. AR's and TAR's penalties (``config``'s) are added to
    the loss the gradients are of, and reported in the score. With ``candidates`` (sampled_softmax.py) each target
    is scored against those words alone, and the score is the sampled estimate, and the embedding's
    gradient is a RowGradient of the rows the batch reads and, tied, its candidates'. The layers start from
    ``initial_states`` (zeros without them), as constants: no gradient flows into them."""
    _check_batch(config, inputs, targets)
    masks = draw_masks(config, inputs.shape[1], inputs.shape[0], random)
    traces, top = _forward(weights, config, inputs, masks, initial_states)
    time, batch, width = top.shape
    real = np.flatnonzero(targets.T.ravel() != PADDING_ID)
    if len(real) == 0:
        raise ValueError("a batch with no real targets")
    top_real = top.reshape(time * batch, width)[real]  # (targets, width)
    real_targets = targets.T.ravel()[real]
    kernel = output_kernel(weights, config)
    bias = weights[OUTPUT_BIAS]
    if candidates is not None:
        # The output layer's columns of the candidates alone, and the targets' places among them.
        kernel = weights[EMBEDDING][candidates.ids].T if config.tie_embeddings else kernel[:, candidates.ids]
        bias = bias[candidates.ids] - candidates.log_inclusion
        real_targets = candidates.positions(real_targets)
    probabilities = top_real @ kernel
    probabilities += bias
    softmax_in_place(probabilities, sum_dtype=None)
    score = _score(probabilities, real_targets)

    # d loss / d logits = (softmax - one-hot) / targets, written over the probabilities.
    logits_gradient = probabilities
    logits_gradient[np.arange(len(real)), real_targets] -= 1.0
    logits_gradient *= 1.0 / len(real)
    output_bias_gradient = logits_gradient.sum(axis=0)
    output_kernel_gradient = top_real.T @ logits_gradient  # (width, vocab or candidates)
    top_gradient = np.zeros((time * batch, width), dtype=top.dtype)
    top_gradient[real] = logits_gradient @ kernel.T
    hidden_gradient = top_gradient.reshape(time, batch, width)
    real_steps = targets.T != PADDING_ID  # (time, batch)
    penalty, penalty_top, penalty_change = _activation_penalties(config, top, traces[-1].cell.outputs, real_steps)
    if penalty_top is not None:
        hidden_gradient += penalty_top
    if masks.top is not None:
        hidden_gradient *= masks.top
    if penalty_change is not None:  # the change h_t - h_t-1 grows with h_t and shrinks with h_t-1
        hidden_gradient[1:] += penalty_change
        hidden_gradient[:-1] -= penalty_change
    gradients: Gradients = {OUTPUT_BIAS: _spread_over_vocabulary(config.vocab_size, candidates, output_bias_gradient)}

    for layer in range(config.layers - 1, -1, -1):
        trace = traces[layer]
        kernel_name, recurrent_kernel_name, bias_name = cell_weight_names(layer)
        # The kernel the steps used: weight drop's masked one.
        recurrent_kernel = _masked(weights[recurrent_kernel_name], trace.recurrent_keep)
        if config.cell is CellKind.lstm:
            projected_gradient, recurrent_gradient = _lstm_backward(trace.cell, hidden_gradient, recurrent_kernel)
            bias_gradient = projected_gradient.reshape(time * batch, -1).sum(axis=0)
        elif config.cell is CellKind.gru:
            projected_gradient, recurrent_gradient, recurrent_bias_gradient = _gru_backward(
                trace.cell, hidden_gradient, recurrent_kernel
            )
            input_bias_gradient = projected_gradient.reshape(time * batch, -1).sum(axis=0)
            bias_gradient = np.stack([input_bias_gradient, recurrent_bias_gradient])
        else:
            projected_gradient, recurrent_gradient = _simple_backward(trace.cell, hidden_gradient, recurrent_kernel)
            bias_gradient = projected_gradient.reshape(time * batch, -1).sum(axis=0)
        flat_projected = projected_gradient.reshape(time * batch, -1)
        layer_inputs = trace.inputs.reshape(time * batch, -1)
        gradients[kernel_name] = layer_inputs.T @ flat_projected
        gradients[recurrent_kernel_name] = _masked(recurrent_gradient, trace.recurrent_keep)
        gradients[bias_name] = bias_gradient
        hidden_gradient = (flat_projected @ weights[kernel_name].T).reshape(time, batch, -1)
        if trace.keep is not None:
            hidden_gradient *= trace.keep

    rows, values = _summed_per_id(inputs.T.ravel(), hidden_gradient.reshape(time * batch, -1))
    if masks.embedding_rows is not None:
        values *= masks.embedding_rows[rows][:, np.newaxis]
    if candidates is None:
        embedding_gradient = np.zeros((config.vocab_size, values.shape[1]), dtype=values.dtype)
        embedding_gradient[rows] = values
        if config.tie_embeddings:
            embedding_gradient += output_kernel_gradient.T
        gradients[EMBEDDING] = embedding_gradient
    else:
        if config.tie_embeddings:
            # The output layer's gradient goes to the candidates' rows alone.
            read = rows
            rows = np.union1d(read, candidates.ids)
            tied = np.zeros((len(rows), values.shape[1]), dtype=values.dtype)
            tied[np.searchsorted(rows, read)] = values
            tied[np.searchsorted(rows, candidates.ids)] += output_kernel_gradient.T
            values = tied
        gradients[EMBEDDING] = RowGradient(rows, values)
    if not config.tie_embeddings:
        gradients[OUTPUT_KERNEL] = _spread_over_vocabulary(config.vocab_size, candidates, output_kernel_gradient)
    return _with_end_states(score, traces, penalty), gradients
