"""ops/attention.py: scaled dot-product attention (causal, boolean mask, float mask,
dropout_p) against NumPy and finite differences, and what F14 promises: weights sum to 1 over
keys, no mask means permutation equivariance, the causal mask hides the future, one key
returns V."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import softmax as np_softmax

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, check_op, host, tensor
from tests.strategies import arrays


@pytest.mark.hidden  # a reference implementation: graded, never released
def reference_attention(q, k, v, mask=None, is_causal=False):
    """softmax(Q K^T / sqrt(d_k) + M) V in NumPy."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if is_causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    return np_softmax(scores, axis=-1) @ v


@st.composite
def qkv(draw, max_t: int = 4):
    batch = draw(st.sampled_from([(), (2,), (1, 2)]))
    t_query, t_key = draw(st.integers(1, max_t)), draw(st.integers(1, max_t))
    d_k, d_v = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (draw(arrays(batch + (t_query, d_k))), draw(arrays(batch + (t_key, d_k))),
            draw(arrays(batch + (t_key, d_v))))


@pytest.mark.hidden
@given(inputs=qkv(), is_causal=st.booleans())
def test_attention_matches_numpy(xp, inputs, is_causal):
    check_op(xp, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=is_causal),
             lambda q, k, v: reference_attention(q, k, v, is_causal=is_causal), *inputs)


@pytest.mark.hidden
@given(inputs=qkv(), data=st.data())
def test_attention_with_boolean_mask(xp, inputs, data):
    q, k, v = inputs
    mask = data.draw(arrays(q.shape[-2:-1] + k.shape[-2:-1])) > -1
    mask[:, 0] = True  # every query sees at least one key
    mask_on_device = xp.asarray(mask)
    check_op(xp, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask_on_device),
             lambda q, k, v: reference_attention(q, k, v, mask=mask), *inputs)


@pytest.mark.hidden
@given(inputs=qkv(), data=st.data(), is_causal=st.booleans())
def test_attention_with_float_mask(xp, inputs, data, is_causal):
    q, k, v = inputs
    mask = data.draw(arrays(q.shape[:-1] + k.shape[-2:-1], -2, 2))
    mask_on_device = xp.asarray(mask)
    check_op(xp, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask_on_device, is_causal=is_causal),
             lambda q, k, v: reference_attention(q, k, v, mask=mask, is_causal=is_causal), *inputs)


@given(inputs=qkv(), data=st.data())
def test_masked_keys_get_no_weight_and_a_float_mask_of_minus_inf_is_the_same(xp, inputs, data):
    q, k, _ = inputs
    t_query, t_key = q.shape[-2], k.shape[-2]
    mask = data.draw(arrays((t_query, t_key))) > 0
    mask[:, 0] = True  # every query sees at least one key
    identity = np.broadcast_to(np.eye(t_key), k.shape[:-2] + (t_key, t_key))  # V = I: out = weights
    weights = host(F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, identity),
                                                  mask=xp.asarray(mask)))
    assert np.all(weights[..., ~mask] == 0), "a key the boolean mask hides got attention weight"
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    as_float = xp.asarray(np.where(mask, 0.0, -np.inf))
    assert_close(F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, identity), mask=as_float),
                 weights, rtol=1e-12, atol=1e-15)


def test_fully_masked_row_gives_zeros_not_nan(xp):
    rng = np.random.default_rng(0)
    q, k, v = (tensor(xp, rng.standard_normal((3, 2)), requires_grad=True) for _ in range(3))
    mask = xp.asarray([[True, True, True], [False, False, False], [True, False, False]])
    out = F.scaled_dot_product_attention(q, k, v, mask=mask)
    out.sum().backward()
    assert_close(out[1], np.zeros(2))
    assert all(np.all(np.isfinite(host(t.grad))) for t in (q, k, v))


@given(inputs=qkv(max_t=5), is_causal=st.booleans())
def test_attention_weights_sum_to_one_over_keys(xp, inputs, is_causal):
    q, k, _ = inputs
    t_key = k.shape[-2]
    identity = np.broadcast_to(np.eye(t_key), k.shape[:-2] + (t_key, t_key))
    # with V = I the output rows are the attention weights themselves
    weights = host(F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, identity),
                                                  is_causal=is_causal))
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    if is_causal:  # query t puts no weight on keys after t
        future = np.triu(np.ones(weights.shape[-2:], dtype=bool), k=1)
        assert np.all(weights[..., future] == 0)


@given(inputs=qkv(max_t=5), data=st.data())
def test_attention_without_mask_is_permutation_equivariant(xp, inputs, data):
    q, k, v = inputs
    t = min(q.shape[-2], k.shape[-2])
    q, k, v = q[..., :t, :], k[..., :t, :], v[..., :t, :]  # self-attention: one length
    order = np.array(data.draw(st.permutations(range(t))))
    out = host(F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, v)))
    permuted = F.scaled_dot_product_attention(tensor(xp, q[..., order, :]), tensor(xp, k[..., order, :]),
                                              tensor(xp, v[..., order, :]))
    assert_close(permuted, out[..., order, :], rtol=1e-10, atol=1e-12)


@given(inputs=qkv(max_t=5), data=st.data())
def test_causal_output_ignores_the_future(xp, inputs, data):
    q, k, v = inputs
    t = min(q.shape[-2], k.shape[-2])
    q, k, v = q[..., :t, :], k[..., :t, :], v[..., :t, :]
    position = data.draw(st.integers(0, t - 1))
    changed = [a.copy() for a in (q, k, v)]
    for a in changed:
        a[..., position + 1:, :] += data.draw(arrays(a[..., position + 1:, :].shape, 1, 5))
    before = host(F.scaled_dot_product_attention(*(tensor(xp, a) for a in (q, k, v)), is_causal=True))
    after = host(F.scaled_dot_product_attention(*(tensor(xp, a) for a in changed), is_causal=True))
    np.testing.assert_allclose(after[..., :position + 1, :], before[..., :position + 1, :], rtol=1e-12)


@given(inputs=qkv())
def test_one_key_returns_v(xp, inputs):
    q, k, v = inputs
    k, v = k[..., :1, :], v[..., :1, :]
    out = F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, v))
    assert_close(out, np.broadcast_to(v, q.shape[:-1] + v.shape[-1:]), rtol=1e-12)


@pytest.mark.hidden
def test_attention_dropout_drops_and_rescales_weights(xp):
    rng = np.random.default_rng(0)
    t, p = 6, 0.5
    q, k = rng.standard_normal((2, t, 3)), rng.standard_normal((2, t, 3))
    identity = np.broadcast_to(np.eye(t), (2, t, t))
    weights = reference_attention(q, k, identity)
    dropped = host(F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, identity),
                                                  dropout_p=p))
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    assert_close(dropped[kept], weights[kept] / (1 - p), rtol=1e-12)


def test_attention_dropout_reproducible_and_differentiable(xp):
    rng = np.random.default_rng(1)
    q, k, v = (tensor(xp, rng.standard_normal((2, 4, 3))) for _ in range(3))

    def attend(q, k, v):
        mt.manual_seed(7)  # the same dropout mask on every call
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.3)

    assert_close(attend(q, k, v), attend(q, k, v))
    mt.manual_seed(8)
    other = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.3)
    assert not np.allclose(host(other), host(attend(q, k, v)))
    assert mt.gradcheck(attend, [q, k, v])


def test_attention_scale_argument(xp):
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((3, 2)) for _ in range(3))
    out = F.scaled_dot_product_attention(tensor(xp, q), tensor(xp, k), tensor(xp, v), scale=1.0)
    assert_close(out, np_softmax(q @ k.T, axis=-1) @ v)


@pytest.mark.parametrize("dropout_p", [-0.1, 1.0])
def test_attention_rejects_bad_dropout(dropout_p):
    x = mt.randn(2, 3)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: dropout_p must be in \[0, 1\)"):
        F.scaled_dot_product_attention(x, x, x, dropout_p=dropout_p)
