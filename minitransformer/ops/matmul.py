"""Matrix products with NumPy's ``matmul`` semantics, and the fused linear layer.

For C = A B:  dL/dA = dL/dC B^T  and  dL/dB = A^T dL/dC. A 1-D operand is treated as a row
(on the left) or a column (on the right) vector, and batch dimensions broadcast as in NumPy,
so the batch gradients are summed back (``unbroadcast``).
"""

from __future__ import annotations

from ..autograd import Function, unbroadcast
from ..tensor import Tensor, describe


def _swap_last(x):
    return x.swapaxes(-1, -2)


class MatMul(Function):
    """C = A @ B   (any ranks, NumPy semantics);   dA = dC B^T,  dB = A^T dC"""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: operands must have at least 1 dimension, got {describe(a)} and {describe(b)}"
            )
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} don't align: last dim of a "
                f"({a.shape[-1]}) != {'second-to-last' if b.ndim > 1 else 'only'} dim of b ({inner_b})"
            )
        self.save_for_backward(a, b)
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            # (..., K) @ (K, N) as one (M, K) @ (K, N) BLAS call instead of one per batch entry
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
        try:
            return a @ b
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {a.shape} and {b.shape} don't broadcast"
            ) from None

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        # promote 1-D operands to matrices: a (K,) -> (1, K), b (K,) -> (K, 1), and give the
        # gradient the matching size-1 axes
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        grad2 = grad[..., None] if b.ndim == 1 else grad
        grad2 = grad2[..., None, :] if a.ndim == 1 else grad2
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(grad2 @ _swap_last(b2), a2.shape).reshape(a.shape)
        if need_b:
            if b2.ndim == 2 and a2.ndim > 2:
                # sum over the batch inside one BLAS call: (K, M) @ (M, N) with M = all batch rows
                k = a2.shape[-1]
                grad_b = a2.reshape(-1, k).T @ grad2.reshape(-1, grad2.shape[-1])
            else:
                grad_b = unbroadcast(_swap_last(a2) @ grad2, b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b
        # END SOLUTION a2


def check_linear_inputs(x, weight, bias) -> None:
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input {describe(x)} and weight {describe(weight)} don't fit: expected "
            f"weight (out_features, in_features) with in_features == input's last dim"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias {describe(bias)} doesn't fit weight {describe(weight)}: "
            f"expected shape ({weight.shape[0]},)"
        )


class Linear(Function):
    """y = x W^T + b with W of shape (out, in), the PyTorch layout   (fused into one node)

    dx = dy W,   dW = dy^T x   (summed over all leading dims),   db = sum of dy over leading dims
    Fast version: fast/cpu/matmul.py.
    """

    def forward(self, x, weight, bias=None):
        check_linear_inputs(x, weight, bias)
        x2 = x.reshape(-1, x.shape[-1])  # (N, in)
        self.save_for_backward(x2, weight)
        self.input_shape = x.shape
        out = x2 @ weight.T  # (N, out)
        if bias is not None:
            out += bias
        return out.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        # BEGIN SOLUTION a2
        x2, weight = self.saved
        grad2 = grad.reshape(-1, grad.shape[-1])  # (N, out)
        needs = self.needs_input_grad
        grad_x = (grad2 @ weight).reshape(self.input_shape) if needs[0] else None
        grad_weight = grad2.T @ x2 if needs[1] else None
        grad_bias = grad2.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return grad_x, grad_weight, grad_bias
        # END SOLUTION a2


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
