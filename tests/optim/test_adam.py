"""optim/adam.py: Adam and AdamW against a literal NumPy transcription of Kingma & Ba's
Algorithm 1 (and Loshchilov & Hutter's decoupled decay), over random gradient sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn, optim
from tests.strategies import arrays


@pytest.mark.hidden  # a reference implementation: graded, never released
def adam_reference(theta, grads, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False):
    """Algorithm 1 of Kingma & Ba (2015), line by line, in float64; weight decay either added
    to the gradient (L2, Adam) or applied to theta directly (AdamW)."""
    theta = theta.astype(np.float64).copy()
    m = np.zeros_like(theta)  # 1st moment vector
    v = np.zeros_like(theta)  # 2nd moment vector
    trajectory = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta - lr * weight_decay * theta
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g  # biased first moment estimate
        v = beta2 * v + (1 - beta2) * g**2  # biased second raw moment estimate
        m_hat = m / (1 - beta1**t)  # bias-corrected first moment estimate
        v_hat = v / (1 - beta2**t)  # bias-corrected second raw moment estimate
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        trajectory.append(theta.copy())
    return trajectory


def run_optimizer(optimizer_class, theta, grads, **options):
    param = nn.Parameter(theta.astype(np.float64))
    optimizer = optimizer_class([param], **options)
    trajectory = []
    for g in grads:
        param.grad = g.copy()
        optimizer.step()
        trajectory.append(param.numpy().copy())
    return trajectory


hyperparameters = st.fixed_dictionaries(dict(
    lr=st.floats(1e-4, 1e-1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]), weight_decay=st.sampled_from([0.0, 0.01, 0.3]),
))


@st.composite
def gradient_sequences(draw):
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    steps = draw(st.integers(1, 8))
    return draw(arrays(shape, -5, 5)), [draw(arrays(shape, -5, 5)) for _ in range(steps)]


@pytest.mark.hidden
@pytest.mark.parametrize("optimizer_class, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
@given(h=hyperparameters, sequence=gradient_sequences())
def test_matches_algorithm_1_step_by_step(optimizer_class, decoupled, h, sequence):
    theta, grads = sequence
    ours = run_optimizer(optimizer_class, theta, grads, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                         eps=h["eps"], weight_decay=h["weight_decay"])
    reference = adam_reference(theta, grads, h["lr"], h["beta1"], h["beta2"], h["eps"],
                               h["weight_decay"], decoupled)
    for step, (a, b) in enumerate(zip(ours, reference)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {step + 1}")


@pytest.mark.hidden
@pytest.mark.parametrize("optimizer_class, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
def test_parameters_and_gradients_in_any_memory_layout(optimizer_class, decoupled):
    # AdamW updates flat views of each array in place: a transposed (Fortran-ordered) parameter
    # or gradient must still be updated, not a copy of it
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((3, 5))
    grads = [rng.standard_normal((3, 5)) for _ in range(3)]
    param = nn.Parameter(np.asfortranarray(theta))
    optimizer = optimizer_class([param], lr=0.1, weight_decay=0.1)
    for g in grads:
        param.grad = np.asfortranarray(g)
        optimizer.step()
    reference = adam_reference(theta, grads, 0.1, 0.9, 0.999, 1e-8, 0.1, decoupled)[-1]
    np.testing.assert_allclose(param.numpy(), reference, rtol=1e-10)


@given(g=arrays(st.tuples(st.integers(1, 4), st.integers(1, 4)), -100, 100), lr=st.floats(1e-4, 1.0))
def test_first_step_moves_each_parameter_by_lr_times_sign_of_its_gradient(g, lr):
    # m_hat = g and v_hat = g^2 after one step, so the step is lr * g / (|g| + eps)
    g = np.where(np.abs(g) < 1e-3, 1e-3, g)  # |g| >> eps, so eps changes the step by < 1e-5
    theta = np.linspace(-1, 1, g.size).reshape(g.shape)
    (after,) = run_optimizer(optim.Adam, theta, [g], lr=lr)
    np.testing.assert_allclose(after - theta, -lr * np.sign(g), rtol=1e-4, atol=1e-12)


def test_first_step_is_scale_invariant():
    theta = np.array([0.5, -0.5])
    small = run_optimizer(optim.Adam, theta, [np.array([1e-3, -2e-3])], lr=0.1)
    large = run_optimizer(optim.Adam, theta, [np.array([1e3, -2e3])], lr=0.1)
    np.testing.assert_allclose(small, large, rtol=1e-4)


def test_adam_couples_weight_decay_with_the_moments_and_adamw_does_not():
    # zero gradient, only decay: AdamW shrinks theta by exactly (1 - lr wd); Adam's L2 term goes
    # through the normalisation and moves every weight by lr regardless of its size
    theta = np.array([10.0, 0.1])
    (adamw,) = run_optimizer(optim.AdamW, theta, [np.zeros(2)], lr=0.01, weight_decay=0.1)
    (adam,) = run_optimizer(optim.Adam, theta, [np.zeros(2)], lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(adamw, theta * (1 - 0.01 * 0.1), rtol=1e-12)
    np.testing.assert_allclose(adam, theta - 0.01, rtol=1e-6)


def test_adamw_default_weight_decay_and_float32_stays_float32():
    param = nn.Parameter(np.ones(3, dtype=np.float32))
    optimizer = optim.AdamW([param])
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    param.grad = np.ones(3, dtype=np.float32)
    optimizer.step()
    assert param.dtype == np.float32
    assert optimizer.state[id(param)]["exp_avg"].dtype == np.float32


def test_parameters_without_gradient_are_skipped():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    optimizer.step()
    np.testing.assert_array_equal(b.numpy(), np.ones(2))
    assert id(b) not in optimizer.state


def test_does_not_modify_the_gradient_in_place():
    param = nn.Parameter(np.ones(3))
    grad = np.array([1.0, -2.0, 3.0])
    param.grad = grad
    optimizer = optim.Adam([param], lr=0.1, weight_decay=0.5)
    optimizer.step()
    optimizer.step()
    np.testing.assert_array_equal(grad, [1.0, -2.0, 3.0])


@pytest.mark.parametrize("options, message", [
    (dict(betas=(1.0, 0.999)), r"Adam: betas must be in \[0, 1\)"),
    (dict(betas=(0.9, -0.1)), r"Adam: betas must be in \[0, 1\)"),
    (dict(eps=-1.0), "Adam: eps must be >= 0"),
    (dict(lr=-1.0), "Adam: learning rate must be >= 0"),
    (dict(weight_decay=-0.1), "Adam: weight_decay must be >= 0"),
])
def test_rejects_bad_hyperparameters(options, message):
    with pytest.raises(ValueError, match=message):
        optim.Adam([nn.Parameter(np.ones(1))], **options)


def test_minimises_a_quadratic():
    target = np.array([3.0, -1.0, 0.5])
    x = nn.Parameter(np.zeros(3))
    optimizer = optim.Adam([x], lr=0.1)
    for _ in range(300):
        loss = ((x - mt.tensor(target, dtype=np.float64)) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(x.numpy(), target, atol=1e-2)
