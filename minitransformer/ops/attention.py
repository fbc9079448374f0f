"""Scaled dot-product attention, fused into one node with a hand-derived backward."""

from __future__ import annotations

import math

import numpy as np  # shape arithmetic only

from ..autograd import Function
from ..backend import array_module, device_of
from ..tensor import describe
from .dropout import keep_mask
from .validate import check_float


def _swap_last(x):
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
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V   (F14), over (..., T, hs) inputs.

    With S the scaled scores, P = softmax(S) the attention weights and O = P V (derivation in
    lessons/09):
        dV = P^T dO,   dP = dO V^T,   dS = P * (dP - rowsum(dP * P)),
        dQ = dS K / sqrt(d_k),   dK = dS^T Q / sqrt(d_k)
    Attention dropout, when on, drops entries of P after the softmax (as PyTorch does).
    """

    def forward(self, q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None):
        # BEGIN SOLUTION a4
        xp = array_module(q)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        # scale q (B, nh, Tq, hs) rather than the scores (B, nh, Tq, Tk): fewer numbers when Tk > hs
        scores = (q * scale) @ _swap_last(k)  # (B, nh, Tq, Tk)
        bias = additive_mask(mask, is_causal, q.shape[-2], k.shape[-2], scores.dtype, xp)
        if bias is not None:
            scores += bias
        # softmax over keys, in place; rows with every key hidden get weight 0, not NaN
        row_max = scores.max(axis=-1, keepdims=True)
        if bias is not None:
            row_max[~xp.isfinite(row_max)] = 0
        scores -= row_max
        weights = xp.exp(scores, out=scores)
        row_sum = weights.sum(axis=-1, keepdims=True)
        if bias is not None:
            row_sum[row_sum == 0] = 1
        weights *= 1 / row_sum  # (B, nh, Tq, Tk), P; one division per row, then products
        dropped, keep = weights, None
        if dropout_p > 0:
            keep = keep_mask(weights.shape, dropout_p, weights.dtype, device_of(weights))
            dropped = weights * keep
        self.scale = scale
        self.save_for_backward(q, k, v, weights, keep)
        return dropped @ v  # (B, nh, Tq, hs)
        # END SOLUTION a4

    def backward(self, grad):
        # BEGIN SOLUTION a4
        q, k, v, weights, keep = self.saved
        dropped = weights if keep is None else weights * keep
        grad_v = _swap_last(dropped) @ grad  # (B, nh, Tk, hs)
        grad_weights = grad @ _swap_last(v)  # (B, nh, Tq, Tk)
        if keep is not None:
            grad_weights *= keep
        # softmax backward, in place: dS = P * (dP - rowsum(dP * P)); the row sums as row-wise
        # dot products (einsum), without a (B, nh, Tq, Tk) temporary for dP * P
        row_dot = array_module(weights).einsum("...ij,...ij->...i", grad_weights, weights)
        grad_weights -= row_dot[..., None]
        grad_weights *= weights
        grad_q = grad_weights @ k  # (B, nh, Tq, hs)
        grad_k = _swap_last(grad_weights) @ q  # (B, nh, Tk, hs)
        grad_q *= self.scale  # the 1/sqrt(d_k), on the (T, hs) results rather than on dS
        grad_k *= self.scale
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
