"""F4 (000_ec86085335eb1a19.txt, section 4.1), stated as "Adam":

    theta_{t+1} = theta_t - alpha * grad / (1 - beta1^t)

and described as "using first- and second-moment estimates". As written it keeps no moment at
all: it is gradient descent (F3) with the step size alpha / (1 - beta1^t), which starts at
alpha / (1 - beta1) = 10 alpha for beta1 = 0.9 and decays to alpha: the largest steps come
first. Adam (Kingma & Ba, Algorithm 1) divides a bias-corrected running mean of g by the square
root of a bias-corrected running mean of g^2. Taught in lessons/07_optimizers.md.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import optim


def f4_as_written(theta, grad, t, alpha, beta1=0.9):
    return theta - alpha * grad / (1 - beta1**t)


def _adam_step(theta, grad, lr):
    param = mt.tensor(theta, dtype=np.float64, requires_grad=True)
    param.grad = np.asarray(grad, dtype=np.float64)
    optim.Adam([param], lr=lr).step()
    return param.numpy()


def test_errata_F4_is_gradient_descent_with_a_decaying_step():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(5)
    for t in range(1, 30):
        grad = rng.standard_normal(5)
        step_size = 0.01 / (1 - 0.9**t)
        np.testing.assert_allclose(f4_as_written(theta, grad, t, 0.01), theta - step_size * grad, rtol=1e-15)
    # the first step is 10 times the gradient-descent step, the limit is the plain step
    assert 0.01 / (1 - 0.9) == pytest.approx(0.1)
    assert 0.01 / (1 - 0.9**200) == pytest.approx(0.01, rel=1e-9)


def test_errata_F4_differs_from_adam_first_step():
    """Adam's first step is lr * sign(g) (m_hat = g, sqrt(v_hat) = |g|); F4's is 10 lr g."""
    theta, grad = np.zeros(3), np.array([0.001, -2.0, 50.0])
    np.testing.assert_allclose(_adam_step(theta, grad, lr=0.1), -0.1 * np.sign(grad), rtol=1e-4)  # eps = 1e-8 vs |g| = 1e-3
    np.testing.assert_allclose(f4_as_written(theta, grad, 1, alpha=0.1), -1.0 * grad, rtol=1e-15)


def test_errata_F4_is_not_scale_invariant_and_adam_is():
    theta, grad = np.zeros(2), np.array([0.3, -0.7])
    for scale in (1e-3, 1e3):
        np.testing.assert_allclose(_adam_step(theta, scale * grad, lr=0.01), _adam_step(theta, grad, lr=0.01), rtol=1e-4)
        np.testing.assert_allclose(f4_as_written(theta, scale * grad, 1, 0.01), scale * f4_as_written(theta, grad, 1, 0.01))


def test_errata_F4_diverges_where_gradient_descent_converges():
    """On f(w) = 25 w^2 / 2 (curvature 25), gradient descent with alpha = 0.05 is stable
    (|1 - 25 alpha| = 0.25 < 1) but F4's early steps (alpha_t up to 0.5) multiply w by up to 11.5."""
    w_gd = w_f4 = 1.0
    largest_f4 = 1.0
    for t in range(1, 11):
        w_gd = w_gd - 0.05 * 25 * w_gd
        w_f4 = f4_as_written(w_f4, 25 * w_f4, t, 0.05)
        largest_f4 = max(largest_f4, abs(w_f4))
    assert abs(w_gd) < 1e-5
    assert largest_f4 > 1e3
