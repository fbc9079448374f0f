"""ops/embedding.py: the lookup is row ids of the table, and its gradient is the count-weighted
scatter-add (a row picked k times collects k gradients)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, host, tensor
from tests.strategies import arrays


@st.composite
def lookups(draw):
    vocab, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    ids_shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    ids = draw(hnp.arrays(np.int64, ids_shape, elements=st.integers(0, vocab - 1)))
    return draw(arrays((vocab, dim))), ids


@given(case=lookups())
def test_embedding_gathers_rows(xp, case):
    table, ids = case
    out = F.embedding(xp.asarray(ids), tensor(xp, table))
    assert out.shape == ids.shape + (table.shape[1],)
    assert_close(out, table[ids])


@given(case=lookups(), data=st.data())
def test_embedding_gradient_is_count_weighted_scatter(xp, case, data):
    table, ids = case
    upstream = data.draw(arrays(ids.shape + (table.shape[1],)))
    weight = tensor(xp, table, requires_grad=True)
    (F.embedding(mt.tensor(ids), weight) * tensor(xp, upstream)).sum().backward()
    expected = np.zeros_like(table)
    np.add.at(expected, ids, upstream)
    assert_close(weight.grad, expected)
    # with an upstream gradient of ones, row v's gradient is the count of v in ids
    weight.grad = None
    F.embedding(ids, weight).sum().backward()
    counts = np.bincount(ids.ravel(), minlength=table.shape[0])
    assert_close(weight.grad, np.broadcast_to(counts[:, None], table.shape))


@given(case=lookups())
def test_embedding_gradcheck(xp, case):
    table, ids = case
    assert mt.gradcheck(lambda w: F.embedding(ids, w), [tensor(xp, table)])


def test_embedding_accepts_a_list_of_ids():
    weight = mt.tensor(np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(host(F.embedding([2, 2, 0], weight)), [[4, 5], [4, 5], [0, 1]])
