"""F12 (003 section 3.2): c_ij = sum_{k=0}^{K-1} w_ik x_{j-k} + b_i, the textbook convolution
(it walks the input backwards, flipping the kernel). Conv1d and F.conv1d compute the
cross-correlation y_ij = sum_k w_ik x_{j+k} + b_i, as PyTorch and Keras do. Conv1d's docstring
states both relations; each is checked here:
  1. the layer is the cross-correlation;
  2. the document's c with kernel w equals the layer with kernel w reversed, on the input
     padded by K - 1 zeros in front (x_{j-k} = 0 before the sequence starts).
For a kernel that is not a palindrome the two differ, so F12 as written is not what the layer
computes; since kernels are learned, either can represent the other."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from tests.strategies import arrays


def literal_F12(x, w, b):
    """c_ij for one input channel: x (L,), w (C_out, K), b (C_out,) -> (C_out, L)."""
    C_out, K = w.shape
    c = np.zeros((C_out, len(x)))
    for i in range(C_out):
        for j in range(len(x)):
            c[i, j] = sum(w[i, k] * x[j - k] for k in range(K) if j - k >= 0) + b[i]
    return c


@st.composite
def signals(draw):
    K = draw(st.integers(1, 4))
    L = draw(st.integers(K, 8))
    C_out = draw(st.integers(1, 3))
    return draw(arrays((L,))), draw(arrays((C_out, K))), draw(arrays((C_out,)))


@given(case=signals())
def test_F12_relation_1_conv1d_is_the_cross_correlation(case):
    x, w, b = case
    C_out, K = w.shape
    layer = nn.Conv1d(1, C_out, K)
    layer.weight.data, layer.bias.data = w[:, None, :], b  # float64 weights
    out = layer(mt.tensor(x[None, None, :], dtype=np.float64)).numpy()[0]
    expected = np.array([[sum(w[i, k] * x[j + k] for k in range(K)) + b[i] for j in range(len(x) - K + 1)]
                         for i in range(C_out)])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@given(case=signals())
def test_F12_relation_2_the_documents_convolution_is_the_flipped_kernel_on_front_padding(case):
    x, w, b = case
    K = w.shape[1]
    padded = np.concatenate([np.zeros(K - 1), x])[None, None, :]  # K - 1 zeros in front only
    out = F.conv1d(mt.tensor(padded, dtype=np.float64), mt.tensor(w[:, None, ::-1].copy(), dtype=np.float64),
                   mt.tensor(b, dtype=np.float64)).numpy()[0]
    np.testing.assert_allclose(out, literal_F12(x, w, b), rtol=1e-12, atol=1e-12)
    for i in range(w.shape[0]):  # the document's formula is NumPy's convolution, truncated
        np.testing.assert_allclose(literal_F12(x, w, b)[i], np.convolve(x, w[i])[: len(x)] + b[i], rtol=1e-12, atol=1e-12)


def test_F12_as_written_differs_from_the_layer_for_an_asymmetric_kernel():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    w, b = np.array([[1.0, 0.0, -1.0]]), np.zeros(1)
    layer_out = F.conv1d(mt.tensor(np.concatenate([np.zeros(2), x])[None, None], dtype=np.float64),
                         mt.tensor(w[:, None, :], dtype=np.float64)).numpy()[0, 0]
    document = literal_F12(x, w, b)[0]
    np.testing.assert_allclose(document, [1.0, 2.0, 2.0, 2.0, 2.0])  # x_j - x_{j-2}
    np.testing.assert_allclose(layer_out, -document)  # the unflipped kernel: x_{j-2} - x_j
