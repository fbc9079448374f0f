"""Layer norm and RMS norm over the last axis as one compiled kernel per block of rows, blocks
on every core.

The references are ops/normalization.py; kernels.layer_norm_forward/backward and
decoder_kernels.rms_norm_forward/backward make each row's passes while the row sits in cache.
"""

from __future__ import annotations

import math

import numpy as np

from . import decoder_kernels, kernels
from ...dispatch import register
from ...ops.normalization import LayerNorm, RMSNorm, check_layer_norm_inputs, check_rms_norm_inputs
from .parallel import parallel_rows


@register(LayerNorm, "cpu.layer_norm", available=kernels.compiled_available)
class CompiledLayerNorm(LayerNorm):
    """Saves x_hat (N, C) and rstd (N, 1), as the reference does, but as rows."""

    def forward(self, x, weight, bias=None, eps=1e-5):
        check_layer_norm_inputs(x, weight, bias)
        n = x.shape[-1]
        # the row count spelled out: reshape(-1, 0) cannot infer it for rows of no features
        rows_in = np.ascontiguousarray(x).reshape(math.prod(x.shape[:-1]), n)  # (N, C)
        x_hat, out = np.empty_like(rows_in), np.empty_like(rows_in)
        rstd = np.empty((rows_in.shape[0], 1), dtype=x.dtype)  # (N, 1)
        shift = bias if bias is not None else np.zeros_like(weight)
        epsilon = x.dtype.type(eps)

        def normalize(rows):
            kernels.layer_norm_forward(rows_in[rows], weight, shift, epsilon,
                                       x_hat[rows], rstd[rows], out[rows])

        parallel_rows(normalize, rows_in.shape[0], n)
        self.save_for_backward(x_hat, rstd, weight)
        return out.reshape(x.shape)

    def backward(self, grad):
        x_hat, rstd, weight = self.saved  # (N, C), (N, 1), (C,)
        n = x_hat.shape[-1]
        grad_rows = np.ascontiguousarray(grad).reshape(x_hat.shape)  # (N, C)
        grad_x = np.empty_like(grad_rows)

        def backward_rows(rows):  # this block's grad_x, and its share of dL/dw and dL/db
            grad_weight_part, grad_bias_part = np.zeros_like(weight), np.zeros_like(weight)
            kernels.layer_norm_backward(grad_rows[rows], x_hat[rows], rstd[rows], weight,
                                        grad_x[rows], grad_weight_part, grad_bias_part)
            return grad_weight_part, grad_bias_part

        partial_sums = parallel_rows(backward_rows, grad_rows.shape[0], n)
        needs = self.needs_input_grad
        grad_weight = sum(p[0] for p in partial_sums) if needs[1] else None
        grad_bias = sum(p[1] for p in partial_sums) if len(needs) > 2 and needs[2] else None
        return grad_x.reshape(grad.shape), grad_weight, grad_bias


def with_weight(x, weight=None, eps=1e-6) -> bool:
    return weight is not None and x.ndim > 0  # else the reference, which says what is wrong


@register(RMSNorm, "cpu.rms_norm", when=with_weight, available=kernels.compiled_available)
class CompiledRMSNorm(RMSNorm):
    """Saves x_hat (N, C) and rstd (N, 1), as the reference does, but as rows."""

    def forward(self, x, weight, eps=1e-6):
        check_rms_norm_inputs(x, weight, eps)
        n = x.shape[-1]
        rows_in = np.ascontiguousarray(x).reshape(math.prod(x.shape[:-1]), n)  # (N, C)
        x_hat, out = np.empty_like(rows_in), np.empty_like(rows_in)
        rstd = np.empty((rows_in.shape[0], 1), dtype=x.dtype)  # (N, 1)
        epsilon = x.dtype.type(eps)

        def normalize(rows):
            decoder_kernels.rms_norm_forward(rows_in[rows], weight, epsilon, x_hat[rows], rstd[rows], out[rows])

        parallel_rows(normalize, *rows_in.shape)
        self.save_for_backward(x_hat, rstd, weight)
        return out.reshape(x.shape)

    def backward(self, grad):
        x_hat, rstd, weight = self.saved  # (N, C), (N, 1), (C,)
        grad_rows = np.ascontiguousarray(grad).reshape(x_hat.shape)  # (N, C)
        grad_x = np.empty_like(grad_rows)

        def backward_rows(rows):  # this block's grad_x, and its share of dL/dw
            grad_weight_part = np.zeros_like(weight)
            decoder_kernels.rms_norm_backward(grad_rows[rows], x_hat[rows], rstd[rows], weight,
                                              grad_x[rows], grad_weight_part)
            return grad_weight_part

        partial_sums = parallel_rows(backward_rows, *grad_rows.shape)
        grad_weight = sum(partial_sums) if self.needs_input_grad[1] else None
        return grad_x.reshape(grad.shape), grad_weight
