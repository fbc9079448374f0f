"""F4 (000 section 4.1), called "Adam" by the document: theta_{t+1} = theta_t - alpha * grad / (1 - beta1^t).

As written it has no moments at all: the bias correction 1/(1 - beta1^t), which real Adam
applies to its running mean m_t of gradients, is applied to the raw gradient. So F4 is plain
gradient descent (F3) with a step alpha / (1 - beta1^t) that starts 1/(1 - beta1) = 10 times too
large and decays to alpha. Real Adam (optim.Adam) divides by the running RMS of the gradient,
so its steps are about alpha per coordinate whatever the gradient's scale or the curvature.
The tests compare the two on an ill-conditioned quadratic and check each difference claimed.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim

CURVATURES = np.array([100.0, 1.0])  # f(theta) = 1/2 sum_i a_i theta_i^2, condition number 100
START = np.array([1.0, 1.0])


def gradient(theta, scale=1.0):
    return scale * CURVATURES * theta


def F4_as_written(steps, alpha, beta1=0.9, scale=1.0):
    theta, trajectory = START.copy(), [START.copy()]
    for t in range(1, steps + 1):
        theta = theta - alpha * gradient(theta, scale) / (1 - beta1**t)
        trajectory.append(theta.copy())
    return np.array(trajectory)


def real_adam(steps, lr, scale=1.0):
    """optim.Adam on the same quadratic, through autograd."""
    theta = nn.Parameter(START.copy())
    optimizer = optim.Adam([theta], lr=lr)
    a = mt.tensor(CURVATURES, dtype=np.float64)
    trajectory = [START.copy()]
    for _ in range(steps):
        loss = (a * theta * theta).sum() * (0.5 * scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trajectory.append(theta.numpy().copy())
    return np.array(trajectory)


def test_F4_is_gradient_descent_with_a_step_that_starts_ten_times_too_large():
    alpha = 0.01
    trajectory = F4_as_written(30, alpha)
    theta = START.copy()
    for t in range(1, 31):
        step = alpha / (1 - 0.9**t)  # F3 with this learning rate
        theta = theta - step * gradient(theta)
        np.testing.assert_allclose(trajectory[t], theta, rtol=1e-12)
    assert alpha / (1 - 0.9) == pytest.approx(10 * alpha)  # t = 1
    assert alpha / (1 - 0.9**100) == pytest.approx(alpha, rel=1e-4)  # late steps: alpha


def test_F4_first_step_scales_with_the_gradient_and_adam_moves_every_coordinate_by_lr():
    F4_step = F4_as_written(1, 0.001)[1] - START
    adam_step = real_adam(1, 0.001)[1] - START
    np.testing.assert_allclose(F4_step, -0.001 / 0.1 * CURVATURES * START)  # (-1.0, -0.01): ratio 100
    np.testing.assert_allclose(adam_step, [-0.001, -0.001], rtol=1e-6)  # ratio 1, the curvature ignored


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_F4_is_not_scale_invariant_and_adam_is(scale):
    """Multiplying the loss by a constant multiplies F4's steps (no second moment to divide it
    out); Adam's m_hat / sqrt(v_hat) cancels the constant."""
    adam, adam_scaled = real_adam(20, 0.01), real_adam(20, 0.01, scale=scale)
    np.testing.assert_allclose(adam_scaled, adam, rtol=1e-5, atol=1e-7)
    F4, F4_scaled = F4_as_written(20, 1e-4), F4_as_written(20, 1e-4, scale=scale)
    np.testing.assert_allclose(F4_scaled[1] - START, scale * (F4[1] - START), rtol=1e-9)
    assert np.abs(F4_scaled - F4).max() > 0.1


def test_F4_inflated_early_steps_blow_up_the_stiff_direction_where_plain_descent_converges():
    """alpha = 0.015 < 2/100 is a stable step for plain gradient descent on this quadratic, but F4
    multiplies it by up to 10: |1 - 100 alpha / (1 - 0.9^t)| > 1 for the first 13 steps."""
    alpha = 0.015
    F4 = F4_as_written(200, alpha)
    descent = [START.copy()]
    for _ in range(200):
        descent.append(descent[-1] - alpha * gradient(descent[-1]))
    descent = np.array(descent)
    assert np.all(np.diff(np.abs(descent[:, 0])) <= 0)  # plain descent shrinks |theta_1| at every step
    assert np.abs(F4[:, 0]).max() > 1e4  # F4 throws it out by four orders of magnitude first
    growing = np.abs(F4[1:, 0]) > np.abs(F4[:-1, 0])
    assert growing[:13].all() and not growing[14:].any()  # exactly while alpha_t > 2/100
    adam = real_adam(200, 0.015)
    assert np.abs(adam).max() <= 1.0 + 1e-9  # Adam never leaves the starting box


def test_F4_and_adam_treat_the_two_curvatures_differently():
    """Adam divides each coordinate's gradient by its own RMS, so a coordinate 100 times stiffer
    follows exactly the same path; F4 multiplies each coordinate by (1 - a_i alpha_t) per step, so
    the stiff one overshoots and the flat one crawls at gradient descent's rate."""
    F4, adam = F4_as_written(300, 0.01), real_adam(300, 0.01)
    np.testing.assert_allclose(adam[:, 0], adam[:, 1], rtol=1e-5, atol=1e-7)  # curvature invisible
    assert np.abs(adam[-1]).max() < 1e-3  # both coordinates home after 300 steps
    alpha_t = 0.01 / (1 - 0.9 ** np.arange(1, 301))
    np.testing.assert_allclose(F4[1:, 1], np.cumprod(1 - alpha_t), rtol=1e-10)  # the flat one
    assert F4[-1, 1] > 0.03  # ...still 30 times further out than Adam's
    assert np.abs(F4[:, 0]).max() > 50  # the stiff one first thrown out to |theta_1| > 50
