"""Softmax and log-softmax, fused: one node each, with the backward derived by hand.

Both subtract the maximum first: softmax(x) = softmax(x - c) for any constant c, and with
c = max(x) every exponent is <= 0, so exp never overflows even for logits of 1e4.
Over the last axis of float32 NumPy arrays both directions run as compiled kernels
(kernels.py: one pass per step of the formula instead of one per NumPy call), row blocks on
every core; the NumPy code below is the reference they are tested against.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..backend import array_module
from ..parallel import parallel_rows
from .validate import check_float, normalize_axis


def stable_softmax(x, axis: int):
    """softmax on a raw array: exp(x - max) / sum(exp(x - max))"""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def compiled_over_last_axis(axis: int, *arrays) -> bool:
    """Whether the compiled kernels take this op: over the last axis of float32 NumPy arrays
    that are not empty (NumPy's max of an empty row raises, and so should we)."""
    x = arrays[0]
    return axis == x.ndim - 1 and x.size > 0 and kernels.use_compiled(*arrays)


def rows_of(x):
    """x as (N, C) rows of its last axis, C-contiguous (a view when x already is)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def softmax_rows_compiled(x, take_log: bool):
    """softmax (log-softmax with ``take_log``) over the last axis of x:
    ``kernels.softmax_last_axis`` on row blocks on every core."""
    rows = rows_of(x)  # (N, C)
    out = np.empty(rows.shape, dtype=rows.dtype)
    parallel_rows(lambda block: kernels.softmax_last_axis(rows[block], out[block], take_log),
                  *rows.shape)
    return out.reshape(x.shape)


class Softmax(Function):
    """y_i = exp(x_i) / sum_j exp(x_j)   (F9, F14's row normalisation)

    dL/dx_i = y_i (g_i - sum_j g_j y_j)    (saves the output y, not x)
    """

    def forward(self, x, axis=-1):
        check_float("softmax", "input", x)
        self.axis = normalize_axis("softmax", axis, x.ndim)
        if compiled_over_last_axis(self.axis, x):
            y = softmax_rows_compiled(x, take_log=False)
        else:
            y = stable_softmax(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        # BEGIN SOLUTION a3
        (y,) = self.saved
        if compiled_over_last_axis(self.axis, y, grad):  # the same formula, one kernel per block
            weights, grad_rows = rows_of(y), rows_of(grad)  # (N, C)
            grad_x = np.empty(weights.shape, dtype=weights.dtype)
            one = weights.dtype.type(1)  # no 1/sqrt(d_k) here, unlike attention's use
            parallel_rows(lambda rows: kernels.softmax_backward_rows(
                grad_rows[rows], weights[rows], one, grad_x[rows]), *weights.shape)
            return grad_x.reshape(y.shape)
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))
        # END SOLUTION a3


class LogSoftmax(Function):
    """y_i = x_i - log sum_j exp(x_j) = (x_i - m) - log sum_j exp(x_j - m),  m = max_j x_j

    dL/dx_i = g_i - softmax(x)_i * sum_j g_j
    """

    def forward(self, x, axis=-1):
        check_float("log_softmax", "input", x)
        xp = array_module(x)
        self.axis = normalize_axis("log_softmax", axis, x.ndim)
        if compiled_over_last_axis(self.axis, x):
            y = softmax_rows_compiled(x, take_log=True)
        else:
            shifted = x - x.max(axis=self.axis, keepdims=True)
            y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        # BEGIN SOLUTION a3
        (y,) = self.saved
        if compiled_over_last_axis(self.axis, y, grad):  # the same formula, one kernel per block
            log_probs, grad_rows = rows_of(y), rows_of(grad)  # (N, C)
            grad_x = np.empty(log_probs.shape, dtype=log_probs.dtype)
            parallel_rows(lambda rows: kernels.log_softmax_backward_rows(
                grad_rows[rows], log_probs[rows], grad_x[rows]), *log_probs.shape)
            return grad_x.reshape(y.shape)
        softmax = array_module(y).exp(y)
        return grad - softmax * grad.sum(axis=self.axis, keepdims=True)
        # END SOLUTION a3
