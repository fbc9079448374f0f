"""F6 (000_ec86085335eb1a19.txt, section 4.1): ReLU(x) = max(0, x)."""

from __future__ import annotations

import numpy as np
from hypothesis import given

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays, shapes


def relu_formula(x):
    return np.maximum(0, x)


@given(x=arrays(shapes, -1e3, 1e3))
def test_F6_relu_equals_formula(x):
    t = mt.tensor(x, dtype=np.float64, requires_grad=True)
    y = F.relu(t)
    np.testing.assert_array_equal(y.numpy(), relu_formula(x))
    y.sum().backward()
    # derivative: 1 where x > 0, 0 where x < 0 (and 0 at the kink x = 0, as PyTorch)
    np.testing.assert_array_equal(t.grad, (x > 0).astype(np.float64))
