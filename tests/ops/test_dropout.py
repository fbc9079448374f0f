"""ops/dropout.py and F.dropout: inverted scaling, the training flag, the mean preserved, and
the framework's seeded RNG (mt.manual_seed reproduces the mask)."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, host, tensor


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_zeroes_or_scales_by_inverse_keep_probability(xp, p):
    x = tensor(xp, np.random.default_rng(0).uniform(1, 2, size=(50, 40)), requires_grad=True)
    y = host(F.dropout(x, p=p, training=True))
    kept = y != 0
    assert_close(y[kept], host(x)[kept] / (1 - p), rtol=1e-12)
    assert abs(1 - kept.mean() - p) < 0.05  # 2000 draws: the dropped fraction is near p


def test_dropout_gradient_is_the_same_mask(xp):
    x = tensor(xp, np.ones((30, 30)), requires_grad=True)
    y = F.dropout(x, p=0.3)
    y.sum().backward()
    assert_close(x.grad, host(y))  # dL/dx = m / (1 - p), which is y for x = 1


def test_dropout_preserves_the_mean(xp):
    x = tensor(xp, np.full(200_000, 3.0))
    for p in (0.2, 0.7):
        # E[y] = (1 - p) * x / (1 - p) = x; std of the sample mean ~ 3 sqrt(p / (1-p) / n) < 0.011
        assert abs(float(F.dropout(x, p=p).mean().item()) - 3.0) < 0.05


def test_dropout_identity_when_not_training_or_p_zero(xp):
    x = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    assert F.dropout(x, p=0.5, training=False) is x
    assert F.dropout(x, p=0.0) is x
    assert_close(F.dropout(x, p=1.0), [0.0, 0.0, 0.0])


def test_dropout_uses_the_framework_rng(xp):
    x = tensor(xp, np.ones(1000))
    mt.manual_seed(123)
    first = host(F.dropout(x, p=0.5))
    second = host(F.dropout(x, p=0.5))
    mt.manual_seed(123)
    again = host(F.dropout(x, p=0.5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # the generator advances between calls


def test_dropout_keeps_float32(xp):
    x = tensor(xp, np.ones((4, 4)), dtype=np.float32)
    assert F.dropout(x, p=0.25).dtype == np.float32


def test_dropout_rejects_p_outside_unit_interval():
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(mt.tensor([1.0]), p=1.5)
