"""functional.py's regression and binary losses: mse_loss, binary_cross_entropy and
binary_cross_entropy_with_logits — values against their formulas, gradients against finite
differences, reductions, and the errors they raise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays, shapes


def t64(array, requires_grad=False):
    return mt.tensor(np.asarray(array), dtype=np.float64, requires_grad=requires_grad)


REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda values: values}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse_loss_values_and_gradients(reduction, data):
    shape = data.draw(shapes)
    prediction, target = data.draw(arrays(shape)), data.draw(arrays(shape))
    out = F.mse_loss(t64(prediction), t64(target), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), REDUCE[reduction]((prediction - target) ** 2), rtol=1e-12)
    assert mt.gradcheck(lambda p, y: F.mse_loss(p, y, reduction=reduction), [t64(prediction), t64(target)])


def test_mse_loss_gradient_is_two_residuals_over_n():
    prediction = t64([1.0, 2.0, 4.0], requires_grad=True)
    F.mse_loss(prediction, np.array([0.0, 2.0, 1.0])).backward()
    np.testing.assert_allclose(prediction.grad, 2 * np.array([1.0, 0.0, 3.0]) / 3)


def test_mse_loss_errors():
    with pytest.raises(ValueError, match=r"mse_loss: prediction .*\(3,\).* and target .*\(3, 1\).* must have the same shape"):
        F.mse_loss(t64(np.zeros(3)), t64(np.zeros((3, 1))))  # would broadcast to (3, 3) silently
    with pytest.raises(ValueError, match="mse_loss: reduction must be one of"):
        F.mse_loss(t64(np.zeros(3)), t64(np.zeros(3)), reduction="avg")


def bce_formula(p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_binary_cross_entropy_values_and_gradients(reduction, data):
    shape = data.draw(shapes)
    p = data.draw(arrays(shape, 0.02, 0.98))
    y = data.draw(arrays(shape, 0.0, 1.0))
    out = F.binary_cross_entropy(t64(p), t64(y), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), REDUCE[reduction](bce_formula(p, y)), rtol=1e-10)
    assert mt.gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), [t64(p), t64(y)])


def test_binary_cross_entropy_confident_mistakes_cost_a_large_finite_loss():
    loss = F.binary_cross_entropy(t64([0.0, 1.0]), t64([1.0, 0.0]), reduction="none").numpy()
    np.testing.assert_allclose(loss, -np.log(1e-12), rtol=1e-6)
    perfect = F.binary_cross_entropy(t64([0.0, 1.0]), t64([0.0, 1.0]), reduction="none").numpy()
    np.testing.assert_allclose(perfect, 0.0, atol=1e-11)


def test_binary_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: probabilities must lie in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(t64([0.5, 1.5]), t64([0.0, 1.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy: prediction .* must have the same shape"):
        F.binary_cross_entropy(t64([0.5, 0.5]), t64([1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_bce_with_logits_values_and_gradients(reduction, data):
    shape = data.draw(shapes)
    z = data.draw(arrays(shape, -8, 8))
    y = data.draw(arrays(shape, 0.0, 1.0))
    out = F.binary_cross_entropy_with_logits(t64(z), t64(y), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), REDUCE[reduction](bce_formula(1 / (1 + np.exp(-z)), y)), rtol=1e-9, atol=1e-12)
    assert mt.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), [t64(z), t64(y)])


def test_bce_with_logits_is_exact_for_huge_logits_and_at_zero():
    z = t64([-1000.0, 1000.0, 0.0, 0.0], requires_grad=True)
    y = t64([1.0, 0.0, 1.0, 0.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [1000.0, 1000.0, np.log(2), np.log(2)], rtol=1e-12)
    loss.sum().backward()
    np.testing.assert_allclose(z.grad, [-1.0, 1.0, -0.5, 0.5])  # sigmoid(z) - y, 1/2 - y at z = 0
    np.testing.assert_allclose(y.grad, [1000.0, -1000.0, 0.0, 0.0])  # -z


def test_bce_with_logits_errors():
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: prediction .* must have the same shape"):
        F.binary_cross_entropy_with_logits(t64(np.zeros((2, 1))), t64(np.zeros(2)))
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits"):
        F.binary_cross_entropy_with_logits(mt.tensor(np.array([1, 0])), t64([1.0, 0.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.binary_cross_entropy_with_logits(t64([0.0]), t64([1.0]), reduction="mean_all")


def test_losses_keep_float32():
    p = mt.tensor(np.array([0.3, 0.6], dtype=np.float32))
    y = np.array([0.0, 1.0])  # a float64 target must not upcast the loss
    for loss in (F.mse_loss(p, y), F.binary_cross_entropy(p, y), F.binary_cross_entropy_with_logits(p, y)):
        assert loss.dtype == np.float32
