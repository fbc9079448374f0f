"""Scaled dot-product attention, fused into one node with a hand-derived backward."""

from __future__ import annotations

import math

import numpy as np  # shape arithmetic only

from ..autograd import Function
from ..backend import array_module, device_of
from ..tensor import describe
from .dropout import keep_mask
from .validate import check_float


def swap_last(x):
    """x with its last two axes swapped: K (..., Tk, d) -> K^T (..., d, Tk)."""
    return x.swapaxes(-1, -2)


def additive_mask(mask, is_causal: bool, t_query: int, t_key: int, dtype, xp):
    """One float mask to add to the scores: 0 where attention may look, -inf where it may not.

    Adding -inf before the softmax makes exp(-inf) = 0: a hidden key gets exactly zero weight,
    and the remaining weights still sum to 1.  A boolean ``mask`` is True where attention is
    allowed (PyTorch's convention); a float ``mask`` is added as it is.
    """
    total = None
    if is_causal:  # position t sees keys 0..t (top-left aligned, as in PyTorch)
        allowed = xp.tril(xp.ones((t_query, t_key), dtype=bool))
        total = xp.where(allowed, 0, -xp.inf).astype(dtype)
    if mask is not None:
        extra = xp.where(mask, 0, -xp.inf).astype(dtype) if mask.dtype == bool else mask.astype(dtype)
        total = extra if total is None else total + extra
    return total


class ScaledDotProductAttention(Function):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V   (F14), over (..., T, d) inputs.

    With S the scaled scores, P = softmax(S) the attention weights and O = P V (derivation in
    lessons/09):
        dV = P^T dO,   dP = dO V^T,   dS = P * (dP - rowsum(dP * P)),
        dQ = dS K / sqrt(d_k),   dK = dS^T Q / sqrt(d_k)
    Attention dropout, when on, drops entries of P after the softmax (as PyTorch does).
    A row whose keys are all hidden gets weight 0 everywhere (an output of 0), not NaN.
    Fast version: fast/cpu/attention.py (no T x T matrix kept between forward and backward).
    """

    def forward(self, q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None):
        # BEGIN SOLUTION a4
        xp = array_module(q)
        self.scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        scores = (q @ swap_last(k)) * self.scale  # S = Q K^T / sqrt(d_k), (..., Tq, Tk)
        bias = additive_mask(mask, is_causal, q.shape[-2], k.shape[-2], q.dtype, xp)
        if bias is not None:
            scores = scores + bias  # -inf where a key is hidden
        row_max = scores.max(axis=-1, keepdims=True)
        row_max[~xp.isfinite(row_max)] = 0  # a row of all -inf: exp(-inf - 0) = 0, not NaN
        weights = xp.exp(scores - row_max)
        row_sum = weights.sum(axis=-1, keepdims=True)
        row_sum[row_sum == 0] = 1
        weights /= row_sum  # P = softmax(S) over the keys
        keep = None
        if dropout_p > 0:
            keep = keep_mask(scores.shape, dropout_p, q.dtype, device_of(q))
        self.save_for_backward(q, k, v, weights, keep)
        return (weights if keep is None else weights * keep) @ v  # O = P V, (..., Tq, d_v)
        # END SOLUTION a4

    def backward(self, grad):
        # BEGIN SOLUTION a4
        q, k, v, weights, keep = self.saved
        dropped = weights if keep is None else weights * keep
        grad_v = swap_last(dropped) @ grad  # dV = P^T dO
        grad_weights = grad @ swap_last(v)  # dP = dO V^T
        if keep is not None:
            grad_weights = grad_weights * keep
        row_dot = (grad_weights * weights).sum(axis=-1, keepdims=True)
        grad_scores = weights * (grad_weights - row_dot)  # dS = P * (dP - rowsum(dP * P))
        grad_q = (grad_scores @ k) * self.scale  # dQ = dS K / sqrt(d_k)
        grad_k = (swap_last(grad_scores) @ q) * self.scale  # dK = dS^T Q / sqrt(d_k)
        return grad_q, grad_k, grad_v
        # END SOLUTION a4


def check_attention_inputs(q, k, v, mask) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_float("scaled_dot_product_attention", name, x)
    if not (q.ndim == k.ndim == v.ndim >= 2):
        raise ValueError(
            f"scaled_dot_product_attention: q, k, v must have the same rank >= 2, got "
            f"{describe(q)}, {describe(k)}, {describe(v)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(
            f"scaled_dot_product_attention: shapes q {q.shape}, k {k.shape}, v {v.shape} don't fit; "
            "expected q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) with equal leading dims"
        )
    if mask is not None:
        scores_shape = q.shape[:-1] + (k.shape[-2],)
        try:
            fits = np.broadcast_shapes(mask.shape, scores_shape) == scores_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"scaled_dot_product_attention: mask {describe(mask)} doesn't broadcast to the "
                f"scores' shape {scores_shape} (..., Tq, Tk)"
            )
