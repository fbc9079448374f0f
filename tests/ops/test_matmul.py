"""ops/matmul.py: matmul of every rank (1-D, 2-D, batched with broadcasting batch dims) and the
fused linear layer, against NumPy and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer.functional as F
from tests.helpers import check_op, tensor
from tests.strategies import arrays, matmul_shapes


@given(data=st.data())
def test_matmul_matches_numpy(xp, data):
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    check_op(xp, lambda x, y: x @ y, np.matmul, a, b)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3,), (3,)),            # vector . vector -> scalar
    ((3,), (3, 2)),          # row vector
    ((2, 3), (3,)),          # column vector
    ((2, 3), (3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)),  # batch dims broadcast: (2, 1) with (4,)
    ((3,), (2, 3, 2)),
    ((2, 2, 3), (3,)),
    ((2, 2, 3), (3, 2)),     # the one-BLAS-call path for (..., K) @ (K, N)
])
def test_matmul_every_rank(xp, shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    out = check_op(xp, lambda x, y: x @ y, np.matmul, a, b)
    assert out.shape == np.matmul(a, b).shape


def test_matmul_non_contiguous_batched_operand(xp):
    # the transpose hands matmul a strided view, which must not take the reshape fast path blindly
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 2))
    check_op(xp, lambda x, y: x.transpose(1, 0, 2) @ y, lambda x, y: x.transpose(1, 0, 2) @ y, a, b)


def test_rmatmul_with_an_array(xp):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    out = xp.asarray(a) @ tensor(xp, b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-12)


@given(data=st.data(), bias=st.booleans())
def test_linear_matches_numpy(xp, data, bias):
    leading = data.draw(st.sampled_from([(), (3,), (2, 3), (2, 1, 2)]))
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x = data.draw(arrays(leading + (n_in,)))
    weight = data.draw(arrays((n_out, n_in)))
    if bias:
        b = data.draw(arrays((n_out,)))
        check_op(xp, F.linear, lambda x, w, b: x @ w.T + b, x, weight, b)
    else:
        check_op(xp, F.linear, lambda x, w: x @ w.T, x, weight)
