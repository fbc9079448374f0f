"""F11 (003_006dd6ae076e38fd.txt, section 3.2):
P(y = 1 | x) = 1 / (1 + e^-(theta_0 + theta_1 x_1 + ... + theta_n x_n))."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


def logistic_regression_formula(theta_0, theta, x):
    return np.array([1 / (1 + np.exp(-(theta_0 + sum(theta[i] * row[i] for i in range(len(theta))))))
                     for row in x])


def logistic_regression(theta_0, theta, x):
    """The framework: sigmoid of a linear layer with one output."""
    return F.sigmoid(F.linear(x, theta.reshape(1, -1), theta_0.reshape(1))).reshape(-1)


@given(data=st.data())
def test_F11_logistic_regression_equals_formula(data):
    n, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    x, theta, theta_0 = data.draw(arrays((n, d))), data.draw(arrays((d,))), data.draw(arrays(()))
    p = logistic_regression(mt.tensor(theta_0, dtype=np.float64), mt.tensor(theta, dtype=np.float64),
                            mt.tensor(x, dtype=np.float64))
    np.testing.assert_allclose(p.numpy(), logistic_regression_formula(theta_0, theta, x), rtol=1e-12)


def test_F11_logistic_regression_training_matches_formula_gradient():
    # Gradient of the mean binary cross-entropy: dL/dtheta = X^T (p - y) / n, dL/dtheta_0 = mean(p - y).
    # Starting from theta = 0 puts every logit at exactly 0, where the gradient must be 1/2 - y.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2))
    y = (x @ np.array([2.0, -1.0]) + 0.5 > 0).astype(np.float64)
    theta_np, theta_0_np = np.zeros(2), 0.0
    theta = mt.tensor(np.zeros(2), dtype=np.float64, requires_grad=True)
    theta_0 = mt.tensor(0.0, dtype=np.float64, requires_grad=True)
    inputs, labels = mt.tensor(x, dtype=np.float64), mt.tensor(y, dtype=np.float64)
    losses = []
    for _ in range(100):
        logits = F.linear(inputs, theta.reshape(1, -1), theta_0.reshape(1)).reshape(-1)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        p = logistic_regression_formula(theta_0_np, theta_np, x)
        np.testing.assert_allclose(theta.grad, x.T @ (p - y) / len(y), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(theta_0.grad, np.mean(p - y), rtol=1e-9, atol=1e-12)
        losses.append(loss.item())
        with mt.no_grad():
            for param in (theta, theta_0):
                param.data = param.data - 0.5 * param.grad
                param.grad = None
        theta_np, theta_0_np = theta_np - 0.5 * x.T @ (p - y) / len(y), theta_0_np - 0.5 * np.mean(p - y)
    assert losses[-1] < 0.3 * losses[0]
    accuracy = np.mean((logistic_regression_formula(theta_0_np, theta_np, x) > 0.5) == (y == 1))
    assert accuracy >= 0.95
