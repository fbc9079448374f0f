"""1-D convolution (F12), the documents' CNN building block, for sequences (B, C, L)."""

from __future__ import annotations

import math

from .. import functional as F
from ..tensor import Tensor
from .module import Module, new_parameter


class Conv1d(Module):
    """y[b, i, j] = sum_c sum_k W[i, c, k] x[b, c, j*stride + k] + b_i   (cross-correlation)

    About F12: document 003 section 3.2 writes c_ij = sum_k w_ik x_{j-k} + b_i, the textbook
    convolution, which walks the input backwards (x_{j-k}) and so flips the kernel. Deep-learning
    libraries (PyTorch, Keras, this one) compute the cross-correlation above, walking forwards
    (x_{j+k}). The two agree when the kernel is reversed: the document's c with kernel w equals
    this layer's output with weight w[..., ::-1] on the input padded by K - 1 at the front. Since
    the kernel is learned, the network can learn either; tests/formulas/test_F12_convolution.py
    checks both relations.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        bound = 1 / math.sqrt(in_channels * kernel_size)
        self.weight = new_parameter((out_channels, in_channels, kernel_size), bound=bound)
        self.bias = new_parameter((out_channels,), bound=bound) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
