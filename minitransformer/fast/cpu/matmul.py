"""The linear layer with its bias added in row blocks on every core, and the bias's gradient
summed by BLAS.

The reference is ``Linear`` in ops/matmul.py. NumPy adds a bias to a big (N, out) product on
one core while the other waits; and it reduces over rows, the first axis, several times slower
than the matrix-vector product ones(N) @ dy, which BLAS runs on every core. Each element of the
output is the same one addition, so the forward is bitwise the reference's; the bias's
gradient is a sum in another order (rounding).
"""

from __future__ import annotations

import numpy as np

from ...dispatch import register
from ...ops.matmul import Linear, check_linear_inputs
from .parallel import parallel_rows


@register(Linear, "cpu.linear", dtypes=(np.float32, np.float64))
class BlockedLinear(Linear):
    def forward(self, x, weight, bias=None):
        check_linear_inputs(x, weight, bias)
        x2 = x.reshape(-1, x.shape[-1])  # (N, in)
        self.save_for_backward(x2, weight)
        self.input_shape = x.shape
        out = x2 @ weight.T  # (N, out)
        if bias is not None:
            def add_bias(rows):
                out[rows] += bias

            parallel_rows(add_bias, *out.shape)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        x2, weight = self.saved
        grad2 = grad.reshape(-1, grad.shape[-1])  # (N, out)
        needs = self.needs_input_grad
        grad_x = (grad2 @ weight).reshape(self.input_shape) if needs[0] else None
        grad_weight = grad2.T @ x2 if needs[1] else None
        grad_bias = None
        if len(needs) > 2 and needs[2]:  # ones(N) @ dy: a BLAS product, not a row reduction
            grad_bias = np.ones(grad2.shape[0], dtype=grad2.dtype) @ grad2
        return grad_x, grad_weight, grad_bias
