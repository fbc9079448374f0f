"""Attention in cache-sized blocks of the batch on every core, with compiled softmax kernels
and, for float32, no T x T matrix kept between forward and backward (as flash attention does).

The reference is ``ScaledDotProductAttention`` in ops/attention.py: the same formulas, written
once over the whole batch. What this one saves for backward (P, or only each row's log-sum-exp)
is its own business.
"""

from __future__ import annotations

import math

import numpy as np

from ...dispatch import register
from ...ops.attention import ScaledDotProductAttention, additive_mask, swap_last
from ...ops.dropout import keep_mask
from . import kernels
from .parallel import parallel_rows, row_blocks


def row_sums(x):
    """Sums over the last axis, shape x.shape[:-1], as a matrix-vector product x @ ones.

    NumPy reduces over a short last axis row by row (a GPT's rows are 64 to 1024 numbers);
    BLAS's matrix-vector product runs through the same rows several times faster.
    """
    return x @ np.ones(x.shape[-1], dtype=x.dtype)


CHUNK_SCORES = 1 << 20  # scores per chunk of queries on the compiled path: 4 MiB of float32


def query_chunks(n_batch: int, n_heads: int, t_query: int, t_key: int) -> list[slice]:
    """The queries cut into chunks whose scores, (n_batch, n_heads, chunk, t_key), hold about
    CHUNK_SCORES numbers: each thread holds one chunk of scores at a time (two in backward, P
    and dP) instead of all T x T of its block, and a chunk's scores, softmax and products follow
    each other while it is still in the caches. Sequences up to a few hundred tokens are one
    chunk (smaller chunks measured slower: more, smaller products)."""
    return row_blocks(t_query, n_batch * n_heads * t_key, CHUNK_SCORES)


@register(ScaledDotProductAttention, "cpu.attention", dtypes=(np.float32, np.float64))
class BlockedAttention(ScaledDotProductAttention):
    """The reference's formulas (ops/attention.py), block by block over the batch
    (``parallel_rows``): a block's scores, softmax and products follow each other while its
    (T, T) matrices are still in cache, and the blocks run on several threads at once. With the
    compiled kernels (float32, and no dropout) forward keeps each row's log-sum-exp L instead
    of P, and backward computes P = exp(S - L) again from the scores: one more product, but
    nothing of size T^2 kept between the two. That path also cuts long sequences into chunks of
    queries (``query_chunks``), so that only one chunk's scores exist at a time; dV and dK add
    up over the chunks. Gradients are laid out in memory as their inputs are.
    """

    def forward(self, q, k, v, mask=None, is_causal=False, dropout_p=0.0, scale=None):
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        unbatched = q.ndim == 2  # one (T, hs) matrix each: give it a batch axis of 1
        q, k, v = (x[None] if unbatched else x for x in (q, k, v))  # (B, ..., T, hs)
        scores_shape = q.shape[:-1] + k.shape[-2:-1]  # (B, nh, Tq, Tk)
        out = np.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)  # (B, nh, Tq, hs)
        bias = additive_mask(mask, is_causal, q.shape[-2], k.shape[-2], q.dtype, np)
        # the compiled kernels (kernels.py) take the mask as one (Tq, Tk) matrix for every head
        compiled = kernels.use_compiled(q, k, v) and (bias is None or bias.ndim == 2)
        if compiled and bias is None:
            bias = np.zeros(scores_shape[-2:], dtype=q.dtype)
        mask_matrix = bias
        if bias is not None:  # a view: one (Tq, Tk) matrix, or one per batch element and head
            bias = np.broadcast_to(bias, scores_shape)
        keep = None
        if dropout_p > 0:
            keep = keep_mask(scores_shape, dropout_p, q.dtype, "cpu")
        # P, the weights, is kept for backward, except on the compiled path without dropout:
        # there backward computes it again from each row's log-sum-exp (as flash attention
        # does), and P, which grows with T^2, exists one block at a time
        weights = None if compiled and keep is None else np.empty(scores_shape, dtype=q.dtype)
        logsumexp = np.empty(scores_shape[:-1], dtype=q.dtype) if compiled else None  # (B, nh, Tq)

        def attend_in_chunks(rows):  # the compiled path without dropout: P is not kept
            n_batch, n_heads = rows.stop - rows.start, math.prod(scores_shape[1:-2])
            t_query, t_key = scores_shape[-2:]
            for queries in query_chunks(n_batch, n_heads, t_query, t_key):
                q_chunk = q[rows][..., queries, :]  # (b, nh, chunk, hs)
                scores = (q_chunk * scale) @ swap_last(k[rows])  # (b, nh, chunk, Tk)
                chunk_logsumexp = np.empty(scores.shape[:-1], dtype=q.dtype)  # (b, nh, chunk)
                kernels.softmax_rows(scores.reshape(-1, t_key), mask_matrix[queries],
                                     chunk_logsumexp.reshape(-1))
                logsumexp[rows][..., queries] = chunk_logsumexp
                np.matmul(scores, v[rows], out=out[rows][..., queries, :])

        def attend(rows):  # one block of batch elements, all their heads, while it is in cache
            if weights is None:
                return attend_in_chunks(rows)
            scores = weights[rows]
            # scale q (.., Tq, hs) rather than the scores (.., Tq, Tk): fewer numbers when Tk > hs
            np.matmul(q[rows] * scale, swap_last(k[rows]), out=scores)
            # softmax over keys, in place; a row with every key hidden gets weight 0, not NaN
            if compiled:  # the same, row by row while each row is in cache (kernels.py)
                kernels.softmax_rows(scores.reshape(-1, scores.shape[-1]), mask_matrix,
                                     logsumexp[rows].reshape(-1))
            else:
                if bias is not None:
                    scores += bias[rows]
                row_max = scores.max(axis=-1, keepdims=True)
                if bias is not None:
                    row_max[~np.isfinite(row_max)] = 0
                scores -= row_max
                np.exp(scores, out=scores)
                row_sum = row_sums(scores)[..., None]
                if bias is not None:
                    row_sum[row_sum == 0] = 1
                scores *= 1 / row_sum  # one division per row, then products
            dropped = scores if keep is None else scores * keep[rows]
            np.matmul(dropped, v[rows], out=out[rows])

        parallel_rows(attend, q.shape[0], math.prod(scores_shape[1:]), uses_blas=True)
        self.scale, self.unbatched, self.mask_matrix = scale, unbatched, mask_matrix
        self.save_for_backward(q, k, v, weights, keep, logsumexp)
        return out[0] if unbatched else out

    def backward(self, grad):
        q, k, v, weights, keep, logsumexp = self.saved
        grad = grad[None] if self.unbatched else grad
        compiled = logsumexp is not None  # forward took the compiled path
        # each gradient laid out in memory as its input is (empty_like keeps the strides' order):
        # q, k and v are usually (B, T, nh, hs) arrays seen as (B, nh, T, hs), and a gradient
        # in that layout goes back through the transpose and reshape as a view, not a copy
        grad_q, grad_k, grad_v = (np.empty_like(x) for x in (q, k, v))

        def attend_backward_in_chunks(rows):  # the compiled path without dropout
            n_batch, n_heads = rows.stop - rows.start, math.prod(q.shape[1:-2])
            t_query, t_key = q.shape[-2], k.shape[-2]
            scale = q.dtype.type(self.scale)
            for i, queries in enumerate(query_chunks(n_batch, n_heads, t_query, t_key)):
                q_chunk = q[rows][..., queries, :]  # (b, nh, chunk, hs)
                grad_chunk = grad[rows][..., queries, :]  # dO, (b, nh, chunk, hs)
                # P again: the scores, then exp(scores - logsumexp) (kernels.py)
                p = (q_chunk * scale) @ swap_last(k[rows])  # (b, nh, chunk, Tk)
                chunk_logsumexp = np.ascontiguousarray(logsumexp[rows][..., queries])
                kernels.softmax_from_logsumexp(p.reshape(-1, t_key), self.mask_matrix[queries],
                                               chunk_logsumexp.reshape(-1))
                grad_scores = grad_chunk @ swap_last(v[rows])  # dP = dO V^T, (b, nh, chunk, Tk)
                # dS = P * (dP - rowsum(dP * P)) / sqrt(d_k), in place
                grad_rows = grad_scores.reshape(-1, t_key)
                kernels.softmax_backward_rows(grad_rows, p.reshape(-1, t_key), scale, grad_rows)
                np.matmul(grad_scores, k[rows], out=grad_q[rows][..., queries, :])  # dQ = dS K
                # dV = P^T dO and dK = dS^T Q sum over the chunks of queries
                if i == 0:
                    np.matmul(swap_last(p), grad_chunk, out=grad_v[rows])
                    np.matmul(swap_last(grad_scores), q_chunk, out=grad_k[rows])
                else:
                    grad_v[rows] += swap_last(p) @ grad_chunk
                    grad_k[rows] += swap_last(grad_scores) @ q_chunk

        def attend_backward(rows):
            if weights is None:
                return attend_backward_in_chunks(rows)
            p = weights[rows]
            dropped = p if keep is None else p * keep[rows]
            np.matmul(swap_last(dropped), grad[rows], out=grad_v[rows])  # dV = P^T dO
            grad_scores = grad[rows] @ swap_last(v[rows])  # dP = dO V^T, (.., Tq, Tk)
            if keep is not None:
                grad_scores *= keep[rows]
            # dS = P * (dP - rowsum(dP * P)), in place
            if compiled:  # the same times 1/sqrt(d_k), row by row while in cache (kernels.py)
                grad_rows = grad_scores.reshape(-1, grad_scores.shape[-1])
                kernels.softmax_backward_rows(grad_rows, p.reshape(-1, p.shape[-1]),
                                              p.dtype.type(self.scale), grad_rows)
                np.matmul(grad_scores, k[rows], out=grad_q[rows])  # dQ = dS K / sqrt(d_k)
                np.matmul(swap_last(grad_scores), q[rows], out=grad_k[rows])  # dK = dS^T Q / ..
                return
            row_dot = np.einsum("...ij,...ij->...i", grad_scores, p)  # no temporary for dP * P
            grad_scores -= row_dot[..., None]
            grad_scores *= p
            # the 1/sqrt(d_k), on the (T, hs) results rather than on dS
            np.matmul(grad_scores, k[rows], out=grad_q[rows])  # dQ = dS K
            grad_q[rows] *= self.scale
            np.matmul(swap_last(grad_scores), q[rows], out=grad_k[rows])  # dK = dS^T Q
            grad_k[rows] *= self.scale

        parallel_rows(attend_backward, q.shape[0], math.prod(q.shape[1:-1]) * k.shape[-2],
                      uses_blas=True)
        if self.unbatched:
            return grad_q[0], grad_k[0], grad_v[0]
        return grad_q, grad_k, grad_v
