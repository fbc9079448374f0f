"""ops/softmax.py: softmax and log-softmax against NumPy and finite differences, and what the
math promises: rows sum to 1, adding a constant per row changes nothing, large logits stay
finite."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax as np_log_softmax
from scipy.special import softmax as np_softmax

import minitransformer.functional as F
from tests.helpers import assert_close, check_op, host, tensor
from tests.strategies import arrays, large_arrays, shapes


@pytest.mark.parametrize("op, reference", [(F.softmax, np_softmax), (F.log_softmax, np_log_softmax)])
@given(data=st.data())
def test_matches_numpy(xp, op, reference, data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_op(xp, lambda t: op(t, axis=axis), lambda a: reference(a, axis=axis), data.draw(arrays(shape)))


@given(data=st.data())
def test_softmax_rows_sum_to_one_and_ignore_a_constant_per_row(xp, data):
    shape = data.draw(shapes)
    x = data.draw(arrays(shape, -20, 20))
    shift = data.draw(arrays(shape[:-1] + (1,), -100, 100))
    y = host(F.softmax(tensor(xp, x)))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(y >= 0)
    assert_close(F.softmax(tensor(xp, x + shift)), y, rtol=1e-9, atol=1e-15)
    assert_close(F.log_softmax(tensor(xp, x + shift)), np.log(y), rtol=1e-9, atol=1e-9)


@given(x=large_arrays(shapes, 1e4))
def test_large_logits_stay_finite(xp, x):
    for dtype in (np.float32, np.float64):
        log_p = host(F.log_softmax(tensor(xp, x, dtype=dtype)))
        p = host(F.softmax(tensor(xp, x, dtype=dtype)))
        assert np.all(np.isfinite(log_p)) and np.all(np.isfinite(p))
        np.testing.assert_allclose(log_p, np_log_softmax(x.astype(dtype), axis=-1), rtol=1e-5, atol=1e-2)


def test_log_softmax_of_extreme_logits_is_exact(xp):
    x = tensor(xp, [[1e4, -1e4, 0.0]], requires_grad=True)
    y = F.log_softmax(x)
    assert_close(y, [[0.0, -2e4, -1e4]])
    (y * tensor(xp, [[1.0, 2.0, 3.0]])).sum().backward()
    assert_close(x.grad, [[1 - 6, 2, 3]])  # g - softmax * sum(g), softmax = [1, 0, 0]
