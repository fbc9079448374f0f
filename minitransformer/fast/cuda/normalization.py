"""Layer norm over the last axis on a GPU: one CUDA block per row each way
(kernels.layer_norm_rows, layer_norm_backward_rows); dL/dw and dL/db are CuPy sums over rows.

The reference is ops/normalization.py. Off unless MINITRANSFORMER_CUDA_KERNELS=1.
"""

from __future__ import annotations

from . import kernels, kernels_enabled
from ...backend import array_module
from ...dispatch import register
from ...ops.normalization import LayerNorm, check_layer_norm_inputs


def not_empty(x, weight, bias=None, eps=1e-5) -> bool:
    return x.size > 0


@register(LayerNorm, "cuda.layer_norm", device="cuda", when=not_empty, available=kernels_enabled)
class CudaLayerNorm(LayerNorm):
    """Saves x_hat (N, C) and rstd (N,), as rows."""

    def forward(self, x, weight, bias=None, eps=1e-5):
        check_layer_norm_inputs(x, weight, bias)
        xp = array_module(x)
        n = x.shape[-1]
        rows = xp.ascontiguousarray(x.reshape(-1, n))  # (N, C)
        x_hat, out = xp.empty_like(rows), xp.empty_like(rows)
        rstd = xp.empty(rows.shape[0], dtype=x.dtype)  # (N,)
        weight_c = xp.ascontiguousarray(weight)
        shift = xp.ascontiguousarray(bias) if bias is not None else xp.zeros_like(weight_c)
        kernels.launch_rows("layer_norm_rows", rows.shape[0], rows, weight_c, shift, x_hat, rstd, out,
                            xp.int32(n), x.dtype.type(eps))
        self.save_for_backward(x_hat, rstd, weight_c)
        return out.reshape(x.shape)

    def backward(self, grad):
        x_hat, rstd, weight = self.saved  # (N, C), (N,), (C,)
        xp = array_module(x_hat)
        n = x_hat.shape[-1]
        grad_rows = xp.ascontiguousarray(grad.reshape(-1, n), dtype=x_hat.dtype)  # (N, C)
        grad_x = xp.empty_like(grad_rows)
        kernels.launch_rows("layer_norm_backward_rows", grad_rows.shape[0], grad_rows, x_hat, rstd,
                            weight, grad_x, xp.int32(n), halves=2)
        needs = self.needs_input_grad
        grad_weight = (grad_rows * x_hat).sum(axis=0) if needs[1] else None  # sum over rows
        grad_bias = grad_rows.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return grad_x.reshape(grad.shape), grad_weight, grad_bias
