"""F10 (003_006dd6ae076e38fd.txt, section 3.2): y = theta_0 + theta_1 x_1 + ... + theta_n x_n,
and the NumPy example of section 4.1 (gradient descent on x = y = [1..5])."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


def linear_regression_formula(theta_0, theta, x):
    """theta_0 + sum_i theta_i x_i, one row of x at a time."""
    return np.array([theta_0 + sum(theta[i] * row[i] for i in range(len(theta))) for row in x])


@given(data=st.data())
def test_F10_linear_regression_equals_formula(data):
    n, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    x, theta, theta_0 = data.draw(arrays((n, d))), data.draw(arrays((d,))), data.draw(arrays(()))
    prediction = F.linear(mt.tensor(x, dtype=np.float64), mt.tensor(theta[None, :], dtype=np.float64),
                          mt.tensor(theta_0.reshape(1), dtype=np.float64))  # (n, 1)
    np.testing.assert_allclose(prediction.numpy()[:, 0], linear_regression_formula(theta_0, theta, x),
                               rtol=1e-12, atol=1e-12)


def test_F10_section_4_1_example_converges_to_one():
    # 003 section 4.1: x = y = [1, 2, 3, 4, 5], one parameter, MSE, learning rate 0.01,
    # 1000 iterations of gradient descent; the fit is y = 1 * x, so theta -> 1.
    x = mt.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])  # (5, 1): five examples, one feature
    y = mt.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    theta = mt.zeros(1, requires_grad=True)  # (1,)
    for _ in range(1000):
        loss = F.mse_loss(x @ theta, y)
        loss.backward()
        with mt.no_grad():
            theta.data -= 0.01 * theta.grad  # F3
        theta.grad = None
    assert theta.item() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose((x @ theta).numpy(), [1, 2, 3, 4, 5], rtol=1e-5)


def test_F10_section_4_1_prediction_needs_a_column_of_features():
    # The example predicts with np.dot(x, theta), theta of shape (1,): with x = [1..5] as written
    # (shape (5,)) that product is undefined and NumPy raises; x must be the (5, 1) design matrix.
    x, theta = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.ones(1)
    with pytest.raises(ValueError, match="not aligned"):
        np.dot(x, theta)
    np.testing.assert_array_equal(np.dot(x[:, None], theta), x)
