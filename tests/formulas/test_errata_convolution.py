"""F12, document 003 section 3.2: c_ij = sum_k w_ik x_{j-k} + b_i is true convolution (the kernel
is applied reversed); deep-learning layers, nn.Conv1d included, compute the cross-correlation
sum_k w_ik x_{j+k} + b_i. The two agree when the kernel is reversed and the input is padded by
K - 1 zeros at the front. Taught in lessons/14_convolution_and_recurrence.md.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F


def _F12(x, w, b):
    """c[i, j] = sum_k w[i, k] x[j - k] + b[i], x_{j-k} = 0 outside the sequence, j = 0..L-1."""
    L, (C_out, K) = len(x), w.shape
    c = np.zeros((C_out, L))
    for i in range(C_out):
        for j in range(L):
            c[i, j] = sum(w[i, k] * x[j - k] for k in range(K) if j - k >= 0) + b[i]
    return c


def test_F12_is_numpy_convolution():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(15), rng.standard_normal((3, 4)), rng.standard_normal(3)
    expected = np.stack([np.convolve(x, w[i])[:15] + b[i] for i in range(3)])
    np.testing.assert_allclose(_F12(x, w, b), expected, atol=1e-12)


def test_errata_convolution_conv1d_is_cross_correlation_equal_to_F12_with_the_kernel_reversed():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(15), rng.standard_normal((3, 4)), rng.standard_normal(3)
    padded = mt.tensor(np.concatenate([np.zeros(3), x]).reshape(1, 1, -1), dtype=np.float64)
    flipped = mt.tensor(w[:, ::-1].copy().reshape(3, 1, 4), dtype=np.float64)
    same = mt.tensor(w.reshape(3, 1, 4), dtype=np.float64)
    bias = mt.tensor(b, dtype=np.float64)
    np.testing.assert_allclose(F.conv1d(padded, flipped, bias).numpy()[0], _F12(x, w, b), atol=1e-10)
    # with the kernel as written, the library's operation is not F12 (unless w is a palindrome)
    assert not np.allclose(F.conv1d(padded, same, bias).numpy()[0], _F12(x, w, b), atol=1e-3)
