"""ops/elementwise.py: forward equals NumPy, autograd equals finite differences, over
hypothesis-drawn shapes (broadcasting pairs included) and values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf, expit

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, check_op, host, tensor
from tests.strategies import (arrays, away_from_kinks, broadcastable_pair, large_arrays,
                              positive_arrays, shapes)

BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_ops_broadcast_like_numpy(xp, name, data):
    op, reference = BINARY[name]
    shape_a, shape_b = data.draw(broadcastable_pair())
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    out = check_op(xp, op, reference, a, b)
    assert out.shape == np.broadcast_shapes(shape_a, shape_b)


@given(data=st.data())
def test_div_broadcasts_like_numpy(xp, data):
    shape_a, shape_b = data.draw(broadcastable_pair())
    a = data.draw(arrays(shape_a))
    b = data.draw(positive_arrays(shape_b, 0.5, 3.0)) * data.draw(st.sampled_from([1.0, -1.0]))
    check_op(xp, lambda x, y: x / y, np.divide, a, b)


UNARY = {
    "neg": (lambda x: -x, np.negative, arrays),
    "exp": (lambda x: x.exp(), np.exp, arrays),
    "log": (lambda x: x.log(), np.log, positive_arrays),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, positive_arrays),
    "abs": (lambda x: x.abs(), np.abs, lambda s: arrays(s).map(away_from_kinks)),
    "tanh": (lambda x: x.tanh(), np.tanh, arrays),
    "sigmoid": (lambda x: x.sigmoid(), expit, arrays),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), lambda s: arrays(s).map(away_from_kinks)),
    "gelu": (F.gelu, lambda a: a * 0.5 * (1 + erf(a / np.sqrt(2))), arrays),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3))), arrays),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_ops_match_numpy(xp, name, data):
    op, reference, values = UNARY[name]
    check_op(xp, op, reference, data.draw(values(shapes)))


@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, 1.5, 0, 1])
@given(base=positive_arrays(shapes, 0.2, 3.0))
@settings(max_examples=10)
def test_pow_constant_exponent(xp, exponent, base):
    check_op(xp, lambda x: x**exponent, lambda a: a**exponent, base)


@given(base=arrays(shapes).map(away_from_kinks))
@settings(max_examples=15)
def test_pow_integer_exponent_of_negative_base(xp, base):
    check_op(xp, lambda x: x**3, lambda a: a**3, base)


def test_pow_zero_exponent_has_zero_gradient_at_zero(xp):
    x = tensor(xp, [0.0, 2.0], requires_grad=True)
    (x**0).sum().backward()
    assert_close(x.grad, [0.0, 0.0])  # d(x^0)/dx = 0 everywhere, not 0 * inf = NaN at 0


@given(data=st.data())
@settings(max_examples=25)
def test_pow_tensor_exponent(xp, data):
    shape_a, shape_b = data.draw(broadcastable_pair())
    base = data.draw(positive_arrays(shape_a, 0.2, 3.0))
    exponent = data.draw(arrays(shape_b, -2.0, 2.0))
    check_op(xp, lambda a, b: a**b, np.power, base, exponent)
    check_op(xp, lambda b: 2.0**b, lambda b: 2.0**b, exponent)  # __rpow__


@given(data=st.data())
def test_maximum_broadcasts_and_routes_gradient_to_larger(xp, data):
    shape_a, shape_b = data.draw(broadcastable_pair())
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    near_tie = np.abs(np.subtract(*np.broadcast_arrays(a, b))) < 1e-3  # finite differences fail there
    check_op(xp, mt.maximum, np.maximum, a, b, grad=not near_tie.any())


def test_maximum_splits_gradient_evenly_on_ties(xp):
    a = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    b = tensor(xp, [1.0, 5.0, 0.0], requires_grad=True)
    mt.maximum(a, b).sum().backward()
    assert_close(a.grad, [0.5, 0.0, 1.0])
    assert_close(b.grad, [0.5, 1.0, 0.0])


@given(data=st.data())
def test_where_selects_and_routes_gradient(xp, data):
    shape_c, shape_a, shape_b = data.draw(broadcastable_pair(3))
    condition = data.draw(arrays(shape_c)) > 0
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    condition_on_device = xp.asarray(condition)
    check_op(xp, lambda x, y: mt.where(condition_on_device, x, y),
             lambda x, y: np.where(condition, x, y), a, b)


def test_where_rejects_non_boolean_condition(xp):
    with pytest.raises(TypeError, match="where: condition must be boolean"):
        mt.where(tensor(xp, [1.0]), tensor(xp, [1.0]), tensor(xp, [2.0]))


COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}


@pytest.mark.parametrize("symbol", sorted(COMPARISONS))
@given(data=st.data())
@settings(max_examples=15)
def test_comparisons_are_boolean_and_not_differentiable(xp, symbol, data):
    shape_a, shape_b = data.draw(broadcastable_pair())
    a = np.round(data.draw(arrays(shape_a)))  # rounded, so that == and != see equal values
    b = np.round(data.draw(arrays(shape_b)))
    x, y = tensor(xp, a, requires_grad=True), tensor(xp, b)
    out = eval(f"x {symbol} y")
    assert out.dtype == bool and not out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(host(out), COMPARISONS[symbol](a, b))


@given(x=large_arrays(shapes, 1e4))
def test_sigmoid_stable_for_large_magnitudes(xp, x):
    out = host(tensor(xp, x).sigmoid())
    assert np.all(np.isfinite(out)) and np.all((out >= 0) & (out <= 1))
    np.testing.assert_allclose(out, expit(x), rtol=1e-12, atol=1e-300)


@given(x=arrays(shapes, -50.0, 50.0))
def test_sigmoid_is_symmetric(xp, x):
    # sigma(-x) = 1 - sigma(x)
    t = tensor(xp, x)
    assert_close((-t).sigmoid(), 1 - host(t.sigmoid()), rtol=1e-12, atol=1e-15)


def test_sigmoid_float32_large_negative_stays_finite():
    x = mt.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    assert y.dtype == np.float32 and np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(y.numpy(), [0.0, expit(-100.0), 0.5, 1.0, 1.0], atol=1e-30)


def test_python_scalars_keep_float32():
    x = mt.tensor([1.0, 2.0])
    for y in (x * 0.5, 0.5 * x, x + 1, 1 - x, x / 3.0, 2.0 / x, x**2, 2.0**x):
        assert y.dtype == np.float32


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(mt.tensor([1.0]), approximate="fast")


# --- SiLU ----------------------------------------------------------------------------------------

@given(x=arrays(shapes))
def test_silu_is_x_times_sigmoid_and_passes_gradcheck(xp, x):
    check_op(xp, F.silu, lambda a: a * expit(a), x)


@given(x=large_arrays(shapes))
def test_silu_is_finite_and_tends_to_relu_for_large_magnitudes(xp, x):
    """silu(x) = x sigmoid(x): ~x for x >> 0, ~0 for x << 0, never NaN (stable sigmoid)."""
    out = host(F.silu(tensor(xp, x)))
    assert np.isfinite(out).all()
    big = np.abs(x) > 50
    np.testing.assert_allclose(out[big], np.maximum(x[big], 0), atol=1e-12)


@given(data=st.data())
@settings(max_examples=25)  # two inputs: twice the finite differences of silu's test
def test_swiglu_is_silu_of_gate_times_up_and_passes_gradcheck(xp, data):
    shape = data.draw(shapes)
    gate, up = data.draw(arrays(shape)), data.draw(arrays(shape))
    check_op(xp, F.swiglu, lambda a, b: a * expit(a) * b, gate, up)


def test_swiglu_is_bitwise_the_composition_it_fuses():
    """silu(a) * b in one node: the same float32 operations in the same order, reference code."""
    rng = np.random.default_rng(0)
    arrays_in = [(rng.standard_normal((4, 9)) * 5).astype(np.float32) for _ in range(3)]  # a, b, dz
    results = []
    previous = mt.get_kernels()
    mt.set_kernels("reference")
    try:
        for op in (F.swiglu, lambda a, b: F.silu(a) * b):
            a, b = (mt.tensor(x, requires_grad=True) for x in arrays_in[:2])
            out = op(a, b)
            out.backward(mt.tensor(arrays_in[2]))
            results.append([out.numpy(), a.grad, b.grad])
    finally:
        mt.set_kernels(previous)
    for fused, composed in zip(*results):
        np.testing.assert_array_equal(fused, composed)


def test_swiglu_rejects_other_shapes_and_integers():
    with pytest.raises(ValueError, match=r"swiglu: gate is .* and up .*; expected the same shape"):
        F.swiglu(mt.tensor(np.ones((2, 3))), mt.tensor(np.ones(3)))
    with pytest.raises(TypeError, match="swiglu: gate must be floating point"):
        F.swiglu(mt.tensor(np.array([1, 2])), mt.tensor(np.ones(2)))


def test_silu_float32_stays_float32_and_rejects_integers():
    assert F.silu(mt.tensor(np.array([1.0, -2.0], dtype=np.float32))).dtype == np.float32
    with pytest.raises(TypeError, match="silu: input must be floating point"):
        F.silu(mt.tensor(np.array([1, 2])))
