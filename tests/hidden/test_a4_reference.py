"""Assignment a4 against reference implementations (instructor-only: never in a student copy).

Each of a4's three functions is checked on its own: ``ScaledDotProductAttention.forward``
against NumPy attention, its ``backward`` against finite differences of that NumPy attention
(not of the student's forward), and ``CausalSelfAttention.forward`` against a NumPy multi-head
attention with the student's attention op replaced by the reference one, so the head split and
merge (reshape *and* transpose) are graded apart from the attention itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax as np_softmax

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.nn import gpt
from minitransformer.ops.attention import ScaledDotProductAttention
from tests.helpers import numeric_vjp


def reference_attention(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(Q K^T / sqrt(d_k) + M) V in NumPy (F14)."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if is_causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    return np_softmax(scores, axis=-1) @ v


def qkv(seed, batch=(2, 3), t_query=4, t_key=4, d_k=3, d_v=2):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=batch + (t_query, d_k)), rng.normal(size=batch + (t_key, d_k)),
            rng.normal(size=batch + (t_key, d_v)))


MASKS = ["none", "causal", "boolean", "float"]


def mask_case(name, t_query, t_key, seed):
    rng = np.random.default_rng(seed)
    if name == "boolean":
        mask = rng.random((t_query, t_key)) > 0.4
        mask[:, 0] = True  # every query sees a key
        return dict(mask=mask)
    if name == "float":
        return dict(mask=rng.uniform(-2, 2, size=(t_query, t_key)))
    return dict(is_causal=name == "causal")


@pytest.mark.parametrize("masking", MASKS)
@pytest.mark.parametrize("seed", range(2))
def test_attention_forward_matches_numpy(masking, seed):
    q, k, v = qkv(seed, t_key=4 if masking == "causal" else 4 + seed)
    options = mask_case(masking, q.shape[-2], k.shape[-2], seed)
    out = F.scaled_dot_product_attention(*(mt.tensor(a, dtype=np.float64) for a in (q, k, v)), **options)
    np.testing.assert_allclose(out.numpy(), reference_attention(q, k, v, **options), rtol=1e-9, atol=1e-12,
                               err_msg=f"attention with mask {masking!r} differs from softmax(QK^T/sqrt(d_k) + M) V")


def test_attention_forward_scale_argument():
    q, k, v = qkv(5)
    out = F.scaled_dot_product_attention(*(mt.tensor(a, dtype=np.float64) for a in (q, k, v)), scale=0.7)
    np.testing.assert_allclose(out.numpy(), reference_attention(q, k, v, scale=0.7), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("masking", MASKS)
def test_attention_backward_matches_finite_differences_of_the_reference(masking):
    q, k, v = qkv(3, batch=(2,), t_query=3, t_key=3)
    options = mask_case(masking, 3, 3, 3)
    tensors = [mt.tensor(a, requires_grad=True, dtype=np.float64) for a in (q, k, v)]
    out = ScaledDotProductAttention.apply(*tensors, mask=options.get("mask"), is_causal=options.get("is_causal", False))
    grad_out = np.random.default_rng(4).normal(size=out.shape)
    grads = out._ctx.backward(grad_out.copy())
    for index, name in enumerate("qkv"):
        expected = numeric_vjp(lambda *xs: reference_attention(*xs, **options), [q, k, v], index, grad_out)
        np.testing.assert_allclose(np.asarray(grads[index]), expected, rtol=1e-5, atol=1e-7,
                                   err_msg=f"ScaledDotProductAttention.backward: dL/d{name} with mask {masking!r}")


def multi_head_reference(x, attention, n_head):
    """CausalSelfAttention in NumPy: project, split into heads, attend, merge, project."""
    B, T, C = x.shape
    hs = C // n_head
    qkv_ = x @ attention.c_attn.weight.numpy().T + attention.c_attn.bias.numpy()
    q, k, v = np.split(qkv_, 3, axis=2)

    def heads(a):  # (B, T, C) -> (B, nh, T, hs)
        return a.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)

    y = reference_attention(heads(q), heads(k), heads(v), is_causal=True)
    y = y.transpose(0, 2, 1, 3).reshape(B, T, C)
    return y @ attention.c_proj.weight.numpy().T + attention.c_proj.bias.numpy()


@pytest.mark.parametrize("n_head, T", [(2, 5), (4, 3), (1, 4)])
def test_causal_self_attention_splits_and_merges_heads_like_the_reference(monkeypatch, n_head, T):
    def reference_op(q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None):
        return mt.tensor(reference_attention(q.numpy(), k.numpy(), v.numpy(), mask, is_causal), dtype=np.float64)

    monkeypatch.setattr(gpt.F, "scaled_dot_product_attention", reference_op)  # a4's op graded apart
    mt.manual_seed(0)
    config = gpt.GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=n_head, n_embd=8)
    attention = gpt.CausalSelfAttention(config)
    attention.eval()
    x = np.random.default_rng(T).normal(size=(2, T, 8))
    out = attention(mt.tensor(x, dtype=np.float64))
    np.testing.assert_allclose(np.asarray(out.numpy(), dtype=np.float64), multi_head_reference(x, attention, n_head),
                               rtol=1e-4, atol=1e-5, err_msg="CausalSelfAttention.forward: heads split or merged "
                                                             "differently from (B, T, C) -> (B, nh, T, hs) and back")
