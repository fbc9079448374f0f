"""Scaled dot-product attention, fused into one node with a hand-derived backward."""

from __future__ import annotations

import math

import numpy as np  # shape arithmetic only

from ..autograd import Function
from ..backend import array_module, device_of, row_sums
from ..parallel import parallel_rows
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
        matrices = scores.reshape(-1, *scores.shape[-2:])  # (B*nh, Tq, Tk), one per batch and head
        if bias is not None and bias.size != bias.shape[-1] * bias.shape[-2]:
            bias = xp.broadcast_to(bias, scores.shape).reshape(matrices.shape)  # one per matrix
        elif bias is not None:
            bias = bias.reshape(bias.shape[-2:])  # (Tq, Tk), the same for every matrix

        def softmax_in_place(rows):  # over keys, for one block of matrices
            block = matrices[rows]
            if bias is not None:
                block += bias if bias.ndim == 2 else bias[rows]
            row_max = block.max(axis=-1, keepdims=True)
            if bias is not None:  # a row with every key hidden gets weight 0, not NaN
                row_max[~xp.isfinite(row_max)] = 0
            block -= row_max
            xp.exp(block, out=block)
            row_sum = row_sums(block)[..., None]
            if bias is not None:
                row_sum[row_sum == 0] = 1
            block *= 1 / row_sum  # one division per row, then products

        parallel_rows(softmax_in_place, matrices.shape[0], matrices[0].size, xp)
        weights = scores  # (B, nh, Tq, Tk), P
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
        xp = array_module(weights)
        dropped = weights if keep is None else weights * keep
        grad_v = _swap_last(dropped) @ grad  # (B, nh, Tk, hs)
        grad_weights = grad @ _swap_last(v)  # (B, nh, Tq, Tk)
        if keep is not None:
            grad_weights *= keep
        matrices = grad_weights.reshape(-1, *grad_weights.shape[-2:])  # (B*nh, Tq, Tk)
        weight_matrices = weights.reshape(matrices.shape)

        def softmax_backward_in_place(rows):
            # dS = P * (dP - rowsum(dP * P)); the row sums as row-wise dot products (einsum),
            # without a temporary for dP * P
            block, p = matrices[rows], weight_matrices[rows]
            row_dot = xp.einsum("bij,bij->bi", block, p)
            block -= row_dot[..., None]
            block *= p

        parallel_rows(softmax_backward_in_place, matrices.shape[0], matrices[0].size, xp)
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
