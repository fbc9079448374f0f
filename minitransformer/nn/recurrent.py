"""Recurrent cells (F13): a hidden state carried from step to step, the road not taken by
transformers (which look at every position at once instead). Weight names follow PyTorch."""

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
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).split(3, axis=1)  # 3 x (B, H)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).split(3, axis=1)
        reset = F.sigmoid(x_r + h_r)
        update = F.sigmoid(x_z + h_z)
        candidate = F.tanh(x_n + reset * h_n)
        return (1 - update) * candidate + update * h


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
