"""Adam's (and AdamW's) update on a GPU as one elementwise CUDA kernel per parameter
(kernels.adam_update): theta, m and v read and written once, where the reference's CuPy code
makes about a dozen passes.

The reference is ``adam_update`` in optim/adam.py; the kernel makes the same float32
operations in the same order (the CUDA compiler may fuse a multiply and an add: equal to
rounding, not bitwise). Off unless MINITRANSFORMER_CUDA_KERNELS=1.
"""

from __future__ import annotations

import math

from . import kernels, kernels_enabled
from ...dispatch import register
from ...optim.adam import adam_update


def same_shapes(theta, grad, exp_avg, exp_avg_sq, **hyperparameters) -> bool:
    """An elementwise kernel takes any strides; theta, m, v and the gradient must match."""
    return all(a.shape == theta.shape for a in (exp_avg, exp_avg_sq, grad))


@register(adam_update, "cuda.adam_update", device="cuda", when=same_shapes, available=kernels_enabled)
def cuda_adam_update(theta, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                     decoupled, step) -> None:
    decoupled = bool(weight_decay and decoupled)
    scalars = [1 - lr * weight_decay if decoupled else 1.0,  # theta *= shrink (AdamW)
               0.0 if decoupled else weight_decay,  # g = grad + l2 theta (Adam)
               beta1, 1 - beta1, beta2, 1 - beta2, math.sqrt(1 - beta2**step), eps,
               lr / (1 - beta1**step)]
    kernels.adam_update()(grad.astype(theta.dtype, copy=False), *(theta.dtype.type(s) for s in scalars),
                          theta, exp_avg, exp_avg_sq)
