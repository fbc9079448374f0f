"""Normalisation over the last axis, fused into one node each: layer norm (Ba, Kiros and Hinton
2016) and RMS norm (Zhang and Sennrich 2019, the norm of Llama, Qwen, Mistral and Gemma)."""

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


def check_rms_norm_inputs(x, weight, eps) -> None:
    check_float("rms_norm", "input", x)
    n = x.shape[-1] if x.ndim else None
    if x.ndim == 0 or (weight is not None and weight.shape != (n,)):
        raise ValueError(
            f"rms_norm: weight is {describe(weight)} and input {describe(x)}; expected an input "
            f"with at least one axis and a weight of shape (C,) matching its last axis"
        )
    if not eps >= 0:  # also refuses NaN
        raise ValueError(f"rms_norm: eps must be >= 0, got {eps}")


class RMSNorm(Function):
    """y = x / rms(x) * w,  rms(x) = sqrt(mean(x^2) + eps) over the last axis.

    Layer norm without the centring and without a bias: it keeps the scale invariance (y does
    not change when x is multiplied by c > 0) and costs one reduction instead of two.
    With r = 1 / rms(x), x_hat = x * r, g_hat = dL/dy * w and C the size of the last axis
    (lessons/16):
        dL/dx = r * (g_hat - x_hat * mean(g_hat * x_hat))
        dL/dw = sum over rows of dL/dy * x_hat
    """

    def forward(self, x, weight, eps=1e-6):
        check_rms_norm_inputs(x, weight, eps)
        xp = array_module(x)
        mean_square = (x * x).mean(axis=-1, keepdims=True)  # (..., 1)
        rstd = 1 / xp.sqrt(mean_square + eps)
        x_hat = x * rstd  # (..., C)
        self.save_for_backward(x_hat, rstd, weight)
        return x_hat * weight

    def backward(self, grad):
        x_hat, rstd, weight = self.saved  # (..., C), (..., 1), (C,)
        g_hat = grad * weight
        grad_x = rstd * (g_hat - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True))
        rows = tuple(range(grad.ndim - 1))  # every axis but the last
        grad_weight = (grad * x_hat).sum(axis=rows) if self.needs_input_grad[1] else None
        return grad_x, grad_weight
