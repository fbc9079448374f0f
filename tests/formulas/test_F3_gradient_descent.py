"""F3 (000_ec86085335eb1a19.txt, section 4.1): theta_{t+1} = theta_t - alpha * grad L(theta_t).

Each update rule in UPDATE_RULES takes (parameter tensor, alpha) after backward() and updates
the parameter in place; the tests hold every rule to the formula computed in NumPy: the step
written by hand and the framework's optim.SGD.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import optim
from tests.strategies import arrays


def manual_step(theta: mt.Tensor, alpha: float) -> None:
    """theta <- theta - alpha * theta.grad, outside the graph."""
    with mt.no_grad():
        theta.data = theta.data - alpha * theta.grad
    theta.grad = None


def sgd_step(theta: mt.Tensor, alpha: float) -> None:
    """optim.SGD without momentum or weight decay is F3 exactly."""
    optimizer = optim.SGD([theta], lr=alpha)
    optimizer.step()
    optimizer.zero_grad()


UPDATE_RULES = {"manual": manual_step, "optim.SGD": sgd_step}


def linear_regression_loss(theta, X, y):
    """MSE of X theta against y (F1 of F10)."""
    return F.mse_loss(X @ theta, y)


def gradient_formula(theta, X, y):
    """grad of (1/n) ||X theta - y||^2 = (2/n) X^T (X theta - y)"""
    return (2 / len(y)) * X.T @ (X @ theta - y)


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
@given(data=st.data())
@settings(max_examples=20)
def test_F3_gradient_descent_step_equals_formula(rule, data):
    n, d = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3))
    X, y, theta_0 = data.draw(arrays((n, d))), data.draw(arrays((n,))), data.draw(arrays((d,)))
    alpha = data.draw(st.sampled_from([0.001, 0.01, 0.1]))
    theta = mt.tensor(theta_0, dtype=np.float64, requires_grad=True)
    expected = theta_0
    for _ in range(3):
        linear_regression_loss(theta, mt.tensor(X, dtype=np.float64), mt.tensor(y, dtype=np.float64)).backward()
        np.testing.assert_allclose(theta.grad, gradient_formula(expected, X, y), rtol=1e-10, atol=1e-12)
        UPDATE_RULES[rule](theta, alpha)
        expected = expected - alpha * gradient_formula(expected, X, y)  # F3
        np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_F3_gradient_descent_decreases_the_loss(rule):
    rng = np.random.default_rng(0)
    X = mt.tensor(rng.standard_normal((20, 3)), dtype=np.float64)
    y = X @ mt.tensor([1.0, -2.0, 0.5], dtype=np.float64)
    theta = mt.tensor(np.zeros(3), requires_grad=True, dtype=np.float64)
    losses = []
    for _ in range(100):
        loss = linear_regression_loss(theta, X, y)
        losses.append(loss.item())
        loss.backward()
        UPDATE_RULES[rule](theta, 0.1)
    assert all(b < a for a, b in zip(losses, losses[1:]))
    np.testing.assert_allclose(theta.numpy(), [1.0, -2.0, 0.5], atol=1e-3)
