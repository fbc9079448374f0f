"""Errata, document 003 section 4.1: the linear-regression example fits y = theta x, which is F10
(section 3.2) without its intercept theta_0. On the example's data (y = x) nothing shows; on data
with an offset the model cannot fit, while F10 with theta_0 fits exactly. Taught in
lessons/05_regression.md and lessons/21_the_documents_pipelines.md.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim

X = np.arange(1.0, 6.0)              # the example's x = [1, 2, 3, 4, 5]


def _document_fit(y: np.ndarray, learning_rate: float = 0.01, iterations: int = 1000) -> float:
    """Section 4.1's loop: one parameter, MSE, gradient descent."""
    theta = 0.0
    for _ in range(iterations):
        theta -= learning_rate * 2 / len(X) * np.sum((X * theta - y) * X)
    return theta


def test_errata_missing_intercept_is_invisible_on_the_documents_data():
    theta = _document_fit(X.copy())
    assert abs(theta - 1.0) < 1e-9 and np.mean((X * theta - X) ** 2) < 1e-18


def test_errata_missing_intercept_cannot_fit_an_offset_which_F10_fits_exactly():
    y = X + 2.0
    theta = _document_fit(y)
    np.testing.assert_allclose(theta, np.sum(X * y) / np.sum(X * X), rtol=1e-9)   # 85/55
    assert np.mean((X * theta - y) ** 2) > 0.7                                     # 0.7273

    mt.manual_seed(0)
    line = nn.Linear(1, 1)                                                         # F10
    optimizer = optim.SGD(line.parameters(), lr=0.05)
    inputs, targets = mt.tensor(X.reshape(-1, 1), dtype=np.float64), mt.tensor(y, dtype=np.float64)
    for _ in range(1000):
        loss = F.mse_loss(line(inputs).reshape(-1), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(line.weight.item() - 1.0) < 1e-4 and abs(line.bias.item() - 2.0) < 1e-4
    assert loss.item() < 1e-8
