"""Softmax and log-softmax, fused: one node each, with the backward derived by hand.

Both subtract the maximum first: softmax(x) = softmax(x - c) for any constant c, and with
c = max(x) every exponent is <= 0, so exp never overflows even for logits of 1e4.
Faster implementations are registered in minitransformer/fast/cpu/softmax.py.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from .validate import check_float, normalize_axis


def stable_softmax(x, axis: int):
    """softmax on a raw array: exp(x - max) / sum(exp(x - max))"""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def stable_log_softmax(x, axis: int):
    """log-softmax on a raw array: (x - m) - log(sum(exp(x - m))), m = max(x)"""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """y_i = exp(x_i) / sum_j exp(x_j)   (F9, F14's row normalisation)

    dL/dx_i = y_i (g_i - sum_j g_j y_j)    (saves the output y, not x)
    """

    def forward(self, x, axis=-1):
        check_float("softmax", "input", x)
        self.axis = normalize_axis("softmax", axis, x.ndim)
        y = stable_softmax(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        # BEGIN SOLUTION a3
        (y,) = self.saved
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))
        # END SOLUTION a3


class LogSoftmax(Function):
    """y_i = x_i - log sum_j exp(x_j) = (x_i - m) - log sum_j exp(x_j - m),  m = max_j x_j

    dL/dx_i = g_i - softmax(x)_i * sum_j g_j
    """

    def forward(self, x, axis=-1):
        check_float("log_softmax", "input", x)
        self.axis = normalize_axis("log_softmax", axis, x.ndim)
        y = stable_log_softmax(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        # BEGIN SOLUTION a3
        (y,) = self.saved
        softmax = array_module(y).exp(y)
        return grad - softmax * grad.sum(axis=self.axis, keepdims=True)
        # END SOLUTION a3
