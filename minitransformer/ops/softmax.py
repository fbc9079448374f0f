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


def over_rows(kernel, arrays, *scalars):
    """kernel(*row blocks of ``arrays``, *scalars, row block of the output) over the last axis,
    row blocks on every core (``parallel_rows``); the output has the shape of ``arrays[0]``."""
    rows = [np.ascontiguousarray(a).reshape(-1, a.shape[-1]) for a in arrays]  # (N, C) each
    out = np.empty(rows[0].shape, dtype=rows[0].dtype)
    parallel_rows(lambda block: kernel(*(r[block] for r in rows), *scalars, out[block]), *out.shape)
    return out.reshape(arrays[0].shape)


def softmax_rows_compiled(x, take_log: bool):
    """softmax (log-softmax with ``take_log``) over the last axis of x, compiled."""
    return over_rows(kernels.softmax_last_axis, [x], take_log)


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
            one = y.dtype.type(1)  # no 1/sqrt(d_k) here, unlike attention's use
            return over_rows(kernels.softmax_backward_rows, [grad, y], one)
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
            return over_rows(kernels.log_softmax_backward_rows, [grad, y])
        softmax = array_module(y).exp(y)
        return grad - softmax * grad.sum(axis=self.axis, keepdims=True)
        # END SOLUTION a3
