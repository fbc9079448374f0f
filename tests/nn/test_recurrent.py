"""nn/recurrent.py: RNNCell, GRUCell and RNN against NumPy transcriptions of their formulas
and finite differences (F13 itself is in tests/formulas/test_F13_recurrence.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn
from tests.nn.module_gradcheck import module_gradcheck


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def params64(cell):
    return {name: p.numpy().astype(np.float64) for name, p in cell.named_parameters()}


def gru_numpy(cell, x, h):
    """PyTorch's GRU equations, written out."""
    p = params64(cell)
    W_ir, W_iz, W_in = np.split(p["weight_ih"], 3)
    W_hr, W_hz, W_hn = np.split(p["weight_hh"], 3)
    b_ir, b_iz, b_in = np.split(p["bias_ih"], 3)
    b_hr, b_hz, b_hn = np.split(p["bias_hh"], 3)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


sizes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 99))


@given(sizes=sizes)
def test_rnn_cell_is_tanh_of_both_affine_maps_and_passes_gradcheck(sizes):
    B, C, H, seed = sizes
    rng = np.random.default_rng(seed)
    cell = nn.RNNCell(C, H)
    x, h = rng.standard_normal((B, C)), rng.standard_normal((B, H))
    p = params64(cell)
    expected = np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
    out = cell(mt.tensor(x, dtype=np.float64), mt.tensor(h, dtype=np.float64))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert module_gradcheck(cell, mt.tensor(x, dtype=np.float64), mt.tensor(h, dtype=np.float64))


@given(sizes=sizes)
def test_gru_cell_matches_its_equations_and_passes_gradcheck(sizes):
    B, C, H, seed = sizes
    rng = np.random.default_rng(seed)
    cell = nn.GRUCell(C, H)
    assert cell.weight_ih.shape == (3 * H, C) and cell.weight_hh.shape == (3 * H, H)
    x, h = rng.standard_normal((B, C)), rng.standard_normal((B, H))
    out = cell(mt.tensor(x, dtype=np.float64), mt.tensor(h, dtype=np.float64))
    np.testing.assert_allclose(out.numpy(), gru_numpy(cell, x, h), rtol=1e-6, atol=1e-7)
    assert module_gradcheck(cell, mt.tensor(x, dtype=np.float64), mt.tensor(h, dtype=np.float64))


def test_cells_start_from_the_zero_state():
    x = mt.tensor(np.random.default_rng(0).standard_normal((2, 3)))
    for cell in (nn.RNNCell(3, 4), nn.GRUCell(3, 4)):
        zeros = mt.tensor(np.zeros((2, 4), dtype=np.float32))
        np.testing.assert_array_equal(cell(x).numpy(), cell(x, zeros).numpy())


def test_gru_update_gate_near_one_keeps_the_state():
    cell = nn.GRUCell(2, 3)
    cell.bias_ih.data[3:6] = 50.0  # z = sigmoid(50) = 1: h' = h
    h = np.array([[0.3, -0.2, 0.9]])
    out = cell(mt.tensor(np.ones((1, 2))), mt.tensor(h))
    np.testing.assert_allclose(out.numpy(), h, atol=1e-6)


def test_rnn_unrolls_the_cell_and_passes_gradcheck():
    rnn = nn.RNN(2, 3)
    x = np.random.default_rng(1).standard_normal((2, 4, 2))
    states, last = rnn(mt.tensor(x, dtype=np.float64))
    assert states.shape == (2, 4, 3) and last.shape == (2, 3)
    h = None
    for t in range(4):
        h = rnn.cell(mt.tensor(x[:, t, :], dtype=np.float64), h)
        np.testing.assert_allclose(states.numpy()[:, t], h.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(last.numpy(), states.numpy()[:, -1])
    assert [n for n, _ in rnn.named_parameters()] == [
        "cell.weight_ih", "cell.weight_hh", "cell.bias_ih", "cell.bias_hh"]
    assert module_gradcheck(rnn, mt.tensor(x, dtype=np.float64), forward=lambda m, x: m(x)[0])


def test_recurrent_errors_name_the_layer_and_the_expected_shape():
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match=r"GRUCell: input is .*\(2, 5\).*expected \(B, 3\)"):
        cell(mt.tensor(np.ones((2, 5))))
    with pytest.raises(ValueError, match=r"GRUCell: hidden state is .*expected \(2, 4\)"):
        cell(mt.tensor(np.ones((2, 3))), mt.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"RNN: input is .*expected \(B, T, 3\)"):
        nn.RNN(3, 4)(mt.tensor(np.ones((2, 3))))
    assert nn.RNNCell(3, 4, bias=False).bias_ih is None
