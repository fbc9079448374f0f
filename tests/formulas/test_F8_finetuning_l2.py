"""F8 (001 section 4.1), as the document writes it:

    L_ft = -sum_i ( log P(y_i | M(x_i)) + lambda ||M(x_i)||^2 )

The minus sign in front covers the L2 term too, so minimising L_ft *rewards* large outputs:
-lambda ||M||^2 goes to -infinity as the outputs grow, L_ft has no minimum, and gradient
descent inflates ||M(x)||. The regularised objective the document means is

    L = -sum_i log P(y_i | M(x_i)) + lambda sum_i ||M(x_i)||^2

which shrinks the outputs. M here is a linear head (x -> two logits), P the softmax over them."""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim

LAMBDA = 0.1


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return mt.tensor(x), y


def log_likelihood(outputs, y):
    return -F.cross_entropy(outputs, y, reduction="sum")  # sum_i log P(y_i | M(x_i))


def F8_as_written(outputs, y):
    return -(log_likelihood(outputs, y) + LAMBDA * (outputs * outputs).sum())


def F8_corrected(outputs, y):
    return -log_likelihood(outputs, y) + LAMBDA * (outputs * outputs).sum()


def mean_squared_norm(model, x) -> float:
    out = model(x).numpy()
    return float((out**2).sum(axis=1).mean())


def descend(objective, steps=100):
    mt.manual_seed(0)
    model = nn.Linear(4, 2)
    model.weight.data *= 3  # start with sizeable outputs
    x, y = data()
    start = mean_squared_norm(model, x)
    optimizer = optim.SGD(model.parameters(), lr=0.002)
    norms = []
    for _ in range(steps):
        loss = objective(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        norms.append(mean_squared_norm(model, x))
    return start, np.array(norms), loss.item(), model


def test_F8_as_written_is_unbounded_below_in_the_size_of_the_outputs():
    x, y = data()
    model = nn.Linear(4, 2)
    values = []
    for scale in (1.0, 10.0, 100.0):
        values.append(F8_as_written(model(x) * scale, y).item())
    assert values[0] > values[1] > values[2] and values[2] < -1e3


def test_F8_as_written_gradient_descent_grows_the_outputs():
    start, norms, final_loss, _ = descend(F8_as_written)
    assert np.all(np.diff(norms) > 0)  # every step makes ||M(x)|| larger
    assert norms[-1] > 5 * start
    assert final_loss < 0  # a "loss" pushed ever further below zero


def test_F8_corrected_gradient_descent_shrinks_the_outputs():
    start, norms, _, model = descend(F8_corrected)
    assert norms[-1] < 0.5 * start
    x, y = data()
    accuracy = (model(x).numpy().argmax(axis=1) == y).mean()
    assert accuracy > 0.85  # small outputs, and still the right class


def test_F8_the_two_differ_only_in_the_sign_of_the_l2_term():
    x, y = data()
    outputs = nn.Linear(4, 2)(x)
    difference = F8_corrected(outputs, y).item() - F8_as_written(outputs, y).item()
    np.testing.assert_allclose(difference, 2 * LAMBDA * float((outputs.numpy() ** 2).sum()), rtol=1e-5)
