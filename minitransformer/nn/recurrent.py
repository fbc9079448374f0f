"""Recurrent cells and layers (F13): a hidden state carried from step to step, the road not
taken by transformers (which look at every position at once instead). Weight names and gate
orders follow PyTorch, so its state dicts load; the layers' dropout follows Keras (below)."""

from __future__ import annotations

import math

from .. import functional as F
from ..backend import array_module
from ..tensor import Tensor, describe
from .module import Module, new_parameter


class _Cell(Module):
    """Shared set-up: input-to-hidden and hidden-to-hidden weights for `gates` gates."""

    def __init__(self, input_size: int, hidden_size: int, gates: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1 / math.sqrt(hidden_size)
        self.weight_ih = new_parameter((gates * hidden_size, input_size), bound=bound)
        self.weight_hh = new_parameter((gates * hidden_size, hidden_size), bound=bound)
        self.bias_ih = new_parameter((gates * hidden_size,), bound=bound) if bias else None
        self.bias_hh = new_parameter((gates * hidden_size,), bound=bound) if bias else None

    def _initial_state(self, x: Tensor, h: Tensor | None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input is {describe(x)}; expected (B, {self.input_size})"
            )
        if h is None:  # start from the zero state
            return Tensor(array_module(x.data).zeros((x.shape[0], self.hidden_size), dtype=x.dtype))
        if h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(
                f"{type(self).__name__}: hidden state is {describe(h)}; expected ({x.shape[0]}, {self.hidden_size})"
            )
        return h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)   (F13 with f = tanh, b_h = b_ih + b_hh)"""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, gates=1, bias=bias)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._initial_state(x, h)
        return F.tanh(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))


def gru_step(input_gates: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             h_for_gates: Tensor | None = None) -> Tensor:
    """One GRU step from the input's share of the gates, input_gates = W_i x + b_i (B, 3H).
    ``h_for_gates``: the state the gates read (h with recurrent dropout applied), default h."""
    x_r, x_z, x_n = input_gates.split(3, axis=1)  # 3 x (B, H)
    h_r, h_z, h_n = F.linear(h if h_for_gates is None else h_for_gates, weight_hh, bias_hh).split(3, axis=1)
    reset = F.sigmoid(x_r + h_r)
    update = F.sigmoid(x_z + h_z)
    candidate = F.tanh(x_n + reset * h_n)
    return (1 - update) * candidate + update * h


def lstm_step(input_gates: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
              h_for_gates: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step from input_gates = W_i x + b_i (B, 4H), gates in PyTorch's order i, f, g, o."""
    gates = input_gates + F.linear(h if h_for_gates is None else h_for_gates, weight_hh, bias_hh)  # (B, 4H)
    x_i, x_f, x_g, x_o = gates.split(4, axis=1)  # 4 x (B, H)
    c = F.sigmoid(x_f) * c + F.sigmoid(x_i) * F.tanh(x_g)
    return F.sigmoid(x_o) * F.tanh(c), c


class GRUCell(_Cell):
    """The gated recurrent unit (Cho et al. 2014), PyTorch's formulation:

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)         reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)         update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      candidate state
        h' = (1 - z) * n + z * h
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, gates=3, bias=bias)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._initial_state(x, h)
        return gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)


class LSTMCell(_Cell):
    """Long short-term memory (Hochreiter and Schmidhuber 1997, with the forget gate of Gers et
    al. 2000), PyTorch's formulation and gate order (i, f, g, o):

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)         input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)         forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)            candidate cell
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)         output gate
        c' = f * c + i * g,     h' = o * tanh(c')

    Two states: the cell c, which the forget gate lets through unsquashed (the path the
    gradient takes across many steps), and the output h. ``forward(x, (h, c))`` returns (h', c').
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, gates=4, bias=bias)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = (None, None) if state is None else state
        h, c = self._initial_state(x, h), self._initial_state(x, c)
        return lstm_step(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)


class RNN(Module):
    """Runs an RNNCell over a sequence x (B, T, C): returns all states (B, T, H) and the last (B, H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size, bias)

    def forward(self, x: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.ndim != 3:
            raise ValueError(f"RNN: input is {describe(x)}; expected (B, T, {self.cell.input_size})")
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t, :], h)
            states.append(h)
        return F.stack(states, axis=1), h


class _RecurrentLayer(Module):
    """A stack of ``num_layers`` recurrent layers over whole sequences, PyTorch's parameter names
    (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, then ``..._l1``...).

    Dropout, as Keras's recurrent layers do it (the document's GRU(64, dropout=0.2,
    recurrent_dropout=0.2)), with one mask per sequence, drawn once and kept for every time step:
    - ``dropout``: on each layer's input x_t (the sequence for layer 0, the layer below's outputs
      for the others), before W_i x_t;
    - ``recurrent_dropout``: on the state the gates read, W_h (m * h_{t-1}); the state carried on
      (z * h_{t-1} in the GRU, c in the LSTM) is not masked (Gal and Ghahramani 2016).
    PyTorch differs: its ``dropout`` draws a fresh mask per time step, on the outputs of every
    layer but the last (so none at all with one layer), and it has no recurrent dropout.
    Not supported: bidirectional layers, projections (LSTM proj_size), packed sequences.
    """

    gates = 0  # blocks of weights per layer: 3 for the GRU, 4 for the LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, recurrent_dropout: float = 0.0):
        super().__init__()
        name = type(self).__name__
        for what, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name}: {what} must be in [0, 1), got {p}")
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.recurrent_dropout = batch_first, dropout, recurrent_dropout
        bound, rows = 1 / math.sqrt(hidden_size), self.gates * hidden_size  # PyTorch's initialisation
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", new_parameter((rows, layer_input), bound=bound))
            setattr(self, f"weight_hh_l{layer}", new_parameter((rows, hidden_size), bound=bound))
            setattr(self, f"bias_ih_l{layer}", new_parameter((rows,), bound=bound) if bias else None)
            setattr(self, f"bias_hh_l{layer}", new_parameter((rows,), bound=bound) if bias else None)

    def _weights(self, layer: int):
        return tuple(getattr(self, f"{kind}_l{layer}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _sequence(self, x: Tensor) -> Tensor:
        """The input as (B, T, C), whatever ``batch_first`` says."""
        expected = "(B, T, C)" if self.batch_first else "(T, B, C)"
        if x.ndim != 3 or x.shape[2] != self.input_size or 0 in x.shape[:2]:
            raise ValueError(f"{type(self).__name__}: input is {describe(x)}; expected "
                             f"{expected} with C = {self.input_size}, B and T at least 1")
        return x if self.batch_first else x.transpose(1, 0, 2)

    def _state(self, state: Tensor | None, x: Tensor, what: str) -> list[Tensor | None]:
        if state is None:
            return [None] * self.num_layers
        expected = (self.num_layers, x.shape[0], self.hidden_size)
        if state.shape != expected:
            raise ValueError(f"{type(self).__name__}: {what} is {describe(state)}; expected {expected} "
                             "(num_layers, B, hidden_size)")
        return [state[layer] for layer in range(self.num_layers)]

    def _mask(self, x: Tensor, size: int, p: float) -> Tensor | None:
        """A dropout mask (B, size): 0 with probability p, else 1/(1-p), reused at every step."""
        if not self.training or p == 0.0:
            return None
        ones = Tensor(array_module(x.data).ones((x.shape[0], size), dtype=x.dtype))
        return F.dropout(ones, p, training=True)

    def _zeros(self, x: Tensor) -> Tensor:
        return Tensor(array_module(x.data).zeros((x.shape[0], self.hidden_size), dtype=x.dtype))

    def _run(self, x: Tensor, states: list[tuple]) -> tuple[Tensor, list[tuple]]:
        """Every layer over the whole sequence x (B, T, C); ``states`` holds each layer's
        starting state tuple ((h,) or (h, c)); returns the top layer's outputs and final states."""
        final = []
        for layer, state in enumerate(states):
            weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer)
            input_mask = self._mask(x, x.shape[2], self.dropout)
            state_mask = self._mask(x, self.hidden_size, self.recurrent_dropout)
            if input_mask is not None:
                x = x * input_mask[:, None, :]  # (B, T, C), one mask for all steps
            # the input's share of the gates for all steps in one product; only W_h h waits
            # for the previous step
            input_gates = F.linear(x, weight_ih, bias_ih)  # (B, T, gates * H)
            state = tuple(s if s is not None else self._zeros(x) for s in state)
            outputs = []
            for t in range(x.shape[1]):
                h_for_gates = None if state_mask is None else state[0] * state_mask
                state = self._step(input_gates[:, t], state, weight_hh, bias_hh, h_for_gates)
                outputs.append(state[0])
            x = F.stack(outputs, axis=1)  # (B, T, H)
            final.append(state)
        return x, final

    def _output(self, x: Tensor) -> Tensor:
        return x if self.batch_first else x.transpose(1, 0, 2)

    def extra_repr(self) -> str:
        extras = [f"num_layers={self.num_layers}"] * (self.num_layers > 1)
        extras += [f"batch_first={self.batch_first}"] * self.batch_first
        extras += [f"dropout={self.dropout}"] * (self.dropout > 0)
        extras += [f"recurrent_dropout={self.recurrent_dropout}"] * (self.recurrent_dropout > 0)
        return ", ".join([f"{self.input_size}, {self.hidden_size}"] + extras)


class GRU(_RecurrentLayer):
    """GRU layers (GRUCell's update at every step) over a sequence: ``gru(x, h0=None)`` with x
    (T, B, C), or (B, T, C) when ``batch_first``, and h0 (num_layers, B, H); returns the top
    layer's states at every step (T, B, H) or (B, T, H), and the last state of each layer
    (num_layers, B, H), as torch.nn.GRU does. Keras's GRU(64) returns the last step only:
    ``output[:, -1]`` with batch_first. Dropout options: see _RecurrentLayer."""

    gates = 3

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = self._sequence(x)
        states = [(h,) for h in self._state(h0, x, "h0")]
        out, final = self._run(x, states)
        return self._output(out), F.stack([h for (h,) in final], axis=0)

    def _step(self, input_gates, state, weight_hh, bias_hh, h_for_gates):
        return (gru_step(input_gates, state[0], weight_hh, bias_hh, h_for_gates),)


class LSTM(_RecurrentLayer):
    """LSTM layers (LSTMCell's update at every step) over a sequence: ``lstm(x, (h0, c0)=None)``
    returns the top layer's outputs h (T, B, H) or (B, T, H) with ``batch_first``, and the last
    (h_n, c_n) of each layer, (num_layers, B, H) each, as torch.nn.LSTM does."""

    gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = self._sequence(x)
        h0, c0 = (None, None) if state is None else state
        states = list(zip(self._state(h0, x, "h0"), self._state(c0, x, "c0")))
        out, final = self._run(x, states)
        return self._output(out), (F.stack([h for h, _ in final], axis=0), F.stack([c for _, c in final], axis=0))

    def _step(self, input_gates, state, weight_hh, bias_hh, h_for_gates):
        return lstm_step(input_gates, state[0], state[1], weight_hh, bias_hh, h_for_gates)
