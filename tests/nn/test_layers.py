"""nn/layers.py: Linear, Embedding, LayerNorm, RMSNorm, Dropout, the activation modules, SwiGLU
and RotaryEmbedding, against NumPy and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from tests.nn.module_gradcheck import module_gradcheck
from tests.strategies import arrays


def batch_shapes(last: int):
    return st.lists(st.integers(1, 3), min_size=0, max_size=2).map(lambda dims: tuple(dims) + (last,))


@given(data=st.data(), in_features=st.integers(1, 4), out_features=st.integers(1, 4), bias=st.booleans())
def test_linear_is_x_w_transposed_plus_b_and_passes_gradcheck(data, in_features, out_features, bias):
    layer = nn.Linear(in_features, out_features, bias=bias)
    assert layer.weight.shape == (out_features, in_features)  # PyTorch's layout
    x = data.draw(arrays(batch_shapes(in_features)))
    expected = x @ layer.weight.data.astype(np.float64).T
    if bias:
        expected = expected + layer.bias.data
    np.testing.assert_allclose(layer(mt.tensor(x, dtype=np.float64)).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert module_gradcheck(layer, mt.tensor(x, dtype=np.float64))


def test_linear_init_is_pytorchs_uniform_bound():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for param in (layer.weight, layer.bias):
        values = param.numpy()
        assert param.dtype == np.float32
        assert values.min() >= -bound and values.max() <= bound
        assert values.min() < -0.9 * bound and values.max() > 0.9 * bound  # fills the range
    assert abs(layer.weight.numpy().std() - bound / math.sqrt(3)) < 0.01 * bound


def test_linear_rejects_the_wrong_input_width():
    with pytest.raises(ValueError, match="linear|matmul"):
        nn.Linear(3, 2)(mt.tensor(np.ones((2, 4))))


def test_embedding_picks_rows_and_passes_gradcheck():
    layer = nn.Embedding(6, 3)
    ids = np.array([[0, 5, 5], [2, 0, 1]])
    out = layer(ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), layer.weight.numpy()[ids])
    assert module_gradcheck(layer, forward=lambda m: m(ids))
    assert abs(nn.Embedding(1000, 64).weight.numpy().std() - 1.0) < 0.02  # N(0, 1) like PyTorch


def test_embedding_gradient_counts_repeated_ids():
    layer = nn.Embedding(4, 2)
    layer(np.array([1, 1, 3, 1])).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad, [[0, 0], [3, 3], [0, 0], [1, 1]])


def test_embedding_rejects_out_of_range_ids():
    with pytest.raises((ValueError, IndexError), match="embedding"):
        nn.Embedding(4, 2)(np.array([4]))


@given(x=arrays(st.tuples(st.integers(1, 3), st.integers(2, 5)), -5, 5), bias=st.booleans())
def test_layer_norm_normalises_the_last_axis_and_passes_gradcheck(x, bias):
    x = x + np.linspace(0, 1, x.shape[-1])  # no constant rows: their variance is only eps
    layer = nn.LayerNorm(x.shape[-1], bias=bias)
    layer.weight.data = np.linspace(0.5, 2.0, x.shape[-1]).astype(np.float32)
    if bias:
        layer.bias.data = np.linspace(-1.0, 1.0, x.shape[-1]).astype(np.float32)
    normalised = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    expected = normalised * layer.weight.data + (layer.bias.data if bias else 0)
    out = layer(mt.tensor(x, dtype=np.float64))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert module_gradcheck(layer, mt.tensor(x, dtype=np.float64))


def test_layer_norm_starts_as_plain_normalisation_and_checks_its_input():
    layer = nn.LayerNorm(4)
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(4))
    assert nn.LayerNorm(4, bias=False).bias is None
    with pytest.raises(ValueError, match=r"LayerNorm: input is .*\(2, 3\).*expected last dim 4"):
        layer(mt.tensor(np.ones((2, 3))))
    with pytest.raises(TypeError, match="LayerNorm: expected a Tensor"):
        layer(np.ones((2, 4)))


def test_dropout_zeroes_about_p_scales_the_rest_and_passes_gradient_through_the_mask():
    layer = nn.Dropout(0.25)
    x = mt.tensor(np.full((200, 50), 2.0), requires_grad=True)
    out = layer(x)
    values = out.numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(values[kept], 2.0 / 0.75, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.75, rtol=1e-6)
    assert nn.Dropout(1.0)(x).numpy().max() == 0.0
    layer.eval()
    assert layer(x) is x or np.array_equal(layer(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_dropout_is_reproducible_with_manual_seed():
    x = mt.tensor(np.ones((10, 10)))
    mt.manual_seed(3)
    first = nn.Dropout(0.5)(x).numpy()
    mt.manual_seed(3)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).numpy(), first)


def test_activation_modules():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    t = mt.tensor(x, dtype=np.float64)
    np.testing.assert_allclose(nn.ReLU()(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(t).numpy(), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Tanh()(t).numpy(), np.tanh(x))
    from scipy.special import erf

    np.testing.assert_allclose(nn.GELU()(t).numpy(), 0.5 * x * (1 + erf(x / np.sqrt(2))), rtol=1e-7)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(nn.GELU("tanh")(t).numpy(), tanh_form, rtol=1e-7)
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"


def test_rms_norm_layer_scales_rows_to_rms_one_times_its_gain_and_passes_gradcheck():
    layer = nn.RMSNorm(6, eps=0.0)
    layer.weight.data = np.linspace(0.5, 2.0, 6).astype(np.float32)
    x = mt.tensor(np.random.default_rng(0).standard_normal((3, 6)) * 4)
    y = layer(x).numpy() / layer.weight.numpy()
    np.testing.assert_allclose(np.sqrt((y * y).mean(-1)), 1.0, rtol=1e-5)
    assert module_gradcheck(nn.RMSNorm(6), mt.tensor(np.random.default_rng(1).standard_normal((2, 6))))
    with pytest.raises(ValueError, match="RMSNorm: input is shape"):
        layer(mt.tensor(np.ones((2, 5))))


def test_swiglu_is_down_of_silu_gate_times_up_and_passes_gradcheck():
    layer = nn.SwiGLU(4, 6)
    assert [name for name, _ in layer.named_parameters()] == ["gate_proj.weight", "up_proj.weight",
                                                             "down_proj.weight"]
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    gate, up, down = (p.numpy() for p in layer.parameters())
    hidden = x @ gate.T
    expected = (hidden / (1 + np.exp(-hidden)) * (x @ up.T)) @ down.T
    np.testing.assert_allclose(layer(mt.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert module_gradcheck(nn.SwiGLU(3, 5), mt.tensor(np.random.default_rng(3).standard_normal((2, 3))))


def test_rotary_embedding_layer_keeps_its_settings_and_checks_the_head_size():
    layer = nn.RotaryEmbedding(8, theta=500000.0, interleaved=True)
    x = mt.tensor(np.random.default_rng(4).standard_normal((1, 2, 5, 8)))
    np.testing.assert_array_equal(layer(x, [3, 4, 5, 6, 7]).numpy(),
                                  F.rotary_embedding(x, [3, 4, 5, 6, 7], 500000.0, interleaved=True).numpy())
    assert layer.num_parameters() == 0
    with pytest.raises(ValueError, match="RotaryEmbedding: head_dim must be a positive even number, got 7"):
        nn.RotaryEmbedding(7)
    with pytest.raises(ValueError, match="RotaryEmbedding: input is shape"):
        layer(mt.tensor(np.ones((1, 5, 6))))
