"""The embedding's gradient, the scatter-add of rows, as a compiled loop (~40x np.add.at).

The reference is ``add_rows_at`` in ops/embedding.py (``np.add.at``). The loop adds the rows in
the same order, one by one, so the sums are bitwise the same.
"""

from __future__ import annotations

import numpy as np

from ...dispatch import register
from ...ops.embedding import add_rows_at
from . import kernels


def rows_of_a_table(table, ids, rows) -> bool:
    """A (V, C) table, (N,) integer ids inside it and (N, C) rows: what the loop handles (it
    does not check bounds; every other case goes to np.add.at, which raises)."""
    return (table.ndim == 2 and ids.ndim == 1 and ids.dtype.kind in "iu" and ids.size > 0
            and rows.shape == ids.shape + table.shape[1:]
            and ids.min() >= 0 and ids.max() < table.shape[0])


@register(add_rows_at, "cpu.add_rows_at", when=rows_of_a_table, available=kernels.compiled_available)
def compiled_add_rows_at(table, ids, rows) -> None:
    kernels.scatter_add_rows(table, ids, np.ascontiguousarray(rows))
