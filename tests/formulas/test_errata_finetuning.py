"""The documents' fine-tuning pipelines and their errata (taught in lessons/13_fine_tuning.md, and
summed up in lessons/21_the_documents_pipelines.md;
F8's sign error is tested in tests/formulas/test_F8_finetuning_l2.py):

- document 001 section 5.2: a training function without loss.backward() and optimizer.step()
  changes no parameter;
- document 004 section 5.2: Adam constructed inside the loop takes its first step every time,
  lr * sign(g) for every parameter; and two training sentences can be fitted with any labels,
  so 100% accuracy on them proves nothing.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim


def _data(n=32, width=8, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) if classes == 2 else rng.integers(0, classes, n)
    return x, y


def _head(width=8, hidden=16, classes=2):
    mt.manual_seed(0)
    return nn.Linear(width, hidden), nn.Linear(hidden, classes)


def test_errata_training_without_backward_changes_nothing():
    """Document 001 section 5.2's loop: zero_grad, forward, loss.item(), no backward, no step."""
    x, y = _data()
    fc, out = _head()
    optimizer = optim.Adam(fc.parameters() + out.parameters(), lr=2e-5)  # never stepped, as there
    before = [p.numpy().copy() for p in fc.parameters() + out.parameters()]
    epoch_losses = []
    for _ in range(3):
        fc.zero_grad()
        out.zero_grad()
        loss = F.cross_entropy(out(F.relu(fc(mt.tensor(x)))), y)
        epoch_losses.append(loss.item())
    assert all(np.array_equal(b, p.numpy()) for b, p in zip(before, fc.parameters() + out.parameters()))
    assert len(set(epoch_losses)) == 1
    assert optimizer.state == {}


def test_errata_adam_rebuilt_every_step_is_sign_descent():
    """Document 004 section 5.2: a fresh Adam at every step moves each parameter by lr * sign(g)."""
    x, y = _data()
    fc, out = _head()
    lr = 1e-3
    for _ in range(3):
        loss = F.cross_entropy(out(F.relu(fc(mt.tensor(x)))), y)
        fc.zero_grad()
        out.zero_grad()
        loss.backward()
        grad = fc.weight.grad.copy()
        before = fc.weight.numpy().copy()
        optim.Adam(fc.parameters() + out.parameters(), lr=lr).step()  # built after backward, as there
        step = fc.weight.numpy() - before
        big = np.abs(grad) > 1e-5  # gradients far above Adam's eps (1e-8)
        np.testing.assert_allclose(step[big], -lr * np.sign(grad[big]), rtol=1e-2)


def test_errata_two_training_examples_fit_any_labels():
    """Document 004 section 5.2/5.4: evaluating on the two training sentences. A head trained on two
    examples reaches 100% on them even with the labels swapped, so that number proves nothing."""
    x, y = _data(n=2, seed=3)
    swapped = np.array([1, 0])
    fc, out = _head()
    optimizer = optim.Adam(fc.parameters() + out.parameters(), lr=1e-2)
    for _ in range(100):
        loss = F.cross_entropy(out(F.relu(fc(mt.tensor(x)))), swapped)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predictions = out(F.relu(fc(mt.tensor(x)))).numpy().argmax(axis=1)
    assert (predictions == swapped).all()
