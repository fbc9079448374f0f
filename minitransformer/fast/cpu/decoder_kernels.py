"""Compiled kernels for the ops of a Llama-style decoder: SiLU, SwiGLU's gate, RMS norm and
rotary embeddings.

They are written and compiled as those in kernels.py (``kernel``: numba, ``nogil``, NumPy's
error model, never fast-math's "no NaN, no inf"), and called by the fast implementations beside
this file (elementwise.py, normalization.py, rotary.py), each over one block of rows so that
``parallel_rows`` can share the blocks among the cores. The formulas are the reference ops'
(ops/elementwise.py, ops/normalization.py, ops/rotary.py):
- SiLU and SwiGLU's gate silu(a) * b: one pass forward (sigmoid and products), one backward,
  where NumPy makes about ten; the exp is ``exp_float32`` (within 1.1 ulp), so results agree
  with NumPy to rounding;
- RMS norm: each row's sum of squares, then its outputs, while the row sits in cache; the sums
  add in SIMD lanes (``SUMS``: another order than NumPy's, rounding apart);
- rotary embeddings: each pair of channels turned in place of NumPy's slices, products and
  concatenation; the same float32 operations in the same order, so bitwise NumPy's results.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import FMA, SUMS, kernel

_ONE = np.float32(1)


# ---------------------------------------------------------------------------------------------
# SiLU: z = x s, s = sigmoid(x) = 1 / (1 + e^-x), computed as the reference's stable_sigmoid
# does: with e = e^-|x| in (0, 1], s = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, so
# the exp never overflows. Backward: dz/dx = s (1 + x (1 - s)).


@kernel(reorder=FMA)
def silu_forward(x, sigmoid, out):
    """sigmoid(x) into ``sigmoid`` (backward needs it) and x sigmoid(x) into ``out``, elementwise."""
    for i in range(x.size):
        e = kernels.exp_float32(-abs(x[i]))  # NaN stays NaN, and so do s and z
        s = _ONE / (_ONE + e) if x[i] >= 0 else e / (_ONE + e)
        sigmoid[i] = s
        out[i] = x[i] * s


@kernel
def silu_backward(x, sigmoid, grad, grad_x):
    """dL/dx = dL/dz s (1 + x (1 - s)), elementwise, in the reference's order of operations."""
    for i in range(x.size):
        s = sigmoid[i]
        grad_x[i] = grad[i] * (s * (_ONE + x[i] * (_ONE - s)))


# SwiGLU's gate, z = silu(a) * b (ops/elementwise.py's SwiGLUGate): the same, with the product.


@kernel(reorder=FMA)
def swiglu_forward(a, b, sigmoid, out):
    """sigmoid(a) into ``sigmoid`` and silu(a) b = a s b into ``out``, elementwise."""
    for i in range(a.size):
        e = kernels.exp_float32(-abs(a[i]))
        s = _ONE / (_ONE + e) if a[i] >= 0 else e / (_ONE + e)
        sigmoid[i] = s
        out[i] = a[i] * s * b[i]


@kernel
def swiglu_backward(a, b, sigmoid, grad, grad_a, grad_b):
    """dL/da = dL/dz b s (1 + a (1 - s)) and dL/db = dL/dz a s, elementwise, in one pass."""
    for i in range(a.size):
        s = sigmoid[i]
        grad_a[i] = grad[i] * b[i] * (s * (_ONE + a[i] * (_ONE - s)))
        grad_b[i] = grad[i] * (a[i] * s)


# ---------------------------------------------------------------------------------------------
# RMS norm over the last axis of (N, C) rows: y = x r w, r = 1 / sqrt(mean(x^2) + eps).


@kernel(reorder=SUMS)
def rms_norm_forward(x, weight, eps, x_hat, rstd, out):
    """Per row: rstd = 1 / sqrt(mean(x^2) + eps), x_hat = x rstd, out = x_hat w."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        squares = np.float32(0)
        for i in range(n):
            squares += x[r, i] * x[r, i]
        row_rstd = _ONE / np.sqrt(squares / np.float32(n) + eps)
        rstd[r, 0] = row_rstd
        for i in range(n):
            normalized = x[r, i] * row_rstd
            x_hat[r, i] = normalized
            out[r, i] = normalized * weight[i]


@kernel(reorder=SUMS)
def rms_norm_backward(grad, x_hat, rstd, weight, grad_x, grad_weight):
    """Per row, with g_hat = grad * w: grad_x = rstd (g_hat - x_hat mean(g_hat x_hat)); the
    row's grad * x_hat is added into grad_weight."""
    n = grad.shape[1]
    for r in range(grad.shape[0]):
        sum_g_hat_x_hat = np.float32(0)
        for i in range(n):
            sum_g_hat_x_hat += grad[r, i] * weight[i] * x_hat[r, i]
        mean_g_hat_x_hat = sum_g_hat_x_hat / np.float32(n)
        row_rstd = rstd[r, 0]
        for i in range(n):
            g_hat = grad[r, i] * weight[i]
            grad_x[r, i] = row_rstd * (g_hat - x_hat[r, i] * mean_g_hat_x_hat)
            grad_weight[i] += grad[r, i] * x_hat[r, i]


# ---------------------------------------------------------------------------------------------
# Rotary embeddings on x (B, H, T, D), one (T, D/2) table of cos and sin for every b and h.


@kernel
def rotate_pairs(x, cos, sin, direction, interleaved, out):
    """Each pair (x1, x2) of channels of x turned by its angle into ``out``:
        y1 = x1 cos - x2 sin,   y2 = x1 sin + x2 cos
    ``direction`` -1 turns by minus the angle (backward: R^T). The pairs are (x_2i, x_2i+1) when
    ``interleaved``, else (x_i, x_i+D/2). x may be a strided view (the heads transposed out of
    (B, T, H, D)); ``out`` is written in place of a copy."""
    half = cos.shape[1]
    step, partner = (2, 1) if interleaved else (1, half)  # pair i: channels step i, step i + partner
    for b in range(x.shape[0]):
        for h in range(x.shape[1]):
            for t in range(x.shape[2]):
                for i in range(half):
                    first = step * i
                    second = first + partner
                    c, s = cos[t, i], sin[t, i] * direction  # times +-1: exact
                    x1, x2 = x[b, h, t, first], x[b, h, t, second]
                    out[b, h, t, first] = x1 * c - x2 * s
                    out[b, h, t, second] = x1 * s + x2 * c
