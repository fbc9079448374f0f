"""Softmax, log-softmax and cross-entropy over the last axis on a GPU: one CUDA block per row
(kernels.softmax_rows, softmax_backward_rows), instead of CuPy's five kernels per formula.

The references are ops/softmax.py and ops/loss.py; cross-entropy, as on the CPU, replaces only
its log-softmax over rows. Off unless MINITRANSFORMER_CUDA_KERNELS=1 (see __init__.py).
"""

from __future__ import annotations

import numpy as np

from . import kernels, kernels_enabled
from ...backend import array_module
from ...dispatch import register
from ...ops.loss import CrossEntropy
from ...ops.softmax import LogSoftmax, Softmax
from ...ops.validate import check_float, normalize_axis


def over_last_axis(x, axis=-1) -> bool:
    return x.size > 0 and isinstance(axis, (int, np.integer)) and axis in (-1, x.ndim - 1)


def not_empty(logits, **params) -> bool:
    return logits.size > 0


def softmax_of_rows(x, log_output: bool):
    """softmax or log_softmax of every row of the last axis, in a new array of x's shape."""
    xp = array_module(x)
    rows = xp.ascontiguousarray(x.reshape(-1, x.shape[-1]))  # (N, C)
    y = xp.empty_like(rows)
    kernels.launch_rows("softmax_rows", rows.shape[0], rows, y, np.int32(rows.shape[1]),
                        np.int32(log_output))
    return y.reshape(x.shape)


def softmax_backward(grad, y, log_output: bool):
    rows_y = y.reshape(-1, y.shape[-1])  # saved by forward: contiguous
    xp = array_module(y)
    rows_grad = xp.ascontiguousarray(grad.reshape(-1, y.shape[-1]), dtype=y.dtype)  # (N, C)
    dx = xp.empty_like(rows_y)
    kernels.launch_rows("softmax_backward_rows", rows_y.shape[0], rows_grad, rows_y, dx,
                        np.int32(rows_y.shape[1]), np.int32(log_output))
    return dx.reshape(y.shape)


@register(Softmax, "cuda.softmax", device="cuda", when=over_last_axis, available=kernels_enabled)
class CudaSoftmax(Softmax):
    def forward(self, x, axis=-1):
        check_float("softmax", "input", x)
        self.axis = normalize_axis("softmax", axis, x.ndim)
        y = softmax_of_rows(x, log_output=False)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        (y,) = self.saved
        return softmax_backward(grad, y, log_output=False)


@register(LogSoftmax, "cuda.log_softmax", device="cuda", when=over_last_axis, available=kernels_enabled)
class CudaLogSoftmax(LogSoftmax):
    def forward(self, x, axis=-1):
        check_float("log_softmax", "input", x)
        self.axis = normalize_axis("log_softmax", axis, x.ndim)
        y = softmax_of_rows(x, log_output=True)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        (y,) = self.saved
        return softmax_backward(grad, y, log_output=True)


@register(CrossEntropy, "cuda.cross_entropy", device="cuda", when=not_empty, available=kernels_enabled)
class CudaCrossEntropy(CrossEntropy):
    """The reference's forward and backward, with its log-softmax over rows in one kernel."""

    @staticmethod
    def log_softmax_rows(rows):
        return softmax_of_rows(rows, log_output=True)
