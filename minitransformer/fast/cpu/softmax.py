"""Softmax, log-softmax and cross-entropy over the last axis as compiled kernels, row blocks
on every core (one pass per step of the formula instead of one per NumPy call).

The references are ops/softmax.py and ops/loss.py. These keep NumPy's answers for every input:
a row that holds +inf or NaN, or only -inf, comes out NaN, as exp(x - max) / sum(...) gives it.
Empty inputs go to the reference (NumPy's max of an empty row raises, and so should we).
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ...dispatch import register
from ...ops.loss import CrossEntropy
from ...ops.softmax import LogSoftmax, Softmax
from ...ops.validate import check_float, normalize_axis
from .parallel import parallel_rows


def over_rows(kernel, arrays, *scalars):
    """kernel(*row blocks of ``arrays``, *scalars, row block of the output) over the last axis,
    row blocks on every core (``parallel_rows``); the output has the shape of ``arrays[0]``."""
    rows = [np.ascontiguousarray(a).reshape(-1, a.shape[-1]) for a in arrays]  # (N, C) each
    out = np.empty(rows[0].shape, dtype=rows[0].dtype)
    parallel_rows(lambda block: kernel(*(r[block] for r in rows), *scalars, out[block]), *out.shape)
    return out.reshape(arrays[0].shape)


def over_last_axis(x, axis=-1) -> bool:
    return x.size > 0 and isinstance(axis, (int, np.integer)) and axis in (-1, x.ndim - 1)


def not_empty(logits, **params) -> bool:
    return logits.size > 0


@register(Softmax, "cpu.softmax", when=over_last_axis, available=kernels.compiled_available)
class CompiledSoftmax(Softmax):
    def forward(self, x, axis=-1):
        check_float("softmax", "input", x)
        self.axis = normalize_axis("softmax", axis, x.ndim)
        y = over_rows(kernels.softmax_last_axis, [x], False)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        (y,) = self.saved
        one = y.dtype.type(1)  # no 1/sqrt(d_k) here, unlike attention's use of the kernel
        return over_rows(kernels.softmax_backward_rows, [np.asarray(grad, dtype=y.dtype), y], one)


@register(LogSoftmax, "cpu.log_softmax", when=over_last_axis, available=kernels.compiled_available)
class CompiledLogSoftmax(LogSoftmax):
    def forward(self, x, axis=-1):
        check_float("log_softmax", "input", x)
        self.axis = normalize_axis("log_softmax", axis, x.ndim)
        y = over_rows(kernels.softmax_last_axis, [x], True)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        (y,) = self.saved
        return over_rows(kernels.log_softmax_backward_rows, [np.asarray(grad, dtype=y.dtype), y])


@register(CrossEntropy, "cpu.cross_entropy", when=not_empty, available=kernels.compiled_available)
class CompiledCrossEntropy(CrossEntropy):
    """The reference's forward and backward, with its log-softmax over rows compiled (the
    backward's exp(log_probs) stays NumPy: one pass)."""

    @staticmethod
    def log_softmax_rows(rows):
        return over_rows(kernels.softmax_last_axis, [rows], True)
