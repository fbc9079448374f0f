"""Layer normalisation, fused (Ba, Kiros and Hinton 2016), over the last axis."""

from __future__ import annotations

from .. import kernels
from ..autograd import Function
from ..backend import array_module, column_sums, row_sums
from ..parallel import parallel_rows
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
        rows_in = xp.ascontiguousarray(x).reshape(-1, n)  # (N, C)
        x_hat, out = xp.empty_like(rows_in), xp.empty_like(rows_in)
        rstd = xp.empty((rows_in.shape[0], 1), dtype=x.dtype)  # (N, 1)

        def kernel(rows):
            block = x_hat[rows]
            xp.subtract(rows_in[rows], row_sums(rows_in[rows])[:, None] / n, out=block)
            # the variance as row-wise dot products: no (N, C) temporary for the squares
            var = xp.einsum("ni,ni->n", block, block)[:, None] / n
            rstd[rows] = 1 / xp.sqrt(var + eps)
            block *= rstd[rows]
            xp.multiply(block, weight, out=out[rows])
            if bias is not None:
                out[rows] += bias

        if kernels.use_compiled(rows_in, weight, bias):  # the same in one kernel (kernels.py)
            shift = bias if bias is not None else xp.zeros_like(weight)

            def kernel(rows):
                kernels.layer_norm_forward(rows_in[rows], weight, shift, x.dtype.type(eps),
                                           x_hat[rows], rstd[rows], out[rows])

        parallel_rows(kernel, rows_in.shape[0], n, xp)
        self.save_for_backward(x_hat, rstd, weight)
        return out.reshape(x.shape)

    def backward(self, grad):
        # BEGIN SOLUTION a3
        x_hat, rstd, weight = self.saved  # (N, C), (N, 1), (C,)
        xp = array_module(x_hat)
        n = x_hat.shape[-1]
        grad_rows = xp.ascontiguousarray(grad).reshape(-1, n)  # (N, C)
        grad_x = xp.empty_like(grad_rows)

        def kernel(rows):
            g, x_hat_rows = grad_rows[rows], x_hat[rows]
            g_hat = grad_x[rows]
            xp.multiply(g, weight, out=g_hat)
            mean_g_hat = row_sums(g_hat)[:, None] / n
            mean_g_hat_x_hat = xp.einsum("ni,ni->n", g_hat, x_hat_rows)[:, None] / n
            # rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)), in place in g_hat
            g_hat -= mean_g_hat
            g_hat -= x_hat_rows * mean_g_hat_x_hat
            g_hat *= rstd[rows]
            # this block's share of dL/dw and dL/db: column sums over its rows
            return xp.einsum("ni,ni->i", g, x_hat_rows), column_sums(g)

        if kernels.use_compiled(grad_rows, x_hat, weight):  # the same in one kernel (kernels.py)
            def kernel(rows):
                grad_weight_part, grad_bias_part = xp.zeros_like(weight), xp.zeros_like(weight)
                kernels.layer_norm_backward(grad_rows[rows], x_hat[rows], rstd[rows], weight,
                                            grad_x[rows], grad_weight_part, grad_bias_part)
                return grad_weight_part, grad_bias_part

        partial_sums = parallel_rows(kernel, grad_rows.shape[0], n, xp)
        needs = self.needs_input_grad
        grad_weight = sum(p[0] for p in partial_sums) if needs[1] else None
        grad_bias = sum(p[1] for p in partial_sums) if len(needs) > 2 and needs[2] else None
        return grad_x.reshape(grad.shape), grad_weight, grad_bias
        # END SOLUTION a3
