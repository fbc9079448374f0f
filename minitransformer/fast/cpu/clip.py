"""The squared norm behind gradient clipping as a BLAS dot product of g with itself.

The reference is ``squared_norm`` in optim/clip.py, (g * g).sum(): a temporary the size of g
and two passes. ``np.vdot(g, g)`` is one pass and no temporary (it adds in another order:
rounding).
"""

from __future__ import annotations

import numpy as np

from ...dispatch import register
from ...optim.clip import squared_norm


@register(squared_norm, "cpu.squared_norm", dtypes=(np.float32, np.float64))
def dot_squared_norm(g) -> float:
    return float(np.vdot(g, g))
