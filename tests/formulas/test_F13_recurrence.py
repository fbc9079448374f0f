"""F13 (003 section 3.2): h_t = f(W_hh h_{t-1} + W_xh x_t + b_h), with f = tanh, against
nn.RNNCell and nn.RNN. PyTorch's parameterisation (kept for loading its weights) splits the bias
in two: W_xh = weight_ih, W_hh = weight_hh, b_h = bias_ih + bias_hh."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn


def literal_F13(xs, h0, W_hh, W_xh, b_h):
    """The recurrence one time step at a time, one example: xs (T, C), h0 (H,) -> (T, H)."""
    h, states = h0, []
    for x_t in xs:
        h = np.tanh(W_hh @ h + W_xh @ x_t + b_h)
        states.append(h)
    return np.array(states)


@given(T=st.integers(1, 5), C=st.integers(1, 3), H=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 99))
def test_F13_rnn_is_the_recurrence(T, C, H, bias, seed):
    rng = np.random.default_rng(seed)
    rnn = nn.RNN(C, H, bias=bias)
    cell = rnn.cell
    W_xh, W_hh = cell.weight_ih.numpy().astype(np.float64), cell.weight_hh.numpy().astype(np.float64)
    b_h = (cell.bias_ih.numpy() + cell.bias_hh.numpy()).astype(np.float64) if bias else np.zeros(H)
    xs, h0 = rng.standard_normal((2, T, C)), rng.standard_normal((2, H))
    states, last = rnn(mt.tensor(xs, dtype=np.float64), mt.tensor(h0, dtype=np.float64))
    for b in range(2):
        expected = literal_F13(xs[b], h0[b], W_hh, W_xh, b_h)
        np.testing.assert_allclose(states.numpy()[b], expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(last.numpy()[b], expected[-1], rtol=1e-6, atol=1e-7)


def test_F13_state_carries_information_forward_and_is_bounded_by_tanh():
    rnn = nn.RNN(1, 3)
    xs = np.zeros((1, 6, 1))
    xs[0, 0, 0] = 5.0  # one impulse at t = 0
    states, _ = rnn(mt.tensor(xs))
    quiet = rnn(mt.tensor(np.zeros((1, 6, 1))))[0]
    assert not np.allclose(states.numpy()[0, 5], quiet.numpy()[0, 5])  # still remembered at t = 5
    assert np.abs(states.numpy()).max() < 1.0
