"""nn/conv.py: Conv1d against a literal NumPy loop and finite differences (F12's relation to
the document's formula is in tests/formulas/test_F12_convolution.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn
from tests.nn.module_gradcheck import module_gradcheck


def conv1d_loop(x, weight, bias, stride, padding):
    """y[b, i, j] = sum_c sum_k W[i, c, k] x_padded[b, c, j*stride + k] + b_i, one term at a time."""
    B, C_in, L = x.shape
    C_out, _, K = weight.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    L_out = (L + 2 * padding - K) // stride + 1
    y = np.zeros((B, C_out, L_out))
    for b in range(B):
        for i in range(C_out):
            for j in range(L_out):
                y[b, i, j] = sum(weight[i, c, k] * x[b, c, j * stride + k] for c in range(C_in) for k in range(K))
                y[b, i, j] += bias[i] if bias is not None else 0.0
    return y


@st.composite
def conv_settings(draw):
    kernel_size = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    length = draw(st.integers(max(1, kernel_size - 2 * padding), 6))
    return dict(batch=draw(st.integers(1, 2)), in_channels=draw(st.integers(1, 3)),
                out_channels=draw(st.integers(1, 3)), kernel_size=kernel_size, stride=stride,
                padding=padding, length=length, bias=draw(st.booleans()), seed=draw(st.integers(0, 99)))


@given(s=conv_settings())
def test_conv1d_matches_the_loop_and_passes_gradcheck(s):
    layer = nn.Conv1d(s["in_channels"], s["out_channels"], s["kernel_size"], stride=s["stride"],
                      padding=s["padding"], bias=s["bias"])
    x = np.random.default_rng(s["seed"]).standard_normal((s["batch"], s["in_channels"], s["length"]))
    out = layer(mt.tensor(x, dtype=np.float64))
    bias = layer.bias.numpy() if s["bias"] else None
    expected = conv1d_loop(x, layer.weight.numpy().astype(np.float64), bias, s["stride"], s["padding"])
    L_out = (s["length"] + 2 * s["padding"] - s["kernel_size"]) // s["stride"] + 1
    assert out.shape == (s["batch"], s["out_channels"], L_out)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert module_gradcheck(layer, mt.tensor(x, dtype=np.float64))


def test_conv1d_shares_one_kernel_across_positions():
    layer = nn.Conv1d(1, 1, 2, bias=False)
    layer.weight.data = np.array([[[1.0, -1.0]]], dtype=np.float32)
    out = layer(mt.tensor(np.array([[[1.0, 4.0, 9.0, 16.0]]])))
    np.testing.assert_array_equal(out.numpy(), [[[-3.0, -5.0, -7.0]]])  # x_j - x_{j+1}


def test_conv1d_init_and_repr():
    layer = nn.Conv1d(4, 2, 3, stride=2, padding=1)
    bound = 1 / np.sqrt(4 * 3)
    assert layer.weight.shape == (2, 4, 3) and layer.bias.shape == (2,)
    assert np.abs(layer.weight.numpy()).max() <= bound
    assert repr(layer) == "Conv1d(4, 2, kernel_size=3, stride=2, padding=1)"


def test_conv1d_errors_name_the_op_and_the_shapes():
    layer = nn.Conv1d(2, 3, 3)
    with pytest.raises(ValueError, match=r"conv1d: input .*\(1, 3, 5\).*same C_in"):
        layer(mt.tensor(np.ones((1, 3, 5))))
    with pytest.raises(ValueError, match="conv1d: kernel size 3 is longer than the padded input"):
        layer(mt.tensor(np.ones((1, 2, 2))))
    with pytest.raises(ValueError, match="conv1d: stride must be >= 1"):
        nn.Conv1d(2, 3, 3, stride=0)(mt.tensor(np.ones((1, 2, 5))))


def test_conv2d_layer_has_pytorchs_weight_layout_and_passes_gradcheck():
    layer = nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1))
    assert layer.weight.shape == (3, 2, 3, 2) and layer.bias.shape == (3,)
    x = mt.tensor(np.random.default_rng(0).standard_normal((2, 2, 6, 5)), dtype=np.float64)
    assert layer(x).shape == (2, 3, 4, 3)  # H: (6 + 2 - 2*2 - 1) // 1 + 1, W: (5 + 2 - 1 - 1) // 2 + 1
    assert module_gradcheck(layer, x)


def test_max_pool_and_flatten_layers_make_the_documents_cnn_shapes():
    """Document 002's CNN: Conv2D(32, 3x3) on 28x28x1 -> MaxPool(2x2) -> Flatten -> Dense(10)."""
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 13 * 13, 10))
    assert model(mt.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model.num_parameters() == (32 * 9 + 32) + (32 * 13 * 13 * 10 + 10)  # 320 + 54,090, as Keras counts


def test_flatten_merges_the_axes_it_is_given_in_order():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(nn.Flatten()(mt.tensor(x)).numpy(), x.reshape(2, 12))
    assert nn.Flatten(0, 1)(mt.tensor(x)).shape == (6, 2, 2)
    assert nn.Flatten(-2)(mt.tensor(x)).shape == (2, 3, 4)
    assert mt.gradcheck(nn.Flatten(1, 2), [mt.tensor(x, dtype=np.float64)])
    with pytest.raises(ValueError, match="Flatten: axes 2..1 don't fit"):
        nn.Flatten(2, 1)(mt.tensor(x))
    with pytest.raises(ValueError, match="Flatten: axes 1..5 don't fit"):
        nn.Flatten(1, 5)(mt.tensor(x))
