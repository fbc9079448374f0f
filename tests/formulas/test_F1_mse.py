"""F1 (000_ec86085335eb1a19.txt, section 4.1): MSE = (1/n) sum_i (y_i - y_hat_i)^2."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays, shapes


def mse_formula(y, y_hat):
    n = y.size
    return (1 / n) * np.sum((y - y_hat) ** 2)


@given(data=st.data())
def test_F1_mse_equals_formula(data):
    shape = data.draw(shapes)
    y, y_hat = data.draw(arrays(shape, -10, 10)), data.draw(arrays(shape, -10, 10))
    prediction = mt.tensor(y_hat, dtype=np.float64, requires_grad=True)
    loss = F.mse_loss(prediction, mt.tensor(y, dtype=np.float64))
    np.testing.assert_allclose(loss.item(), mse_formula(y, y_hat), rtol=1e-12, atol=1e-14)
    loss.backward()
    # d MSE / d y_hat_i = -(2/n) (y_i - y_hat_i)
    np.testing.assert_allclose(prediction.grad, -(2 / y.size) * (y - y_hat), rtol=1e-12, atol=1e-14)


def test_F1_mse_small_example():
    y, y_hat = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])
    loss = F.mse_loss(mt.tensor(y_hat), mt.tensor(y))
    assert abs(loss.item() - (0.25 + 0 + 1) / 3) < 1e-7
