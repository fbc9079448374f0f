"""Document 000, sections 5.2 and 5.4: a dense network (Dense(10, ReLU) then Dense(1, sigmoid),
Adam, binary cross-entropy, accuracy) trained 10 epochs with batch 32 on uniform random inputs
(100, 10) and uniform random *targets* (100, 1), evaluated on the training data. The document
states the result `Loss: 0.693147, Accuracy: 0.5`.

Errata: 0.693147 is ln 2, the loss of a model that outputs exactly 0.5 for every input, whatever
the targets; it is neither what the network gives (Adam moves the weights, the outputs are not
all 0.5) nor a lower bound (with soft targets in [0, 1) the minimum of binary cross-entropy is
the mean binary entropy of the targets, about 0.5, not ln 2). Accuracy against continuous
targets compares round(p) with y, which is never equal, so it is 0, not 0.5.
Taught in lessons/06_mlp.md; run beside a pipeline done right in
lessons/21_the_documents_pipelines.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim


def _binary_entropy(y: np.ndarray) -> np.ndarray:
    return -(y * np.log(y) + (1 - y) * np.log(1 - y))


def _document_network(seed: int, epochs: int = 10):
    """The section 5.2 network and data, trained as stated; returns (outputs, targets)."""
    mt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = rng.random((100, 10)).astype(np.float32)
    targets = rng.random((100, 1)).astype(np.float32)
    model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1), nn.Sigmoid())
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = rng.permutation(100)
        for start in range(0, 100, 32):
            batch = order[start:start + 32]
            loss = F.binary_cross_entropy(model(mt.tensor(inputs[batch])), mt.tensor(targets[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with mt.no_grad():
        return model(mt.tensor(inputs)).numpy(), targets


def test_errata_000_ln2_is_the_loss_of_a_constant_one_half():
    """BCE(0.5, y) = -(y + 1 - y) log 0.5 = ln 2 for every target y: the stated loss describes
    a model that outputs 0.5 everywhere."""
    targets = np.random.default_rng(0).random((100, 1))
    half = mt.tensor(np.full((100, 1), 0.5), dtype=np.float64)
    loss = F.binary_cross_entropy(half, mt.tensor(targets, dtype=np.float64)).item()
    assert loss == pytest.approx(math.log(2), abs=1e-12)
    assert f"{loss:.6f}" == "0.693147"


def test_errata_000_soft_target_minimum_is_the_binary_entropy_not_ln2():
    """For a target y in (0, 1), BCE(p, y) is smallest at p = y, where it equals H(y) < ln 2
    (unless y = 0.5); the mean of H over uniform targets is 1/2."""
    targets = np.random.default_rng(0).random((100, 1))
    p = mt.tensor(targets, dtype=np.float64, requires_grad=True)
    loss = F.binary_cross_entropy(p, mt.tensor(targets, dtype=np.float64))
    loss.backward()
    np.testing.assert_allclose(p.grad, 0, atol=1e-12)          # p = y is the minimum
    assert loss.item() == pytest.approx(_binary_entropy(targets).mean(), rel=1e-12)
    assert loss.item() < math.log(2) - 0.1
    grid = np.linspace(1e-4, 1 - 1e-4, 200001)
    assert np.mean(_binary_entropy(grid)) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_errata_000_reproduced_network_does_not_give_the_stated_result(seed):
    outputs, targets = _document_network(seed)
    loss = float(np.mean(-(targets * np.log(outputs) + (1 - targets) * np.log(1 - outputs))))
    assert abs(loss - math.log(2)) > 5e-5            # not 0.693147 to six digits
    assert outputs.std() > 1e-3                      # the outputs are not all 0.5
    # accuracy as a binary-accuracy metric computes it: round(p) == y never holds for soft targets
    assert np.mean(np.round(outputs) == targets) == 0.0
