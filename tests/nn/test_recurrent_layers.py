"""nn/recurrent.py, second part: LSTMCell against its equations, the GRU and LSTM layers against
their cells unrolled by hand, finite differences, and the Keras-style dropout masks (one per
sequence, the same at every time step; the recurrent one on the state the gates read only)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from tests.nn.module_gradcheck import module_gradcheck
from tests.nn.test_recurrent import params64, sigmoid


def lstm_numpy(cell, x, h, c):
    """PyTorch's LSTM equations, gate order i, f, g, o, written out."""
    p = params64(cell)
    gates = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = np.split(gates, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def f64(array):
    return mt.tensor(array, dtype=np.float64)


sizes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 99))


@settings(max_examples=20)  # each example runs a gradcheck of 4 tensors
@given(sizes=sizes)
def test_lstm_cell_matches_its_equations_and_passes_gradcheck(sizes):
    B, C, H, seed = sizes
    rng = np.random.default_rng(seed)
    cell = nn.LSTMCell(C, H)
    assert cell.weight_ih.shape == (4 * H, C) and cell.weight_hh.shape == (4 * H, H)
    x, h, c = rng.standard_normal((B, C)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    new_h, new_c = cell(f64(x), (f64(h), f64(c)))
    expected_h, expected_c = lstm_numpy(cell, x, h, c)
    np.testing.assert_allclose(new_h.numpy(), expected_h, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new_c.numpy(), expected_c, rtol=1e-6, atol=1e-7)
    assert module_gradcheck(cell, f64(x), f64(h), f64(c),
                            forward=lambda m, x, h, c: mt.concat(list(m(x, (h, c))), axis=1))


def test_lstm_forget_gate_open_and_input_gate_shut_keep_the_cell():
    cell = nn.LSTMCell(2, 3)
    cell.bias_ih.data[0:3] = -50.0   # i = 0: nothing written
    cell.bias_ih.data[3:6] = 50.0    # f = 1: everything kept
    c = np.array([[0.3, -2.0, 4.0]])
    _, new_c = cell(mt.tensor(np.ones((1, 2))), (mt.zeros(1, 3), mt.tensor(c)))
    np.testing.assert_allclose(new_c.numpy(), c, atol=1e-5)


def unroll(layer, cell_class, x, state=None):
    """The layer's computation with one cell per layer, step by step (no dropout)."""
    outputs, finals = x, []
    for layer_index in range(layer.num_layers):
        cell = cell_class(outputs.shape[2], layer.hidden_size)
        cell.load_state_dict({k.replace(f"_l{layer_index}", ""): v for k, v in layer.state_dict().items()
                              if k.endswith(f"_l{layer_index}")})
        for p in cell.parameters():
            p.data = p.data.astype(np.float64)
        s = None if state is None else state[layer_index]
        steps = []
        for t in range(outputs.shape[1]):
            s = cell(outputs[:, t], s)
            steps.append(s if cell_class is nn.GRUCell else s[0])
        outputs = mt.stack(steps, axis=1)
        finals.append(s)
    return outputs, finals


@pytest.mark.parametrize("layer_class, cell_class", [(nn.GRU, nn.GRUCell), (nn.LSTM, nn.LSTMCell)])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_layers_unroll_their_cells_with_pytorchs_names_and_pass_gradcheck(layer_class, cell_class, num_layers):
    layer = layer_class(2, 3, num_layers=num_layers, batch_first=True)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    x = f64(np.random.default_rng(1).standard_normal((2, 4, 2)))
    out, final = layer(x)
    expected, expected_finals = unroll(layer, cell_class, x)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    h_n = final if layer_class is nn.GRU else final[0]
    assert out.shape == (2, 4, 3) and h_n.shape == (num_layers, 2, 3)
    for index, s in enumerate(expected_finals):
        np.testing.assert_allclose(h_n.numpy()[index], (s if cell_class is nn.GRUCell else s[0]).numpy(), rtol=1e-12)
    names = [f"{kind}_l{i}" for i in range(num_layers) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert [n for n, _ in layer.named_parameters()] == names
    assert module_gradcheck(layer, x, forward=lambda m, x: m(x)[0])


def test_time_first_is_the_default_and_the_initial_state_is_used():
    layer = nn.LSTM(3, 4, num_layers=2)
    rng = np.random.default_rng(2)
    x, h0, c0 = (mt.tensor(rng.standard_normal(shape)) for shape in ((5, 2, 3), (2, 2, 4), (2, 2, 4)))
    out, (h_n, c_n) = layer(x, (h0, c0))
    batch_first = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    batch_first.load_state_dict(layer.state_dict())
    out_bf, (h_bf, c_bf) = batch_first(x.transpose(1, 0, 2), (h0, c0))
    np.testing.assert_allclose(out.numpy(), out_bf.numpy().transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(c_n.numpy(), c_bf.numpy(), rtol=1e-6)
    assert not np.allclose(layer(x)[0].numpy(), out.numpy())  # the zero state gives another output


def expected_with_masks(layer, x, input_mask, state_mask):
    """A one-layer GRU by hand with the given masks: x * input_mask at every step, the gates
    reading h * state_mask, the state carried on unmasked."""
    p = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    H = layer.hidden_size
    h = np.zeros((x.shape[0], H))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t] * input_mask
        gx = x_t @ p["weight_ih_l0"].T + p["bias_ih_l0"]
        gh = (h * state_mask) @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        r, z = sigmoid(gx[:, :H] + gh[:, :H]), sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        outputs.append(h)
    return np.stack(outputs, axis=1)


def test_gru_dropout_and_recurrent_dropout_use_one_mask_per_sequence_for_every_step():
    layer = nn.GRU(6, 5, batch_first=True, dropout=0.5, recurrent_dropout=0.5)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(3).standard_normal((4, 7, 6))
    mt.manual_seed(11)
    out = layer(f64(x))[0].numpy()
    mt.manual_seed(11)  # the same draws, in the layer's order: the input mask, then the state mask
    input_mask = F.dropout(f64(np.ones((4, 6))), 0.5).numpy()
    state_mask = F.dropout(f64(np.ones((4, 5))), 0.5).numpy()
    assert set(np.unique(input_mask)) == {0.0, 2.0} and set(np.unique(state_mask)) == {0.0, 2.0}
    np.testing.assert_allclose(out, expected_with_masks(layer, x, input_mask, state_mask), rtol=1e-12, atol=1e-12)
    # a fresh mask per step (PyTorch's nn.Dropout on the sequence) would give something else
    per_step = np.stack([F.dropout(f64(np.ones((4, 6))), 0.5).numpy() for _ in range(7)], axis=1)
    assert not np.allclose(out, expected_with_masks(layer, x * per_step, 1.0, state_mask))


def test_dropout_is_off_in_eval_mode_and_gradients_flow_through_the_masks():
    layer = nn.LSTM(3, 4, batch_first=True, dropout=0.3, recurrent_dropout=0.3)
    x = f64(np.random.default_rng(4).standard_normal((2, 4, 3)))
    layer.eval()
    plain = nn.LSTM(3, 4, batch_first=True)
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x)[0].numpy(), plain(x)[0].numpy())
    layer.train()
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)

    def seeded(m, x):  # the same masks on every call of the finite differences
        mt.manual_seed(5)
        return m(x)[0]

    assert module_gradcheck(layer, x, forward=seeded)


def test_recurrent_layers_reject_bad_input_in_one_line():
    with pytest.raises(ValueError, match=r"GRU: input is .*expected \(T, B, C\) with C = 3"):
        nn.GRU(3, 4)(mt.zeros(5, 2, 2))
    with pytest.raises(ValueError, match=r"LSTM: h0 is .*expected \(2, 2, 4\)"):
        nn.LSTM(3, 4, num_layers=2, batch_first=True)(mt.zeros(2, 5, 3), (mt.zeros(1, 2, 4), mt.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"LSTM: input is .*B and T at least 1"):
        nn.LSTM(3, 4, batch_first=True)(mt.zeros(2, 0, 3))
    with pytest.raises(ValueError, match=r"GRU: recurrent_dropout must be in \[0, 1\), got 1.0"):
        nn.GRU(3, 4, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"LSTMCell: hidden state is .*expected \(2, 4\)"):
        nn.LSTMCell(3, 4)(mt.zeros(2, 3), (mt.zeros(2, 4), mt.zeros(2, 5)))
