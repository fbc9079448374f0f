"""F2 (000 section 4.1): CE = -sum_i y_i log(y_hat_i) for one example over C classes, with
y one-hot and y_hat = softmax(logits): F.cross_entropy on (N, C) logits is its mean over the N
rows (the document's worked binary example is in test_F2_cross_entropy.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


def literal_F2(logits, targets):
    """Row by row: y one-hot, y_hat = softmax, CE = -sum_i y_i log y_hat_i."""
    losses = []
    for row, target in zip(logits, targets):
        y_hat = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        y = np.eye(len(row))[target]
        losses.append(-sum(y[i] * np.log(y_hat[i]) for i in range(len(row))))
    return np.array(losses)


@st.composite
def classification(draw):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    return draw(arrays((n, c), -10, 10)), np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))


@given(case=classification())
def test_F2_cross_entropy_classes_mean_sum_and_none(case):
    logits, targets = case
    literal = literal_F2(logits, targets)
    z = mt.tensor(logits, dtype=np.float64)
    np.testing.assert_allclose(F.cross_entropy(z, targets).item(), literal.mean(), rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(z, targets, reduction="sum").item(), literal.sum(), rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(z, targets, reduction="none").numpy(), literal, rtol=1e-10, atol=1e-12)
    assert mt.gradcheck(lambda x: F.cross_entropy(x, targets), [z])


@given(case=classification())
def test_F2_cross_entropy_classes_gradient_is_softmax_minus_one_hot_over_n(case):
    logits, targets = case
    z = mt.tensor(logits, dtype=np.float64, requires_grad=True)
    F.cross_entropy(z, targets).backward()
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(z.grad, (softmax - np.eye(logits.shape[1])[targets]) / len(targets), rtol=1e-9, atol=1e-12)


def test_F2_cross_entropy_classes_ignored_rows_and_sequences():
    rng = np.random.default_rng(0)
    logits, targets = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    z = mt.tensor(logits, dtype=np.float64)
    flat = F.cross_entropy(mt.tensor(logits.reshape(6, 5), dtype=np.float64), targets.reshape(6)).item()
    assert F.cross_entropy(z, targets).item() == pytest.approx(flat, rel=1e-12)  # (B, T, C) = (B*T, C)
    targets[0, 0] = -100  # ignored: the mean runs over the 5 rows left
    literal = literal_F2(logits.reshape(6, 5)[1:], targets.reshape(6)[1:])
    assert F.cross_entropy(z, targets).item() == pytest.approx(literal.mean(), rel=1e-12)
    assert F.cross_entropy(z, np.full((2, 3), -100)).item() == 0.0  # nothing counted: 0, not NaN


def test_F2_cross_entropy_classes_is_stable_for_huge_logits():
    z = mt.tensor(np.array([[1000.0, 0.0, -1000.0]]), dtype=np.float64)
    np.testing.assert_allclose(F.cross_entropy(z, np.array([1])).item(), 1000.0, rtol=1e-12)
    with pytest.raises(ValueError, match="cross_entropy"):
        F.cross_entropy(z, np.array([3]))
