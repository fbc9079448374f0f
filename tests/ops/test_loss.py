"""ops/loss.py and the losses of functional.py: cross-entropy ((N, C) and (B, T, C),
ignore_index, every reduction), MSE, binary cross-entropy on probabilities and on logits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit
from scipy.special import log_softmax as np_log_softmax
from scipy.special import softmax as np_softmax

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, check_op, host, tensor
from tests.strategies import arrays, large_arrays, shapes

IGNORE = -100


def reference_cross_entropy(logits, targets, ignore_index=IGNORE, reduction="mean"):
    log_p = np_log_softmax(logits, axis=-1)
    counted = targets != ignore_index
    picked = np.take_along_axis(log_p, np.where(counted, targets, 0)[..., None], axis=-1)[..., 0]
    losses = -picked * counted
    if reduction == "none":
        return losses
    return losses.sum() / max(counted.sum(), 1) if reduction == "mean" else losses.sum()


@st.composite
def classification(draw, magnitude=5.0):
    """logits (N, C) or (B, T, C) and integer targets, some of them ignore_index."""
    leading = draw(st.sampled_from([(1,), (4,), (2, 3), (1, 1)]))
    num_classes = draw(st.integers(1, 5))
    logits = draw(arrays(leading + (num_classes,), -magnitude, magnitude))
    targets = draw(hnp.arrays(np.int64, leading, elements=st.sampled_from(list(range(num_classes)) + [IGNORE])))
    return logits, targets


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=classification())
def test_cross_entropy_matches_numpy(xp, reduction, case):
    logits, targets = case
    ids = xp.asarray(targets)
    check_op(xp, lambda z: F.cross_entropy(z, ids, reduction=reduction),
             lambda z: reference_cross_entropy(z, targets, reduction=reduction), logits)


@given(case=classification(magnitude=1e4))
def test_cross_entropy_large_logits_finite_and_exact(xp, case):
    logits, targets = case
    out = F.cross_entropy(tensor(xp, logits), xp.asarray(targets), reduction="none")
    assert np.all(np.isfinite(host(out)))
    assert_close(out, reference_cross_entropy(logits, targets, reduction="none"), rtol=1e-9, atol=1e-9)


@given(case=classification())
def test_cross_entropy_properties(xp, case):
    logits, targets = case
    targets = np.where(targets == IGNORE, 0, targets)  # every row counts
    n = targets.size
    z = tensor(xp, logits, requires_grad=True)
    losses = F.cross_entropy(z, targets, reduction="none")
    # >= 0, and equal to -log softmax at the target
    assert np.all(host(losses) >= 0)
    p = np_softmax(logits, axis=-1)
    assert_close(losses, -np.log(np.take_along_axis(p, targets[..., None], axis=-1)[..., 0]), rtol=1e-9)
    # gradient of the mean: (softmax - onehot) / N
    F.cross_entropy(z, targets).backward()
    onehot = np.eye(logits.shape[-1])[targets]
    assert_close(z.grad, (p - onehot) / n, rtol=1e-9, atol=1e-12)


def test_cross_entropy_ignore_index_rows_have_no_loss_and_no_gradient(xp):
    z = tensor(xp, [[1.0, 2.0, 3.0], [4.0, -1.0, 0.0], [0.5, 0.5, 0.5]], requires_grad=True)
    targets = xp.asarray([2, -100, 0])
    loss = F.cross_entropy(z, targets)
    expected = reference_cross_entropy(host(z), np.array([2, -100, 0]))
    assert_close(loss, expected)  # averaged over the 2 rows that count, not 3
    loss.backward()
    assert_close(z.grad[1], np.zeros(3))
    custom = F.cross_entropy(z, xp.asarray([2, 1, 1]), ignore_index=1, reduction="sum")
    assert_close(custom, reference_cross_entropy(host(z), np.array([2, 1, 1]), ignore_index=1, reduction="sum"))


def test_cross_entropy_all_ignored_is_zero_not_nan(xp):
    z = tensor(xp, np.ones((2, 3)), requires_grad=True)
    loss = F.cross_entropy(z, xp.asarray([IGNORE, IGNORE]))
    loss.backward()
    assert float(loss.item()) == 0.0 and np.all(host(z.grad) == 0)


def test_cross_entropy_float32_stays_float32():
    z = mt.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    loss = F.cross_entropy(z, [0, 1, 3])
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse_loss_matches_numpy(xp, reduction, data):
    shape = data.draw(shapes)
    prediction, target = data.draw(arrays(shape)), data.draw(arrays(shape))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(xp, lambda p, y: F.mse_loss(p, y, reduction=reduction), lambda p, y: reduce((p - y) ** 2),
             prediction, target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_binary_cross_entropy_matches_numpy(xp, reduction, data):
    shape = data.draw(shapes)
    p = data.draw(arrays(shape, 0.02, 0.98))
    y = data.draw(arrays(shape, 0.0, 1.0))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(xp, lambda q, t: F.binary_cross_entropy(q, t, reduction=reduction),
             lambda q, t: reduce(-(t * np.log(q) + (1 - t) * np.log(1 - q))), p, y)


def test_binary_cross_entropy_clips_certain_mistakes(xp):
    loss = F.binary_cross_entropy(tensor(xp, [0.0, 1.0]), tensor(xp, [1.0, 0.0]), reduction="none")
    assert_close(loss, [-np.log(1e-12)] * 2, rtol=1e-6)  # large but finite


def reference_bce_with_logits(z, y):
    return -(y * np.log(expit(z)) + (1 - y) * np.log(1 - expit(z)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_binary_cross_entropy_with_logits_matches_numpy(xp, reduction, data):
    shape = data.draw(shapes)
    z, y = data.draw(arrays(shape, -8, 8)), data.draw(arrays(shape, 0.0, 1.0))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(xp, lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
             lambda a, b: reduce(reference_bce_with_logits(a, b)), z, y, rtol=1e-6)


@given(z=large_arrays(shapes, 1e4), data=st.data())
def test_binary_cross_entropy_with_logits_large_logits(xp, z, data):
    y = (data.draw(arrays(z.shape)) > 0).astype(np.float64)
    logits = tensor(xp, z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, tensor(xp, y), reduction="none")
    expected = np.logaddexp(0, z) - z * y  # log(1 + e^z) - z y, exact for any z
    assert_close(loss, expected, rtol=1e-9, atol=1e-12)
    loss.sum().backward()
    assert_close(logits.grad, expit(z) - y, rtol=1e-9, atol=1e-300)


def test_binary_cross_entropy_with_logits_gradient_at_zero(xp):
    # d/dz = sigmoid(0) - y = 1/2 - y; a composition of relu/abs would give -y here
    z = tensor(xp, [0.0, 0.0, 0.0], requires_grad=True)
    y = tensor(xp, [1.0, 0.0, 0.3], requires_grad=True)
    F.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    assert_close(z.grad, [-0.5, 0.5, 0.2])
    assert_close(y.grad, [0.0, 0.0, 0.0])  # dL/dy = -z
    assert mt.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b), [z, y])


def test_losses_reject_shape_mismatch_and_bad_reduction(xp):
    with pytest.raises(ValueError, match=r"mse_loss: prediction shape \(2,\) float64 and target shape \(3,\)"):
        F.mse_loss(tensor(xp, [1.0, 2.0]), tensor(xp, [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy: probabilities must lie in \\[0, 1\\]"):
        F.binary_cross_entropy(tensor(xp, [1.5]), tensor(xp, [1.0]))
    with pytest.raises(ValueError, match="mse_loss: reduction must be one of"):
        F.mse_loss(tensor(xp, [1.0]), tensor(xp, [1.0]), reduction="avg")
