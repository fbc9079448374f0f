"""F1 (000 section 4.1): MSE = (1/n) sum_i (y_i - y_hat_i)^2, as F.mse_loss, and the gradient
gradient descent (F3) follows: dMSE/dy_hat_i = (2/n) (y_hat_i - y_i)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


@given(data=st.data())
def test_F1_mse_value_and_gradient_follow_the_formula(data):
    n = data.draw(st.integers(1, 12))
    y, y_hat = data.draw(arrays((n,))), data.draw(arrays((n,)))
    prediction = mt.tensor(y_hat, dtype=np.float64, requires_grad=True)
    loss = F.mse_loss(prediction, mt.tensor(y, dtype=np.float64))
    literal = sum((y[i] - y_hat[i]) ** 2 for i in range(n)) / n
    np.testing.assert_allclose(loss.item(), literal, rtol=1e-12, atol=1e-15)
    loss.backward()
    np.testing.assert_allclose(prediction.grad, 2 / n * (y_hat - y), rtol=1e-12, atol=1e-15)


def test_F1_mse_is_order_free_and_zero_only_at_a_perfect_fit():
    y = np.array([1.0, 2.0, 3.0])
    assert F.mse_loss(mt.tensor(y), y).item() == 0.0
    assert F.mse_loss(mt.tensor(y + [0.0, 0.0, 0.1]), y).item() > 0.0
    shuffled = F.mse_loss(mt.tensor([3.0, 1.0, 2.5]), np.array([3.0, 1.0, 2.0])).item()
    assert shuffled == F.mse_loss(mt.tensor([1.0, 2.5, 3.0]), np.array([1.0, 2.0, 3.0])).item()
