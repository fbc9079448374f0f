"""F5 (000_ec86085335eb1a19.txt, section 4.1): sigma(x) = 1 / (1 + e^-x)."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays, shapes


def sigmoid_formula(x):
    return 1 / (1 + np.exp(-x))


@given(x=arrays(shapes, -30, 30))
def test_F5_sigmoid_equals_formula(x):
    t = mt.tensor(x, dtype=np.float64, requires_grad=True)
    y = F.sigmoid(t)
    np.testing.assert_allclose(y.numpy(), sigmoid_formula(x), rtol=1e-13)
    y.sum().backward()
    np.testing.assert_allclose(t.grad, sigmoid_formula(x) * (1 - sigmoid_formula(x)), rtol=1e-12, atol=1e-300)


def test_F5_sigmoid_large_negative_inputs():
    # Written literally, e^-x overflows for x < -709 in float64 (NumPy warns and rounds the
    # result to 0). The framework computes the same value without ever overflowing.
    x = np.array([-1000.0, -710.0, 710.0, 1000.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        literal = sigmoid_formula(x)
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.sigmoid(mt.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_array_equal(y[2:], literal[2:])
    assert np.all(y[:2] >= 0) and np.all(y[:2] < 1e-300)
