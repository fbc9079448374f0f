"""The embedding's gradient, the scatter-add of rows, on a GPU: one thread per number with
atomicAdd (kernels.add_rows_at), instead of cupyx.scatter_add's general indexing.

The reference is ``add_rows_at`` in ops/embedding.py. A repeated id's rows are added in an
unspecified order, so sums agree to rounding. Off unless MINITRANSFORMER_CUDA_KERNELS=1.
"""

from __future__ import annotations

import numpy as np

from . import kernels, kernels_enabled
from ...backend import array_module
from ...dispatch import register
from ...ops.embedding import add_rows_at

THREADS = 256


def rows_of_a_table(table, ids, rows) -> bool:
    """A contiguous (V, C) float32 table, (N,) integer ids inside it and (N, C) rows: the
    kernel does not check bounds, so ids outside the table go to the reference (which raises)."""
    return (table.ndim == 2 and table.flags.c_contiguous and ids.ndim == 1
            and ids.dtype.kind in "iu" and ids.size > 0 and rows.shape == ids.shape + table.shape[1:]
            and bool(ids.min() >= 0) and bool(ids.max() < table.shape[0]))


@register(add_rows_at, "cuda.add_rows_at", device="cuda", when=rows_of_a_table, available=kernels_enabled)
def cuda_add_rows_at(table, ids, rows) -> None:
    xp = array_module(table)
    ids = xp.ascontiguousarray(ids, dtype=np.int64)
    rows = xp.ascontiguousarray(rows, dtype=table.dtype)
    n_values = rows.size
    blocks = (n_values + THREADS - 1) // THREADS
    kernels.row_kernel("add_rows_at")((blocks,), (THREADS,),
                                      (table, ids, rows, np.int64(n_values), np.int32(table.shape[1])))
