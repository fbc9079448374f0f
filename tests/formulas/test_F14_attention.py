"""F14 (003_006dd6ae076e38fd.txt section 3.2; 004_19ec92343e3115c2.txt sections 4.1, 4.2):
Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, d_k the key dimension."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


@pytest.mark.hidden  # a reference implementation: graded, never released
def attention_formula(Q, K, V):
    d_k = K.shape[-1]
    scores = Q @ K.T / np.sqrt(d_k)
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)  # softmax over each row
    return weights @ V


@pytest.mark.hidden
@given(data=st.data())
def test_F14_attention_equals_formula(data):
    t_query, t_key = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    d_k, d_v = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    Q, K = data.draw(arrays((t_query, d_k))), data.draw(arrays((t_key, d_k)))
    V = data.draw(arrays((t_key, d_v)))
    out = F.scaled_dot_product_attention(*(mt.tensor(a, dtype=np.float64) for a in (Q, K, V)))
    np.testing.assert_allclose(out.numpy(), attention_formula(Q, K, V), rtol=1e-10, atol=1e-12)


def test_F14_attention_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    Q, K, V = (mt.tensor(rng.standard_normal((3, 2)), dtype=np.float64) for _ in range(3))
    assert mt.gradcheck(F.scaled_dot_product_attention, [Q, K, V])


@pytest.mark.hidden
def test_F14_attention_batched_heads_equal_formula_per_head():
    rng = np.random.default_rng(1)
    Q, K, V = (rng.standard_normal((2, 3, 4, 5)) for _ in range(3))  # (B, nh, T, hs)
    out = F.scaled_dot_product_attention(*(mt.tensor(a, dtype=np.float64) for a in (Q, K, V))).numpy()
    for b in range(2):
        for h in range(3):
            np.testing.assert_allclose(out[b, h], attention_formula(Q[b, h], K[b, h], V[b, h]), rtol=1e-10)
