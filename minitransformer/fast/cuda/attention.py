"""Scaled dot-product attention on a GPU, flash-style: the forward kernel
(kernels.flash_attention_forward) walks the keys in shared-memory tiles with an online softmax
and keeps, per query row, only the output and its log-sum-exp L; no T x T matrix exists
between forward and backward. Backward computes P = exp(S - L) again, in chunks of queries,
with CuPy's matrix products:

    D = rowsum(dO * O)  (= rowsum(dP * P)),   dV = P^T dO,   dP = dO V^T,
    dS = P * (dP - D),   dQ = dS K scale,   dK = dS^T Q scale

The reference is ops/attention.py. This handles float32, no mask or the causal one, no dropout,
heads of up to 64 (kernels.FLASH_MAX_D) with d_v = d_k; other calls run the reference. Off
unless MINITRANSFORMER_CUDA_KERNELS=1 (see __init__.py).
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels, kernels_enabled
from ...backend import array_module
from ...dispatch import register
from ...ops.attention import ScaledDotProductAttention

CHUNK_SCORES = 1 << 24  # scores per chunk in backward (64 MiB of float32)


def flash_case(q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None) -> bool:
    return (mask is None and dropout_p == 0 and q.ndim >= 2 and 0 < q.shape[-1] <= kernels.FLASH_MAX_D
            and v.shape[-1] == q.shape[-1] and q.shape[-2] > 0 and k.shape[-2] > 0)


def as_heads(x):
    """(..., T, d) -> a contiguous (BH, T, d): every leading axis is one batch of heads."""
    return array_module(x).ascontiguousarray(x.reshape(-1, *x.shape[-2:]))


@register(ScaledDotProductAttention, "cuda.attention", device="cuda", when=flash_case,
          available=kernels_enabled)
class CudaFlashAttention(ScaledDotProductAttention):
    def forward(self, q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None):
        xp = array_module(q)
        self.scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        self.is_causal, self.shape = bool(is_causal), q.shape
        heads = [as_heads(x) for x in (q, k, v)]  # (BH, Tq, d), (BH, Tk, d), (BH, Tk, d)
        n_heads, t_query, d = heads[0].shape
        t_key = heads[1].shape[1]
        out = xp.empty_like(heads[0])  # (BH, Tq, d)
        logsumexp = xp.empty((n_heads, t_query), dtype=q.dtype)  # (BH, Tq)
        grid = ((t_query + kernels.FLASH_QUERIES - 1) // kernels.FLASH_QUERIES, n_heads)
        kernels.row_kernel("flash_attention_forward")(
            grid, (kernels.FLASH_QUERIES,),
            (*heads, out, logsumexp, np.int32(t_query), np.int32(t_key), np.int32(d),
             np.float32(self.scale), np.int32(self.is_causal)))
        self.save_for_backward(*heads, out, logsumexp)
        return out.reshape(q.shape[:-1] + v.shape[-1:])

    def backward(self, grad):
        q, k, v, out, logsumexp = self.saved  # (BH, T, d) each but L (BH, Tq)
        xp = array_module(q)
        scale = q.dtype.type(self.scale)
        grad_out = xp.ascontiguousarray(grad.reshape(out.shape), dtype=q.dtype)  # dO (BH, Tq, d)
        row_dot = (grad_out * out).sum(axis=-1)  # D (BH, Tq)
        grad_q = xp.empty_like(q)
        grad_k, grad_v = xp.zeros_like(k), xp.zeros_like(v)
        n_heads, t_query, _ = q.shape
        t_key = k.shape[1]
        chunk = max(1, CHUNK_SCORES // max(1, n_heads * t_key))
        for start in range(0, t_query, chunk):
            rows = slice(start, min(start + chunk, t_query))
            scores = (q[:, rows] @ k.swapaxes(1, 2)) * scale  # S (BH, c, Tk)
            if self.is_causal:  # key j hidden from query i when j > i
                query_index = xp.arange(rows.start, rows.stop)[:, None]
                scores = xp.where(xp.arange(t_key)[None, :] > query_index, q.dtype.type(-np.inf), scores)
            weights = xp.exp(scores - logsumexp[:, rows, None])  # P = exp(S - L)
            grad_v += weights.swapaxes(1, 2) @ grad_out[:, rows]  # dV = P^T dO
            grad_weights = grad_out[:, rows] @ v.swapaxes(1, 2)  # dP = dO V^T
            grad_scores = weights * (grad_weights - row_dot[:, rows, None])  # dS = P (dP - D)
            grad_q[:, rows] = (grad_scores @ k) * scale  # dQ = dS K scale
            grad_k += (grad_scores.swapaxes(1, 2) @ q[:, rows]) * scale  # dK = dS^T Q scale
        return (grad_q.reshape(self.shape), grad_k.reshape(self.shape[:-2] + k.shape[1:]),
                grad_v.reshape(self.shape[:-2] + v.shape[1:]))
