"""ops/normalization.py: layer norm with and without weight/bias, against NumPy and finite
differences; before the affine part every row has mean 0 and variance 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import check_op, host, tensor
from tests.strategies import arrays, shapes


def reference_layer_norm(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


@pytest.mark.parametrize("affine", ["none", "weight", "both", "bias"])
@given(data=st.data())
def test_layer_norm_matches_numpy(xp, affine, data):
    shape = data.draw(shapes)
    x = data.draw(arrays(shape))
    n = shape[-1]
    eps = data.draw(st.sampled_from([1e-5, 1e-2]))
    weight, bias = data.draw(arrays((n,))), data.draw(arrays((n,)))
    if affine == "none":
        check_op(xp, lambda t: F.layer_norm(t, eps=eps), lambda a: reference_layer_norm(a, eps=eps), x)
    elif affine == "weight":
        check_op(xp, lambda t, w: F.layer_norm(t, w, eps=eps), lambda a, w: reference_layer_norm(a, w, eps=eps),
                 x, weight)
    elif affine == "bias":
        check_op(xp, lambda t, b: F.layer_norm(t, None, b, eps=eps),
                 lambda a, b: reference_layer_norm(a, None, b, eps=eps), x, bias)
    else:
        check_op(xp, lambda t, w, b: F.layer_norm(t, w, b, eps=eps),
                 lambda a, w, b: reference_layer_norm(a, w, b, eps=eps), x, weight, bias)


@given(data=st.data())
def test_layer_norm_rows_have_mean_zero_and_variance_one(xp, data):
    shape = data.draw(shapes.filter(lambda s: s[-1] > 1))
    x = data.draw(arrays(shape, -100, 100))
    x = x + np.arange(shape[-1])  # every row has spread, so var >> eps
    y = host(F.layer_norm(tensor(xp, x), eps=1e-12))
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-6)


# --- RMS norm ------------------------------------------------------------------------------------

def reference_rms_norm(x, weight=None, eps=1e-6):
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return y * (1 if weight is None else weight)


@given(data=st.data())
def test_rms_norm_matches_numpy_and_passes_gradcheck(xp, data):
    shape = data.draw(shapes)
    x, weight = data.draw(arrays(shape)), data.draw(arrays((shape[-1],)))
    eps = data.draw(st.sampled_from([1e-6, 1e-2]))
    check_op(xp, lambda t, w: F.rms_norm(t, w, eps=eps), lambda a, w: reference_rms_norm(a, w, eps), x, weight)
    check_op(xp, lambda t: F.rms_norm(t, eps=eps), lambda a: reference_rms_norm(a, eps=eps), x)


@given(x=arrays(shapes, 0.5, 3.0), scale=st.floats(0.01, 100))
def test_rms_norm_rows_have_rms_one_and_ignore_the_scale_of_the_input(xp, x, scale):
    """Without eps every row comes out with root-mean-square 1, whatever x's scale: y(c x) = y(x)."""
    y = host(F.rms_norm(tensor(xp, x), eps=0.0))
    np.testing.assert_allclose(np.sqrt((y * y).mean(axis=-1)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(host(F.rms_norm(tensor(xp, x * scale), eps=0.0)), y, rtol=1e-10, atol=1e-12)


def test_rms_norm_does_not_centre_unlike_layer_norm(xp):
    x = tensor(xp, np.array([[1.0, 2.0, 3.0]]))
    rms = host(F.rms_norm(x, eps=0.0))
    np.testing.assert_allclose(rms, [[1, 2, 3] / np.sqrt(14 / 3)], rtol=1e-12)
    assert rms.mean() > 0 and abs(host(F.layer_norm(x)).mean()) < 1e-12


def test_rms_norm_rejects_bad_inputs(xp):
    with pytest.raises(ValueError, match=r"rms_norm: weight is shape \(3,\) float64 and input shape \(2, 4\) float64; expected"):
        F.rms_norm(tensor(xp, np.ones((2, 4))), tensor(xp, np.ones(3)))
    with pytest.raises(ValueError, match="rms_norm: eps must be >= 0, got nan"):
        F.rms_norm(tensor(xp, np.ones((2, 4))), eps=float("nan"))
    with pytest.raises(TypeError, match="rms_norm: input must be floating point"):
        F.rms_norm(mt.tensor(np.ones((2, 4), dtype=np.int64)), mt.tensor(np.ones(4)))
