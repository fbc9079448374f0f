"""F2 (000_ec86085335eb1a19.txt, section 4.1): CE = -sum_i y_i log(y_hat_i), and the worked
example of section 4.3, which gets the sign wrong and leaves out half of binary cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays

# section 4.3: labels y, predicted probabilities y_hat (features x = [1, 2, 3, 4, 5] play no part)
Y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
Y_HAT = np.array([0.1, 0.2, 0.3, 0.2, 0.1])


def cross_entropy_formula(y, y_hat):
    return -np.sum(y * np.log(y_hat))


@given(data=st.data())
def test_F2_cross_entropy_with_one_hot_labels_equals_formula(data):
    n, num_classes = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 5))
    logits = data.draw(arrays((n, num_classes), -5, 5))
    targets = np.array(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)))
    y = np.eye(num_classes)[targets]  # one-hot labels
    y_hat = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = F.cross_entropy(mt.tensor(logits, dtype=np.float64), targets, reduction="sum")
    np.testing.assert_allclose(loss.item(), cross_entropy_formula(y, y_hat), rtol=1e-10)


def test_F2_worked_example_log_values():
    # The document writes the three terms as 2.3026, 1.2041, 2.3026: these are -log(y_hat),
    # not log(y_hat) (log 0.1 = -2.3026 < 0), and -log 0.3 = 1.20397, which rounds to 1.2040.
    assert round(-np.log(0.1), 4) == 2.3026
    assert round(np.log(0.1), 4) == -2.3026
    assert round(-np.log(0.3), 4) == 1.2040  # errata: the document has 1.2041
    assert round(2.3026 + 1.2041 + 2.3026, 4) == 5.8093  # the document's sum of its rounded terms


def test_F2_worked_example_sign_is_positive():
    # 000 section 4.3 evaluates F2 to -[2.3026 + 1.2041 + 2.3026] = -5.8093. Errata: F2 is a sum
    # of -y log(y_hat) >= 0 terms (y_hat <= 1), so it is +5.8091 (+5.8093 from the rounded terms);
    # a negative cross-entropy is impossible, and "smaller is better" holds for the positive value.
    documented = -5.8093
    correct = cross_entropy_formula(Y, Y_HAT)
    assert correct > 0 and documented < 0
    assert correct == pytest.approx(5.80914, abs=1e-5)
    # the framework agrees: cross-entropy with the three y = 1 rows as class 1 of two classes
    probabilities = np.stack([1 - Y_HAT, Y_HAT], axis=1)[Y == 1]
    logits = mt.tensor(np.log(probabilities), dtype=np.float64)
    loss = F.cross_entropy(logits, np.ones(3, dtype=np.int64), reduction="sum")
    assert loss.item() == pytest.approx(correct, rel=1e-12)


@pytest.mark.parametrize("reduction, expected", [("sum", 6.255430), ("mean", 1.251086)])
def test_F2_worked_example_binary_labels_need_both_terms(reduction, expected):
    # With binary labels the loss is binary cross-entropy, -sum [y log y_hat + (1 - y) log(1 - y_hat)];
    # F2 as the document applies it drops the (1 - y) log(1 - y_hat) terms of the two y = 0 rows,
    # so a model could predict y_hat = 1 for them at no cost. Errata for 000 section 4.3.
    full = -(Y * np.log(Y_HAT) + (1 - Y) * np.log(1 - Y_HAT))
    full = full.sum() if reduction == "sum" else full.mean()
    loss = F.binary_cross_entropy(mt.tensor(Y_HAT, dtype=np.float64), mt.tensor(Y, dtype=np.float64),
                                  reduction=reduction)
    assert loss.item() == pytest.approx(full, rel=1e-12)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    only_positive_terms = cross_entropy_formula(Y, Y_HAT)  # what F2 gives: 5.8091
    missing = -2 * np.log(0.8)  # the two y = 0 terms
    assert only_positive_terms + missing == pytest.approx(6.255430, abs=1e-6)
