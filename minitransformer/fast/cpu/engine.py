"""The engine's gradient sums (autograd.py's ``add_gradients``) in row blocks on every core.

Gradients meet in backward where a tensor is used more than once: q, k and v's slices of one
projection, the residual stream at every block. For big arrays NumPy's one-thread add is worth
splitting; the sum of each element is the same single addition, so the result is bitwise a + b.
"""

from __future__ import annotations

import numpy as np

from ...autograd import add_gradients
from ...dispatch import register
from .parallel import MIN_PARALLEL_ELEMENTS, get_num_threads, parallel_rows


def big_and_alike(a, b) -> bool:
    return (a.shape == b.shape and a.dtype == b.dtype and a.size >= MIN_PARALLEL_ELEMENTS
            and a.flags.c_contiguous and b.flags.c_contiguous and get_num_threads() > 1)


@register(add_gradients, "cpu.add_gradients", dtypes=(np.float32, np.float64), when=big_and_alike)
def add_in_blocks(a, b):
    out = np.empty_like(a)
    flat_a, flat_b, flat_out = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    parallel_rows(lambda rows: np.add(flat_a[rows], flat_b[rows], out=flat_out[rows]), a.size, 1)
    return out
