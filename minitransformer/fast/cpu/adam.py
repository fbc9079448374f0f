"""Adam's update as one compiled pass over each parameter, in row blocks on every core.

The reference is ``adam_update`` in optim/adam.py: seven NumPy passes over theta, m and v. The
kernel (kernels.adam_update) makes the same float32 operations in the same order, without
fast-math liberties, so the two agree bitwise (tests/fast/test_parity.py).
"""

from __future__ import annotations

import numpy as np

from ...dispatch import register
from ..adam_scalars import adam_kernel_scalars
from ...optim.adam import adam_update
from . import kernels
from .parallel import parallel_rows


def contiguous_state(theta, grad, exp_avg, exp_avg_sq, **hyperparameters) -> bool:
    """Flat views of theta, m and v are updated in place: each must be C-contiguous."""
    return all(a.flags.c_contiguous for a in (theta, exp_avg, exp_avg_sq))


@register(adam_update, "cpu.adam_update", when=contiguous_state, available=kernels.compiled_available)
def compiled_adam_update(theta, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                         decoupled, step) -> None:
    scalars = adam_kernel_scalars(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                  decoupled=decoupled, step=step, dtype=theta.dtype)
    flat = [a.reshape(-1) for a in (theta, exp_avg, exp_avg_sq)]
    g = np.ascontiguousarray(grad, dtype=theta.dtype).reshape(-1)
    theta, m, v = flat
    parallel_rows(lambda rows: kernels.adam_update(theta[rows], g[rows], m[rows], v[rows], *scalars),
                  theta.size, 1)
