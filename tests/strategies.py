"""Hypothesis strategies shared by all tests: shapes, broadcastable pairs, arrays of values."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Small dims (gradcheck costs two forward passes per element) including size-1 dims.
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
matrix_shapes = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5)


def broadcastable_pair(num_shapes: int = 2, max_dims: int = 4):
    """Shapes that broadcast together, e.g. ((3, 1, 2), (4, 1)) -> (3, 4, 2)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=0, max_dims=max_dims,
                                             min_side=1, max_side=4).map(lambda r: r.input_shapes)


def arrays(shape, low: float = -3.0, high: float = 3.0, dtype=np.float64):
    """Float arrays of a shape (or a shape strategy) with values in [low, high]."""
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(dtype, shape, elements=elements)


def positive_arrays(shape, low: float = 0.1, high: float = 5.0):
    return arrays(shape, low, high)


def axes_for(ndim: int):
    """None, a single axis (possibly negative) or a tuple of distinct axes for an ndim array."""
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
    return st.one_of(st.none(), single, several)


def away_from_kinks(values: np.ndarray, kinks=(0.0,), margin: float = 1e-3) -> np.ndarray:
    """Nudge values off non-differentiable points so finite differences stay valid."""
    values = values.copy()
    for kink in kinks:
        close = np.abs(values - kink) < margin
        values[close] = kink + margin * 2
    return values


def distinct_arrays(shape, low: float = -3.0, high: float = 3.0, spacing: float = 1 / 64):
    """Float arrays whose values differ pairwise by at least ``spacing`` (no ties, and none
    that a finite-difference nudge could create, for max/min), values in [low, high]."""
    elements = st.integers(int(low / spacing), int(high / spacing)).map(lambda i: i * spacing)
    return hnp.arrays(np.float64, shape, elements=elements, unique=True)


def large_arrays(shape, magnitude: float = 1e4):
    """Arrays whose values reach +-magnitude, for the numerically stable ops."""
    return arrays(shape, -magnitude, magnitude)


@st.composite
def matmul_shapes(draw):
    """(a_shape, b_shape) for a @ b: 1-D, 2-D or batched with broadcasting batch dims."""
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    batch_a, batch_b = draw(broadcastable_pair(2, max_dims=2))
    a_shape = (k,) if draw(st.booleans()) and not batch_a else batch_a + (m, k)
    b_shape = (k,) if draw(st.booleans()) and not batch_b else batch_b + (k, n)
    return a_shape, b_shape
