"""Layer normalisation, fused (Ba, Kiros and Hinton 2016), over the last axis."""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from ..tensor import describe
from .validate import check_float


def check_layer_norm_inputs(x, weight, bias) -> None:
    check_float("layer_norm", "input", x)
    n = x.shape[-1]
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != (n,):
            raise ValueError(
                f"layer_norm: {name} is {describe(param)}; expected shape ({n},) to match "
                f"the last axis of the input {describe(x)}"
            )


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b, mean and (biased) var over the last axis.

    With x_hat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), g_hat = dL/dy * w and n the size
    of the last axis (derivation in lessons/11):
        dL/dx = rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))
        dL/dw = sum over rows of dL/dy * x_hat,    dL/db = sum over rows of dL/dy
    A faster implementation is registered in minitransformer/fast/cpu/normalization.py.
    """

    def forward(self, x, weight, bias=None, eps=1e-5):
        check_layer_norm_inputs(x, weight, bias)
        xp = array_module(x)
        centred = x - x.mean(axis=-1, keepdims=True)  # (..., C)
        var = (centred * centred).mean(axis=-1, keepdims=True)  # (..., 1), biased
        rstd = 1 / xp.sqrt(var + eps)
        x_hat = centred * rstd
        self.save_for_backward(x_hat, rstd, weight)
        out = x_hat * weight
        return out if bias is None else out + bias

    def backward(self, grad):
        # BEGIN SOLUTION a3
        x_hat, rstd, weight = self.saved  # (..., C), (..., 1), (C,)
        g_hat = grad * weight
        mean_g_hat = g_hat.mean(axis=-1, keepdims=True)
        mean_g_hat_x_hat = (g_hat * x_hat).mean(axis=-1, keepdims=True)
        grad_x = rstd * (g_hat - mean_g_hat - x_hat * mean_g_hat_x_hat)
        rows = tuple(range(grad.ndim - 1))  # every axis but the last
        grad_weight = (grad * x_hat).sum(axis=rows)
        grad_bias = grad.sum(axis=rows) if len(self.needs_input_grad) > 2 else None
        return grad_x, grad_weight, grad_bias
        # END SOLUTION a3
