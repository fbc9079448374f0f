"""Adam's update as one compiled pass over each parameter, in row blocks on every core.

The reference is ``adam_update`` in optim/adam.py: seven NumPy passes over theta, m and v. The
kernel (kernels.adam_update) makes the same float32 operations in the same order, without
fast-math liberties, so the two agree bitwise (tests/fast/test_parity.py).
"""

from __future__ import annotations

import math

import numpy as np

from ...dispatch import register
from ...optim.adam import adam_update
from . import kernels
from .parallel import parallel_rows


def contiguous_state(theta, grad, exp_avg, exp_avg_sq, **hyperparameters) -> bool:
    """Flat views of theta, m and v are updated in place: each must be C-contiguous."""
    return all(a.flags.c_contiguous for a in (theta, exp_avg, exp_avg_sq))


@register(adam_update, "cpu.adam_update", when=contiguous_state, available=kernels.compiled_available)
def compiled_adam_update(theta, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                         decoupled, step) -> None:
    decoupled = bool(weight_decay and decoupled)
    # the scalars as NumPy's float32 arithmetic sees them (a Python float meeting a float32
    # array is rounded to float32 first)
    scalars = [1 - lr * weight_decay if decoupled else 1.0,  # theta *= shrink (AdamW)
               0.0 if decoupled else weight_decay,  # g = grad + l2 theta (Adam)
               beta1, 1 - beta1, beta2, 1 - beta2, math.sqrt(1 - beta2**step), eps,
               lr / (1 - beta1**step)]
    scalars = [theta.dtype.type(value) for value in scalars]
    flat = [a.reshape(-1) for a in (theta, exp_avg, exp_avg_sq)]
    g = np.ascontiguousarray(grad, dtype=theta.dtype).reshape(-1)
    theta, m, v = flat
    parallel_rows(lambda rows: kernels.adam_update(theta[rows], g[rows], m[rows], v[rows], *scalars),
                  theta.size, 1)
