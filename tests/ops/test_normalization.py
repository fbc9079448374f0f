"""ops/normalization.py: layer norm with and without weight/bias, against NumPy and finite
differences; before the affine part every row has mean 0 and variance 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
