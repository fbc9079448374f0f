"""optim/clip.py: clip_grad_norm returns the global norm and scales every gradient by the
same factor, only when the norm is above max_norm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitransformer import nn, optim
from tests.strategies import arrays


def with_grads(grads):
    params = []
    for g in grads:
        param = nn.Parameter(np.zeros(g.shape))
        param.grad = g.copy()
        params.append(param)
    return params


@given(grads=st.lists(arrays(st.tuples(st.integers(1, 3), st.integers(1, 3)), -10, 10), min_size=1, max_size=4),
       max_norm=st.floats(0.01, 50.0))
def test_returns_the_global_norm_and_scales_all_gradients_together(grads, max_norm):
    params = with_grads(grads)
    total = np.sqrt(sum((g**2).sum() for g in grads))
    returned = optim.clip_grad_norm(params, max_norm)
    assert returned == pytest.approx(total, rel=1e-12)
    scale = min(1.0, max_norm / (total + 1e-6))
    for param, g in zip(params, grads):
        np.testing.assert_allclose(param.grad, g * scale, rtol=1e-12)
    clipped = np.sqrt(sum((p.grad**2).sum() for p in params))
    assert clipped <= max_norm * (1 + 1e-9)
    if total > max_norm:  # the 1e-6 guard leaves the norm a hair below max_norm
        assert clipped == pytest.approx(max_norm * total / (total + 1e-6), rel=1e-9)


def test_small_gradients_are_left_alone_and_missing_ones_skipped():
    params = with_grads([np.array([0.3, 0.4])])
    params.append(nn.Parameter(np.ones(2)))  # no gradient
    assert optim.clip_grad_norm(params, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad, [0.3, 0.4])
    assert params[1].grad is None
    assert optim.clip_grad_norm([nn.Parameter(np.ones(1))], 1.0) == 0.0


def test_clipping_keeps_dtype_and_does_not_touch_the_original_array():
    grad = np.array([3.0, 4.0], dtype=np.float32)
    (param,) = with_grads([grad])
    param.grad = grad
    assert optim.clip_grad_norm([param], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(param.grad, [0.6, 0.8], rtol=1e-6)
    assert param.grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [3.0, 4.0])  # the graph may still share it


def test_accepts_a_generator_and_rejects_non_positive_max_norm():
    model = nn.Linear(2, 2)
    for p in model.parameters():
        p.grad = np.full(p.shape, 10.0, dtype=np.float32)
    assert optim.clip_grad_norm((p for p in model.parameters()), 1.0) == pytest.approx(np.sqrt(6 * 100))
    assert np.sqrt(sum((p.grad.astype(np.float64)**2).sum() for p in model.parameters())) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be > 0, got 0"):
        optim.clip_grad_norm(model.parameters(), 0)
