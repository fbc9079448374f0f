"""F15 (004_19ec92343e3115c2.txt, section 4.1): x_i = embedding(w_i): token id w_i's vector is
row w_i of the embedding table E, i.e. onehot(w_i) E."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


def embedding_formula(ids, table):
    """x_i = onehot(w_i) E for each id w_i."""
    onehot = np.eye(table.shape[0])[ids]  # (T, V)
    return onehot @ table


@given(data=st.data())
def test_F15_embedding_equals_formula(data):
    vocab, dim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    table = data.draw(arrays((vocab, dim)))
    ids = np.array(data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=8)))
    weight = mt.tensor(table, dtype=np.float64, requires_grad=True)
    x = F.embedding(ids, weight)
    np.testing.assert_allclose(x.numpy(), embedding_formula(ids, table), rtol=1e-12, atol=1e-15)
    upstream = data.draw(arrays((len(ids), dim)))
    (x * mt.tensor(upstream, dtype=np.float64)).sum().backward()
    # d(onehot E)/dE: onehot^T upstream, so a repeated id collects every one of its gradients
    np.testing.assert_allclose(weight.grad, np.eye(vocab)[ids].T @ upstream, rtol=1e-12, atol=1e-15)
