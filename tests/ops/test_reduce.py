"""ops/reduce.py: sum, mean, max, min, var over int/tuple/None axes, keepdims, ddof; max/min
ties split the gradient evenly; empty axes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import assert_close, check_op, tensor
from tests.strategies import arrays, axes_for, distinct_arrays, shapes

REDUCTIONS = {
    "sum": (lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), np.sum),
    "mean": (lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), np.mean),
    "max": (lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), np.max),
    "min": (lambda x, axis, keepdims: x.min(axis=axis, keepdims=keepdims), np.min),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reductions_match_numpy(xp, name, data):
    op, reference = REDUCTIONS[name]
    shape = data.draw(shapes)
    # distinct values: finite differences of max/min are only valid away from ties
    x = data.draw(distinct_arrays(shape) if name in ("max", "min") else arrays(shape))
    axis, keepdims = data.draw(axes_for(len(shape))), data.draw(st.booleans())
    check_op(xp, lambda t: op(t, axis, keepdims), lambda a: reference(a, axis=axis, keepdims=keepdims), x)


@given(data=st.data())
def test_var_matches_numpy(xp, data):
    shape = data.draw(shapes)
    axis, keepdims = data.draw(axes_for(len(shape))), data.draw(st.booleans())
    per_group = int(np.prod(shape)) // np.zeros(shape).sum(axis=axis, keepdims=True).size
    ddof = data.draw(st.integers(0, per_group - 1))
    x = data.draw(arrays(shape))
    check_op(xp, lambda t: t.var(axis=axis, keepdims=keepdims, ddof=ddof),
             lambda a: np.var(a, axis=axis, keepdims=keepdims, ddof=ddof), x)


def test_var_needs_more_elements_than_ddof(xp):
    with pytest.raises(ValueError, match=r"var: needs more than ddof=2 elements over axes \(0,\), got 2"):
        tensor(xp, [1.0, 2.0]).var(ddof=2)


def test_max_ties_split_gradient_evenly(xp):
    x = tensor(xp, [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    assert_close(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.max().backward()  # global max 3 twice
    assert_close(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])


def test_min_ties_split_gradient_evenly(xp):
    x = tensor(xp, [[4.0, 1.0, 1.0, 1.0, 1.0]], requires_grad=True)
    (x.min(axis=-1, keepdims=True) * 8).sum().backward()
    assert_close(x.grad, [[0, 2, 2, 2, 2]])


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var"])
def test_empty_axis_tuple_is_identity_but_empty_axes_keep_gradient(xp, name):
    x = tensor(xp, [[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    out = getattr(x, name)(axis=())
    if name == "var":
        assert_close(out, np.zeros((2, 2)))  # one element per group: no spread
    else:
        assert_close(out, x)
        out.sum().backward()
        assert_close(x.grad, np.ones((2, 2)))


def test_sum_over_empty_axis_is_zero_with_empty_gradient(xp):
    x = tensor(xp, np.zeros((0, 3)), requires_grad=True)
    out = x.sum(axis=0)
    assert_close(out, np.zeros(3))
    (out * tensor(xp, [1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.shape == (0, 3)
    assert x.sum(axis=1).shape == (0,)  # a non-reduced empty axis stays empty


@pytest.mark.parametrize("name", ["mean", "max"])
def test_mean_and_max_over_empty_axis_raise(xp, name):
    with pytest.raises(ValueError, match=f"{name}: cannot .* over empty axes \\(0,\\) of shape \\(0, 3\\)"):
        getattr(tensor(xp, np.zeros((0, 3))), name)(axis=0)


def test_reduction_of_0d_tensor(xp):
    x = tensor(xp, 2.5, requires_grad=True)
    (x.sum() * x.mean() + x.max()).backward()
    assert_close(x.grad, 2 * 2.5 + 1)
