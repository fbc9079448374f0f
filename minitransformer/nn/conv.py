"""Convolution (F12), the documents' CNN building block: 1-D over sequences (B, C, L), 2-D over
images (B, C, H, W), with the max-pooling and flattening that document 002's and 003's CNNs put
after it. Weight layouts are PyTorch's, so PyTorch state dicts load as they are."""

from __future__ import annotations

import math

from .. import functional as F
from ..tensor import Tensor, describe
from .module import Module, new_parameter

Pair = int | tuple[int, int]


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


class Conv2d(Module):
    """y[b, o, p, q] = sum_c sum_i sum_j W[o, c, i, j] x_pad[b, c, p*sh + i*dh, q*sw + j*dw] + b_o

    Keras's Conv2D(32, (3, 3)) on 28x28x1 images is Conv2d(1, 32, 3) here. Two differences to
    keep in mind when porting: the images are channels-first (B, C, H, W), not Keras's (B, H, W,
    C), and the weight is PyTorch's (out, in, kh, kw), not Keras's (kh, kw, in, out).
    Supported: stride, zero padding, dilation (ints or pairs); not: groups, other padding modes.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair, stride: Pair = 1,
                 padding: Pair = 0, dilation: Pair = 1, bias: bool = True):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        bound = 1 / math.sqrt(in_channels * kh * kw)  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self.weight = new_parameter((out_channels, in_channels, kh, kw), bound=bound)
        self.bias = new_parameter((out_channels,), bound=bound) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}")


class MaxPool2d(Module):
    """The largest value of each window, per channel: Keras's MaxPooling2D((2, 2)) is
    MaxPool2d(2). The gradient goes to each window's maximum alone (ops/conv.py). Windows that
    would stick out of the input are dropped (PyTorch's ceil_mode=False, Keras's "valid");
    padding and dilation are not supported."""

    def __init__(self, kernel_size: Pair = 2, stride: Pair | None = None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class Flatten(Module):
    """Axes start_dim..end_dim merged into one, a reshape: (B, C, H, W) -> (B, C*H*W) by default.

    Flattening (B, C, H, W) orders features channel by channel; Keras flattens (B, H, W, C)
    pixel by pixel, so a Dense layer's weights after Flatten differ in order between the two.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        start, end = self.start_dim % max(x.ndim, 1), self.end_dim % max(x.ndim, 1)
        if not (-x.ndim <= self.start_dim < x.ndim and -x.ndim <= self.end_dim < x.ndim) or start > end:
            raise ValueError(f"Flatten: axes {self.start_dim}..{self.end_dim} don't fit the input "
                             f"{describe(x)}; expected start_dim <= end_dim, both in [-{x.ndim}, {x.ndim})")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
