"""optim/sgd.py: SGD (F3) with momentum, Nesterov momentum and weight decay against a NumPy
transcription, and two convex problems it must solve: linear regression (F10) to the least-
squares solution and logistic regression (F11) to a separating line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from tests.strategies import arrays


@pytest.mark.hidden  # a reference implementation: graded, never released
def sgd_reference(theta, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD, written out: b_1 = g_1, b_t = mu b_{t-1} + g_t; step with b_t, or with
    g_t + mu b_t for Nesterov."""
    theta = theta.astype(np.float64).copy()
    buffer = None
    trajectory = []
    for g in grads:
        g = g + weight_decay * theta
        if momentum:
            buffer = g.copy() if buffer is None else momentum * buffer + g
            g = g + momentum * buffer if nesterov else buffer
        theta = theta - lr * g
        trajectory.append(theta.copy())
    return trajectory


@st.composite
def gradient_sequences(draw):
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    steps = draw(st.integers(1, 8))
    return draw(arrays(shape, -5, 5)), [draw(arrays(shape, -5, 5)) for _ in range(steps)]


@given(sequence=gradient_sequences(), lr=st.floats(1e-3, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       weight_decay=st.sampled_from([0.0, 0.1]), nesterov=st.booleans())
@pytest.mark.hidden
def test_matches_the_transcription_step_by_step(sequence, lr, momentum, weight_decay, nesterov):
    nesterov = nesterov and momentum > 0
    theta, grads = sequence
    param = nn.Parameter(theta.copy())
    optimizer = optim.SGD([param], lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    reference = sgd_reference(theta, grads, lr, momentum, weight_decay, nesterov)
    for step, g in enumerate(grads):
        param.grad = g.copy()
        optimizer.step()
        np.testing.assert_allclose(param.numpy(), reference[step], rtol=1e-12, atol=1e-12, err_msg=f"step {step + 1}")


def test_plain_sgd_is_f3():
    param = nn.Parameter(np.array([1.0, 2.0]))
    param.grad = np.array([0.5, -1.0])
    optim.SGD([param], lr=0.1).step()
    np.testing.assert_allclose(param.numpy(), [1.0 - 0.05, 2.0 + 0.1])  # theta - alpha grad


def test_momentum_does_not_alias_the_gradient():
    param = nn.Parameter(np.zeros(2))
    grad = np.array([1.0, 1.0])
    optimizer = optim.SGD([param], lr=1.0, momentum=0.9)
    param.grad = grad
    optimizer.step()
    optimizer.step()  # the buffer is scaled and added to in place: it must not be `grad`
    np.testing.assert_array_equal(grad, [1.0, 1.0])
    np.testing.assert_allclose(param.numpy(), [-(1 + 1.9)] * 2)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="SGD: nesterov momentum needs momentum > 0"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, nesterov=True)


def test_linear_regression_converges_to_least_squares():
    """F10: y = theta_0 + sum_i theta_i x_i, fitted by full-batch gradient descent on MSE (F1)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(64)
    solution, *_ = np.linalg.lstsq(np.c_[np.ones(64), X], y, rcond=None)  # [theta_0, theta_1..3]
    model = nn.Linear(3, 1)
    model.weight.data, model.bias.data = model.weight.data.astype(np.float64), model.bias.data.astype(np.float64)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    inputs, targets = mt.tensor(X, dtype=np.float64), mt.tensor(y[:, None], dtype=np.float64)
    for _ in range(300):
        loss = F.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(model.bias.numpy(), solution[:1], atol=1e-6)
    np.testing.assert_allclose(model.weight.numpy()[0], solution[1:], atol=1e-6)


def test_logistic_regression_separates_linearly_separable_data():
    """F11: P(y=1|x) = sigmoid(theta_0 + theta . x), trained with binary cross-entropy."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 2))
    margin = X @ np.array([1.5, -2.0]) + 0.5
    keep = np.abs(margin) > 0.3  # a gap between the classes
    X, labels = X[keep], (margin[keep] > 0).astype(np.float64)
    model = nn.Linear(2, 1)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    inputs, targets = mt.tensor(X), mt.tensor(labels[:, None])
    for _ in range(300):
        loss = F.binary_cross_entropy_with_logits(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    probabilities = F.sigmoid(model(inputs)).numpy()[:, 0]
    assert ((probabilities > 0.5) == (labels == 1)).all()  # every point on its side
    assert loss.item() < 0.1
