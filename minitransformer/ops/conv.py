"""2-D convolution and max-pooling over images (B, C, H, W), the layers of document 002's and
003's CNNs, each one fused node with its backward written beside it.

Both read an image through its kh x kw windows. Rather than loop over the H_out x W_out windows,
they loop over the kh x kw offsets inside a window: for the offset (i, j), the pixels that sit
at that offset in every window form one strided slice of the input,

    x[:, :, i*dh : i*dh + sh*(H_out - 1) + 1 : sh,  j*dw : j*dw + sw*(W_out - 1) + 1 : sw]

of shape (B, C, H_out, W_out). Stacking the kh*kw slices is "im2col" (Chellapilla et al. 2006,
Caffe's im2col.cpp): convolution becomes one matrix product. The backward walks the same slices
and adds the gradient back into them ("col2im"); the adds, not assignments, matter where
windows overlap (stride < kernel), since one pixel then sits in several windows.

Supported: stride, zero padding and dilation, each an int or a pair (rows, columns); not
supported: groups, padding modes other than zeros, "same" padding by name.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from .validate import check_float


def output_size(size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1, PyTorch's and Keras's
    "valid" formula; below 1 the window does not fit the (padded) input."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def window_slices(i: int, j: int, out_hw, stride, dilation) -> tuple:
    """The index of the pixels at offset (i, j) of every window: (B, C, H_out, W_out) of them."""
    (H_out, W_out), (sh, sw), (dh, dw) = out_hw, stride, dilation
    rows = slice(i * dh, i * dh + sh * (H_out - 1) + 1, sh)
    cols = slice(j * dw, j * dw + sw * (W_out - 1) + 1, sw)
    return (slice(None), slice(None), rows, cols)


def unfold(x, kernel, stride, dilation, out_hw):
    """im2col: x (B, C, Hp, Wp) -> columns (B, C, kh, kw, H_out, W_out), the window pixels."""
    xp = array_module(x)
    (kh, kw), (B, C) = kernel, x.shape[:2]
    columns = xp.empty((B, C, kh, kw) + tuple(out_hw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            columns[:, :, i, j] = x[window_slices(i, j, out_hw, stride, dilation)]
    return columns


def fold(columns, padded_shape, stride, dilation):
    """col2im, unfold's adjoint: add each window pixel's value back where it came from."""
    xp = array_module(columns)
    kh, kw, H_out, W_out = columns.shape[2:]
    x = xp.zeros(padded_shape, dtype=columns.dtype)
    for i in range(kh):
        for j in range(kw):
            x[window_slices(i, j, (H_out, W_out), stride, dilation)] += columns[:, :, i, j]
    return x


def pad_image(x, padding):
    ph, pw = padding
    if not (ph or pw):
        return x
    return array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


class Conv2d(Function):
    """y[b, o, p, q] = sum_c sum_i sum_j W[o, c, i, j] x_pad[b, c, p*sh + i*dh, q*sw + j*dw] + b_o

    (cross-correlation, as every library computes "convolution"; F12 in two dimensions, see
    nn/conv.py for how it relates to the document's x_{j-k}). With the windows unfolded into
    columns X (B, C*kh*kw, L), L = H_out * W_out, and W2 = W reshaped to (O, C*kh*kw):
        Y = W2 X + b
        dL/dW2 = sum_b dY X^T,   dL/db = sum over b, p, q of dY,   dL/dX = W2^T dY -> fold
    """

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        check_float("conv2d", "input", x)
        B, C, H, W = x.shape
        O, _, kh, kw = weight.shape
        out_hw = (output_size(H, kh, stride[0], padding[0], dilation[0]),
                  output_size(W, kw, stride[1], padding[1], dilation[1]))
        padded = pad_image(x, padding)  # (B, C, Hp, Wp)
        columns = unfold(padded, (kh, kw), stride, dilation, out_hw).reshape(B, C * kh * kw, -1)  # (B, CKK, L)
        kernel_rows = weight.reshape(O, C * kh * kw)  # (O, CKK)
        out = kernel_rows @ columns  # (B, O, L)
        if bias is not None:
            out += bias[:, None]
        self.save_for_backward(columns, kernel_rows)
        self.geometry = (x.shape, padded.shape, weight.shape, out_hw, stride, padding, dilation)
        return out.reshape((B, O) + out_hw)  # (B, O, H_out, W_out)

    def backward(self, grad):
        columns, kernel_rows = self.saved
        x_shape, padded_shape, weight_shape, out_hw, stride, padding, dilation = self.geometry
        xp = array_module(grad)
        B, O, kh, kw = x_shape[0], weight_shape[0], weight_shape[2], weight_shape[3]
        grad_out = grad.reshape(B, O, -1)  # (B, O, L)
        grad_weight = xp.tensordot(grad_out, columns, axes=([0, 2], [0, 2])).reshape(weight_shape)
        grad_bias = grad_out.sum(axis=(0, 2)) if len(self.needs_input_grad) > 2 else None
        grad_x = None
        if self.needs_input_grad[0]:
            grad_columns = (kernel_rows.T @ grad_out).reshape((B, x_shape[1], kh, kw) + out_hw)
            grad_padded = fold(grad_columns, padded_shape, stride, dilation)  # (B, C, Hp, Wp)
            grad_x = grad_padded[:, :, padding[0]:padding[0] + x_shape[2], padding[1]:padding[1] + x_shape[3]]
        return grad_x, grad_weight, grad_bias


class MaxPool2d(Function):
    """y[b, c, p, q] = max over the window (i, j) of x[b, c, p*sh + i, q*sw + j]

    dL/dx: each window's gradient goes to the one pixel that held its maximum (the argmax) and
    nowhere else; a pixel that is the maximum of several overlapping windows collects each of
    their gradients. Ties: the first maximum in row-major order within the window gets it all
    (as PyTorch's CPU kernel does), so the gradient is still a subgradient and sums are kept.
    """

    def forward(self, x, kernel=(2, 2), stride=(2, 2)):
        check_float("max_pool2d", "input", x)
        xp = array_module(x)
        out_hw = (output_size(x.shape[2], kernel[0], stride[0]), output_size(x.shape[3], kernel[1], stride[1]))
        windows = unfold(x, kernel, stride, (1, 1), out_hw)  # (B, C, kh, kw, H_out, W_out)
        windows = windows.reshape(x.shape[:2] + (-1,) + out_hw)  # (B, C, kh*kw, H_out, W_out)
        argmax = windows.argmax(axis=2)  # the first maximum of each window
        self.save_for_backward(argmax)
        self.geometry = (x.shape, kernel, stride)
        return xp.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, grad):
        (argmax,) = self.saved
        x_shape, (kh, kw), stride = self.geometry
        xp = array_module(grad)
        is_argmax = xp.arange(kh * kw)[:, None, None] == argmax[:, :, None]  # (B, C, kh*kw, H_out, W_out)
        grad_windows = (is_argmax * grad[:, :, None]).reshape(x_shape[:2] + (kh, kw) + grad.shape[2:])
        return fold(grad_windows, x_shape, stride, (1, 1))  # (B, C, H, W)
