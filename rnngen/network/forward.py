"""A numpy forward pass of a saved model, one step at a time with the recurrent state carried.

Generation never needs TensorFlow: the model folder holds the weights as plain arrays, and this
module replays the Keras layers (Embedding with masked padding, SimpleRNN/LSTM/GRU, stacked and
bidirectional, Dense softmax) with the same formulas and weight layouts as Keras 3.

The weights are named and shaped as ``rnngen.network.weights`` lays them out. A model mixed with a
trigram of word counts (``rnngen.network.trigram``) gives the mixture's distributions instead of the
softmax's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import DTypeLike

from rnngen.config import CellKind, ModelConfig
from rnngen.network.trigram import TrigramMixture, contexts_before
from rnngen.network.weights import (
    EMBEDDING,
    OUTPUT_BIAS,
    OUTPUT_KERNEL,
    cell_weight_names,
    expected_weight_shapes,
    model_directions,
)

State = tuple[np.ndarray, ...]  # (h,) or (h, c); each (batch, units)


def sigmoid(values: np.ndarray) -> np.ndarray:
    # Written through tanh, which cannot overflow, rather than 1 / (1 + exp(-x)).
    return 0.5 * (np.tanh(0.5 * values) + 1.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in the logits' precision but summed in float64.

    float32 exponentials are four times faster than float64 ones over a 10,000-word vocabulary and
    accurate to about 1e-7 relative, well inside the 1e-5 the engine promises.
    """
    return softmax_in_place(logits.copy())


def softmax_in_place(logits: np.ndarray, sum_dtype: DTypeLike | None = np.float64) -> np.ndarray:
    """Softmax over the last axis, written over the logits themselves (returned for convenience).

    A (batch, vocabulary) array is large: every fresh one costs page faults, so the generation
    loop reuses one buffer instead of allocating three new arrays per step. The totals are summed
    in ``sum_dtype``: float64 for the probabilities generation reports; training, whose gradient
    needs no more than float32's pairwise sums, passes None (the logits' own type, three times as
    fast, and the softmax is a tenth of a training step).
    """
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    totals = logits.sum(axis=-1, keepdims=True, dtype=sum_dtype)
    logits /= totals.astype(logits.dtype, copy=False)
    return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, in float64: scores add up millions of them."""
    shifted = logits.astype(np.float64)
    shifted -= shifted.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


@dataclass(frozen=True)
class RecurrentCell:
    """One direction of one recurrent layer, with Keras 3's weight layout and gate order."""

    kind: CellKind
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]

    def initial_state(self, batch: int) -> State:
        zeros = np.zeros((batch, self.units), dtype=self.kernel.dtype)
        return (zeros, zeros.copy()) if self.kind is CellKind.lstm else (zeros,)

    def project_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """x @ W + input bias for many steps at once: (..., inputs) -> (..., gates * units)."""
        # One matrix product over all rows and steps: numpy multiplies a (batch, time, inputs) stack
        # as batch separate small products, about four times slower.
        flat_inputs = inputs.reshape(-1, inputs.shape[-1])
        projected = (flat_inputs @ self.kernel).reshape(*inputs.shape[:-1], self.kernel.shape[1])
        projected += self.bias[0] if self.kind is CellKind.gru else self.bias  # in place: no second array
        return projected

    @cached_property
    def joined_kernel(self) -> np.ndarray:
        """[W; U; b] for one product [x, h, 1] @ [W; U; b] per step, with the LSTM's sigmoid gates
        halved ahead (see ``_lstm_update``; halving is exact in binary floating point).

        One product instead of two saves the passes that add them and the bias, which matter when a
        thousand rows are stepped together. GRU keeps its two products: its reset gate scales the
        recurrent part alone.
        """
        joined = np.concatenate([self.kernel, self.recurrent_kernel, self.bias[None]])
        if self.kind is CellKind.lstm:
            for part in self._sigmoid_parts(joined):
                part *= 0.5
        return joined

    def step_inputs(self, inputs: np.ndarray, state: State) -> State:
        """One time step from the layer's inputs (batch, inputs); returns the new state."""
        if self.kind is CellKind.gru:
            return self.step(self.project_inputs(inputs), state)
        hidden = state[0]
        joined = np.empty((len(inputs), self.joined_kernel.shape[0]), dtype=self.joined_kernel.dtype)
        joined[:, : inputs.shape[1]] = inputs
        joined[:, inputs.shape[1] : -1] = hidden
        joined[:, -1] = 1.0
        gates = np.matmul(joined, self.joined_kernel)
        if self.kind is CellKind.simple:
            return (np.tanh(gates, out=gates),)
        return self._lstm_update(gates, state[1])

    def step(self, projected: np.ndarray, state: State) -> State:
        """One time step from projected inputs (batch, gates * units); returns the new state."""
        hidden = state[0]
        if self.kind is CellKind.simple:
            return (np.tanh(projected + hidden @ self.recurrent_kernel),)
        if self.kind is CellKind.lstm:
            return self._lstm_step(projected, hidden, state[1])
        # GRU with reset_after=True (Keras 3's default): the reset gate scales the recurrent part
        # after its matrix product, and the recurrent bias is separate from the input bias.
        recurrent = hidden @ self.recurrent_kernel + self.bias[1]
        input_update, input_reset, input_candidate = np.split(projected, 3, axis=-1)
        recurrent_update, recurrent_reset, recurrent_candidate = np.split(recurrent, 3, axis=-1)
        update = sigmoid(input_update + recurrent_update)
        reset = sigmoid(input_reset + recurrent_reset)
        candidate = np.tanh(input_candidate + reset * recurrent_candidate)
        return (update * hidden + (1.0 - update) * candidate,)

    def _lstm_step(self, projected: np.ndarray, hidden: np.ndarray, cell: np.ndarray) -> State:
        """Keras's LSTM step (gates in the order input, forget, candidate, output).

        Written in place on one gates array, with the three sigmoids taken by one tanh
        (sigmoid(x) = (tanh(x / 2) + 1) / 2): generation steps a thousand rows at a time, where
        passes over memory, not arithmetic, set the speed.
        """
        gates = np.matmul(hidden, self.recurrent_kernel)
        gates += projected
        for part in self._sigmoid_parts(gates):
            part *= 0.5
        return self._lstm_update(gates, cell)

    def _sigmoid_parts(self, gates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Views of the input and forget gates' columns, and of the output gate's."""
        units = self.units
        return gates[..., : 2 * units], gates[..., 3 * units :]

    def _lstm_update(self, halved_gates: np.ndarray, cell: np.ndarray) -> State:
        """The LSTM's new state from its gates before activation, the sigmoid ones already halved;
        ``halved_gates`` is overwritten."""
        units = self.units
        gates = np.tanh(halved_gates, out=halved_gates)
        for part in self._sigmoid_parts(gates):
            part += 1.0
            part *= 0.5
        input_gate, forget_gate = gates[:, :units], gates[:, units : 2 * units]
        candidate, output_gate = gates[:, 2 * units : 3 * units], gates[:, 3 * units :]
        new_cell = forget_gate * cell
        new_cell += input_gate * candidate
        new_hidden = np.tanh(new_cell)
        new_hidden *= output_gate
        return (new_hidden, new_cell)

    def run(self, inputs: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """All steps of (batch, time, inputs); returns outputs (batch, time, units) and the last state."""
        batch, time = inputs.shape[0], inputs.shape[1]
        state = self.initial_state(batch) if state is None else state
        projected = self.project_inputs(inputs)  # (batch, time, gates * units)
        outputs = np.empty((batch, time, self.units), dtype=projected.dtype)
        for step_index in range(time):
            state = self.step(projected[:, step_index], state)
            outputs[:, step_index] = state[0]
        return outputs, state


@dataclass(frozen=True)
class RecurrentLayer:
    """A forward cell and, for a bidirectional layer, a backward one whose outputs are concatenated."""

    forward: RecurrentCell
    backward: RecurrentCell | None

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The whole sequence (batch, time, inputs) -> per-step outputs (batch, time, width)."""
        forward_outputs, _ = self.forward.run(inputs)
        if self.backward is None:
            return forward_outputs
        backward_outputs, _ = self.backward.run(inputs[:, ::-1])
        return np.concatenate([forward_outputs, backward_outputs[:, ::-1]], axis=-1)


def _cell(weights: Mapping[str, np.ndarray], kind: CellKind, layer: int, direction: str) -> RecurrentCell:
    kernel, recurrent_kernel, bias = (weights[name] for name in cell_weight_names(layer, direction))
    return RecurrentCell(kind=kind, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)


class Readings:
    """The model's reading of a batch of growing texts: feed ids, ask for next-word distributions.

    A one-directional model keeps each row's recurrent state, so every new word costs one step of
    the cells, with all rows stepped together. A bidirectional model's backward reading changes with
    every new word, so each row is read again in full, over the window it was trained with.
    """

    def __init__(self, engine: NumpyLanguageModel, batch: int) -> None:
        self.engine = engine
        self.ids: list[list[int]] = [[] for _ in range(batch)]
        self.states: list[State] = [layer.forward.initial_state(batch) for layer in engine.layers]
        self.top_output = np.zeros((batch, engine.output_width), dtype=engine.embedding.dtype)
        self.scratch: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def feed_each(self, id_lists: Sequence[Sequence[int]]) -> None:
        """Read a different number of words into each row (a prompt each); padding is skipped.

        Rows given the same number of words are read together, as one batch.
        """
        by_length: dict[int, list[int]] = {}
        for row, ids in enumerate(id_lists):
            real_ids = [word_id for word_id in ids if word_id != 0]
            self.ids[row].extend(real_ids)
            by_length.setdefault(len(real_ids), []).append(row)
        if self.engine.config.bidirectional:
            return
        for length, rows in by_length.items():
            if length == 0:
                continue
            chosen = np.asarray(rows, dtype=np.int64)
            new_ids = np.array([self.ids[row][-length:] for row in rows], dtype=np.int64)  # (rows, length)
            row_states = [tuple(part[chosen] for part in state) for state in self.states]
            row_states, top_output = self.engine.advance(row_states, new_ids)
            for state, row_state in zip(self.states, row_states, strict=True):
                for part, row_part in zip(state, row_state, strict=True):
                    part[chosen] = row_part
            self.top_output[chosen] = top_output

    def feed(self, ids: np.ndarray) -> None:
        """Read one more word into every row: ids (batch,), none of them padding."""
        for row, word_id in enumerate(ids.tolist()):
            self.ids[row].append(word_id)
        if self.engine.config.bidirectional:
            return
        self.states, self.top_output = self.engine.step(self.states, ids)

    def logits(self) -> np.ndarray:
        """The output layer before its softmax, for every row (batch, vocab_size); for a model mixed
        with a trigram, the logarithms of the mixture's probabilities, whose softmax they are.

        The array is this batch's scratch buffer: the caller may change it, and the next call to
        ``logits`` or ``probabilities`` overwrites it.
        """
        engine = self.engine
        if engine.config.bidirectional:
            windows = [ids[-engine.config.context_len :] for ids in self.ids]
            top_output = engine.top_outputs(windows)
        else:
            top_output = self.top_output
        if self.scratch is None or self.scratch.shape[0] != len(top_output):
            self.scratch = np.empty((len(top_output), engine.vocab_size), dtype=top_output.dtype)
        logits = engine.output_logits(top_output, out=self.scratch)
        if engine.mixture is None:
            return logits
        firsts, seconds = zip(*(contexts_before(ids) for ids in self.ids), strict=True)
        trigram = engine.mixture.trigram.distributions(np.array(firsts), np.array(seconds), dtype=logits.dtype)
        mixed = engine.mixture.mix_into(softmax_in_place(logits), trigram)
        with np.errstate(divide="ignore"):  # padding may get nothing from either
            return np.log(mixed, out=mixed)

    def probabilities(self) -> np.ndarray:
        """P(next word) for every row (batch, vocab_size), padding included (as in the model).

        Like ``logits``, this is the batch's scratch buffer, overwritten by the next call.
        """
        return softmax_in_place(self.logits())

    def select(self, rows: Sequence[int]) -> Readings:
        """A new batch made of these rows (repeats allowed), as beam search needs."""
        chosen = np.asarray(rows, dtype=np.int64)
        selected = Readings.__new__(Readings)
        selected.engine = self.engine
        selected.ids = [list(self.ids[row]) for row in chosen.tolist()]
        selected.states = [tuple(part[chosen] for part in state) for state in self.states]
        selected.top_output = self.top_output[chosen]
        selected.scratch = None
        return selected


class NumpyLanguageModel:
    """The forward pass of a saved model, from its configuration and weight arrays alone."""

    def __init__(
        self, config: ModelConfig, weights: Mapping[str, np.ndarray], mixture: TrigramMixture | None = None
    ) -> None:
        """``mixture``: the trigram generation mixes the network's probabilities with (Readings);
        the network's own outputs (``output_logits`` and the rest) never include it."""
        shapes = expected_weight_shapes(config)
        for name, shape in shapes.items():
            if name not in weights:
                raise ValueError(f"weight '{name}' is missing")
            if tuple(weights[name].shape) != shape:
                raise ValueError(f"weight '{name}' has shape {tuple(weights[name].shape)}, expected {shape}")
        self.config = config
        self.mixture = mixture
        self.embedding = weights[EMBEDDING]
        directions = model_directions(config)
        self.layers = [
            RecurrentLayer(
                forward=_cell(weights, config.cell, layer, "forward"),
                backward=_cell(weights, config.cell, layer, "backward") if len(directions) == 2 else None,
            )
            for layer in range(config.layers)
        ]
        # The bias rides in the output layer's matrix product as one more row of the kernel, against
        # a column of ones in the inputs: added on its own it would be one more pass over a (batch,
        # vocabulary) array, a tenth of the time when a thousand prompts are stepped together.
        self.output_kernel_and_bias = np.concatenate([weights[OUTPUT_KERNEL], weights[OUTPUT_BIAS][None]])
        self.output_kernel = self.output_kernel_and_bias[:-1]
        self.output_bias = self.output_kernel_and_bias[-1]

    @property
    def output_width(self) -> int:
        return self.output_kernel.shape[0]

    def new_readings(self, batch: int) -> Readings:
        return Readings(self, batch)

    @property
    def vocab_size(self) -> int:
        return self.output_kernel.shape[1]

    def output_logits(self, top_output: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Dense: (batch, width) -> (batch, vocab_size) logits, written to ``out`` when given
        (otherwise a new array); the caller may change the result."""
        with_ones = np.empty((*top_output.shape[:-1], self.output_width + 1), dtype=self.output_kernel_and_bias.dtype)
        with_ones[..., :-1] = top_output
        with_ones[..., -1] = 1.0
        return np.matmul(with_ones, self.output_kernel_and_bias, out=out)

    def output_distribution(self, top_output: np.ndarray) -> np.ndarray:
        """Dense softmax: (batch, width) -> (batch, vocab_size) probabilities."""
        return softmax(self.output_logits(top_output))

    def step(self, states: list[State], ids: np.ndarray) -> tuple[list[State], np.ndarray]:
        """One word for each row of a one-directional stack: ids (batch,) -> new states, top output."""
        hidden = self.embedding[ids]  # (batch, embedding_dim)
        new_states = []
        for layer, state in zip(self.layers, states, strict=True):
            new_state = layer.forward.step_inputs(hidden, state)
            new_states.append(new_state)
            hidden = new_state[0]
        return new_states, hidden

    def advance(self, states: list[State] | None, ids: Sequence[int] | np.ndarray) -> tuple[list[State], np.ndarray]:
        """Read ids (no padding) through a one-directional stack from the given states.

        ``ids`` is one row (time,) or a batch of rows of equal length (batch, time).
        """
        ids = np.asarray(ids)
        outputs, new_states = self._run_forward(ids if ids.ndim == 2 else ids[None], states)
        return new_states, outputs[:, -1]

    def read_stream(self, ids: Sequence[int], states: list[State] | None) -> tuple[np.ndarray, list[State]]:
        """Read one row of ids (no padding) from the given states (None: fresh), as the next part of a
        longer text: the last layer's output after each id (time, width), and the states after the last."""
        outputs, new_states = self._run_forward(np.asarray(ids)[None], states)
        return outputs[0], new_states

    def _run_forward(self, ids: np.ndarray, states: list[State] | None) -> tuple[np.ndarray, list[State]]:
        """ids (batch, time) through a one-directional stack: outputs (batch, time, width), new states."""
        outputs = self.embedding[ids]  # (batch, time, embedding_dim)
        new_states: list[State] = []
        for layer_index, layer in enumerate(self.layers):
            state = None if states is None else states[layer_index]
            outputs, state = layer.forward.run(outputs, state)
            new_states.append(state)
        return outputs, new_states

    def top_outputs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """The last layer's output after each context (batch, width), as the Keras model computes it.

        Contexts are read without their padding; an empty context leaves the zero state.
        """
        rows = []
        for context in contexts:
            ids = [word_id for word_id in context if word_id != 0]
            if not ids:
                rows.append(np.zeros(self.output_width, dtype=self.embedding.dtype))
                continue
            sequence = self.embedding[np.asarray(ids)][None]  # (1, time, embedding_dim)
            for layer in self.layers[:-1]:
                sequence = layer.run(sequence)
            last = self.layers[-1]
            forward_outputs, _ = last.forward.run(sequence)
            parts = [forward_outputs[0, -1]]
            if last.backward is not None:
                # The backward direction's final output is the one after reading back to the start.
                backward_outputs, _ = last.backward.run(sequence[:, ::-1])
                parts.append(backward_outputs[0, -1])
            rows.append(np.concatenate(parts))
        return np.stack(rows)

    def sequence_outputs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For a one-directional model: the last layer's output after every position of each sequence.

        Sequences (without padding) are run side by side, post-padded to the longest: the padding
        comes after every real position, so it cannot change any output that is kept. Returns one
        (length, width) array per sequence.
        """
        if self.config.bidirectional:
            raise ValueError("a bidirectional model reads each context anew; use probabilities_of_contexts")
        lengths = [len(sequence) for sequence in sequences]
        padded = np.zeros((len(sequences), max(lengths, default=0)), dtype=np.int64)
        for row, sequence in enumerate(sequences):
            padded[row, : len(sequence)] = sequence
        outputs = self.embedding[padded]  # (batch, time, embedding_dim)
        for layer in self.layers:
            outputs, _ = layer.forward.run(outputs)
        return [outputs[row, :length] for row, length in enumerate(lengths)]

    def probabilities_of_contexts(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """P(next word | context) for each context: (batch, vocab_size)."""
        return self.output_distribution(self.top_outputs(contexts))
