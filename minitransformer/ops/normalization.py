"""Layer normalisation, fused (Ba, Kiros and Hinton 2016), over the last axis."""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from ..tensor import describe
from .validate import check_float


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b, mean and (biased) var over the last axis.

    With x_hat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), g_hat = dL/dy * w and n the size
    of the last axis (derivation in lessons/11):
        dL/dx = rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))
        dL/dw = sum over rows of dL/dy * x_hat,    dL/db = sum over rows of dL/dy
    """

    def forward(self, x, weight, bias=None, eps=1e-5):
        check_float("layer_norm", "input", x)
        n = x.shape[-1]
        for name, param in (("weight", weight), ("bias", bias)):
            if param is not None and param.shape != (n,):
                raise ValueError(
                    f"layer_norm: {name} is {describe(param)}; expected shape ({n},) to match "
                    f"the last axis of the input {describe(x)}"
                )
        xp = array_module(x)
        x_hat = x - x.mean(axis=-1, keepdims=True)  # centred; normalised in place below
        # the variance as a row-wise dot product: no (N, C) temporary for the squares
        var = xp.einsum("...i,...i->...", x_hat, x_hat)[..., None] / n
        rstd = 1 / xp.sqrt(var + eps)
        x_hat *= rstd
        self.save_for_backward(x_hat, rstd, weight)
        out = x_hat * weight
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a3
        x_hat, rstd, weight = self.saved
        xp = array_module(x_hat)
        g_hat = grad * weight
        mean_g_hat = g_hat.mean(axis=-1, keepdims=True)
        mean_g_hat_x_hat = xp.einsum("...i,...i->...", g_hat, x_hat)[..., None] / x_hat.shape[-1]
        # rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)), in place in g_hat
        g_hat -= mean_g_hat
        g_hat -= x_hat * mean_g_hat_x_hat
        g_hat *= rstd
        rows = tuple(range(grad.ndim - 1))
        needs = self.needs_input_grad
        grad_weight = (grad * x_hat).sum(axis=rows) if needs[1] else None
        grad_bias = grad.sum(axis=rows) if len(needs) > 2 and needs[2] else None
        return g_hat, grad_weight, grad_bias
        # END SOLUTION a3
