"""ops/conv.py: 2-D convolution equals its sum written as loops, with the output size formula,
and max-pooling picks each window's maximum and routes the gradient to it (ties: the first)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.helpers import assert_close, host, tensor
from tests.strategies import arrays, distinct_arrays


def conv2d_loop(x, weight, bias, stride, padding, dilation):
    """y[b, o, p, q] = sum_c sum_i sum_j W[o, c, i, j] x_pad[b, c, p*sh + i*dh, q*sw + j*dw] + b_o,
    one output at a time."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    B, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    H_out = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    W_out = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((B, O, H_out, W_out))
    for b, o, p, q in np.ndindex(y.shape):
        window = x[b, :, p * sh:p * sh + dh * (kh - 1) + 1:dh, q * sw:q * sw + dw * (kw - 1) + 1:dw]
        y[b, o, p, q] = np.sum(window * weight[o]) + (bias[o] if bias is not None else 0.0)
    return y


def max_pool_loop(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    H_out, W_out = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    y = np.zeros(x.shape[:2] + (H_out, W_out))
    for b, c, p, q in np.ndindex(y.shape):
        y[b, c, p, q] = x[b, c, p * sh:p * sh + kh, q * sw:q * sw + kw].max()
    return y


@st.composite
def conv_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # each side at least the dilated kernel minus the padding, so one window fits
    H = draw(st.integers(max(1, dilation[0] * (kernel[0] - 1) + 1 - 2 * padding[0]), 6))
    W = draw(st.integers(max(1, dilation[1] * (kernel[1] - 1) + 1 - 2 * padding[1]), 6))
    B, C, O = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    x = draw(arrays((B, C, H, W)))
    weight = draw(arrays((O, C) + kernel))
    bias = draw(st.one_of(st.none(), arrays((O,))))
    return x, weight, bias, stride, padding, dilation


@given(case=conv_cases())
def test_conv2d_equals_the_loop_with_the_output_size_formula(xp, case):
    x, weight, bias, stride, padding, dilation = case
    inputs = [tensor(xp, x), tensor(xp, weight)] + ([] if bias is None else [tensor(xp, bias)])
    out = F.conv2d(*inputs[:2], inputs[2] if bias is not None else None, stride, padding, dilation)
    expected = conv2d_loop(x, weight, bias, stride, padding, dilation)
    H_out = (x.shape[2] + 2 * padding[0] - dilation[0] * (weight.shape[2] - 1) - 1) // stride[0] + 1
    assert out.shape == expected.shape and out.shape[2] == H_out
    assert_close(out, expected, rtol=1e-10, atol=1e-10)


@given(case=conv_cases())
def test_conv2d_gradients_match_finite_differences(xp, case):
    x, weight, bias, stride, padding, dilation = case
    inputs = [tensor(xp, a, requires_grad=True) for a in (x, weight) + (() if bias is None else (bias,))]

    def conv(x, weight, bias=None):
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    assert mt.gradcheck(conv, inputs)


def test_conv2d_backward_adds_where_windows_overlap():
    """A 3x3 all-ones kernel with stride 1 over a 4x4 image: the centre pixels sit in all four
    windows and collect four gradients, the corners one (col2im must add, not assign)."""
    x = mt.tensor(np.zeros((1, 1, 4, 4)), dtype=np.float64, requires_grad=True)
    F.conv2d(x, mt.tensor(np.ones((1, 1, 3, 3)), dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
             draw(st.integers(kernel[0], 6)), draw(st.integers(kernel[1], 6)))
    return draw(distinct_arrays(shape)), kernel, stride


@given(case=pool_cases())
def test_max_pool2d_picks_each_windows_maximum_and_passes_gradcheck(xp, case):
    x, kernel, stride = case
    out = F.max_pool2d(tensor(xp, x), kernel, stride)
    assert_close(out, max_pool_loop(x, kernel, stride), rtol=0, atol=0)
    # distinct values, at least 1/64 apart: gradcheck's nudges never change an argmax
    assert mt.gradcheck(lambda t: F.max_pool2d(t, kernel, stride), [tensor(xp, x, requires_grad=True)])


@given(case=pool_cases(), data=st.data())
def test_max_pool2d_gradient_goes_to_the_argmax_only(xp, case, data):
    x, kernel, stride = case
    inputs = tensor(xp, x, requires_grad=True)
    out = F.max_pool2d(inputs, kernel, stride)
    upstream = data.draw(arrays(out.shape))
    (out * tensor(xp, upstream)).sum().backward()
    expected = np.zeros_like(x)
    for b, c, p, q in np.ndindex(out.shape):
        window = x[b, c, p * stride[0]:p * stride[0] + kernel[0], q * stride[1]:q * stride[1] + kernel[1]]
        i, j = np.unravel_index(np.argmax(window), window.shape)
        expected[b, c, p * stride[0] + i, q * stride[1] + j] += upstream[b, c, p, q]
    assert_close(inputs.grad, expected, rtol=1e-12, atol=1e-12)


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 2.0, 2.0],
                    [5.0, 5.0, 2.0, 2.0]]]])  # window 1: max 5 three times; window 2: all equal
    inputs = mt.tensor(x, dtype=np.float64, requires_grad=True)
    out = F.max_pool2d(inputs, 2)
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), [[[[5.0, 2.0]]]])
    np.testing.assert_array_equal(host(inputs.grad), [[[[0, 1, 1, 0], [0, 0, 0, 0]]]])


def test_max_pool2d_drops_rows_and_columns_that_do_not_fill_a_window():
    x = mt.tensor(np.arange(35.0).reshape(1, 1, 5, 7))
    np.testing.assert_array_equal(F.max_pool2d(x, 2).numpy()[0, 0], [[8, 10, 12], [22, 24, 26]])


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(mt.zeros(2, 3, 5), mt.zeros(4, 3, 3, 3)), "conv2d: input is .* expected images"),
    (lambda: F.conv2d(mt.zeros(1, 2, 5, 5), mt.zeros(4, 3, 3, 3)), "conv2d: input .* and weight .* don't fit"),
    (lambda: F.conv2d(mt.zeros(1, 3, 2, 5), mt.zeros(4, 3, 3, 3)), "conv2d: kernel height 3 .* larger"),
    (lambda: F.conv2d(mt.zeros(1, 3, 5, 5), mt.zeros(4, 3, 3, 3), stride=0), "conv2d: stride must be"),
    (lambda: F.conv2d(mt.zeros(1, 3, 5, 5), mt.zeros(4, 3, 3, 3), padding=(1, 2, 3)), "conv2d: padding must be"),
    (lambda: F.conv2d(mt.zeros(1, 3, 5, 5), mt.zeros(4, 3, 3, 3), mt.zeros(3)), r"conv2d: bias .* expected \(4,\)"),
    (lambda: F.max_pool2d(mt.zeros(1, 1, 1, 5), 2), "max_pool2d: kernel .* larger than the input"),
    (lambda: F.max_pool2d(mt.zeros(1, 5), 2), "max_pool2d: input is .* expected images"),
])
def test_conv_and_pool_reject_bad_input_in_one_line(call, message):
    with pytest.raises(ValueError, match=message):
        call()
