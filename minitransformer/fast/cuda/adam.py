"""Adam's (and AdamW's) update on a GPU as one elementwise CUDA kernel per parameter
(kernels.adam_update): theta, m and v read and written once, where the reference's CuPy code
makes about a dozen passes.

The reference is ``adam_update`` in optim/adam.py; the kernel makes the same float32
operations in the same order (the CUDA compiler may fuse a multiply and an add: equal to
rounding, not bitwise). Off unless MINITRANSFORMER_CUDA_KERNELS=1.
"""

from __future__ import annotations

from . import kernels, kernels_enabled
from ...dispatch import register
from ..adam_scalars import adam_kernel_scalars
from ...optim.adam import adam_update


def same_shapes(theta, grad, exp_avg, exp_avg_sq, **hyperparameters) -> bool:
    """An elementwise kernel takes any strides; theta, m, v and the gradient must match."""
    return all(a.shape == theta.shape for a in (exp_avg, exp_avg_sq, grad))


@register(adam_update, "cuda.adam_update", device="cuda", when=same_shapes, available=kernels_enabled)
def cuda_adam_update(theta, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                     decoupled, step) -> None:
    scalars = adam_kernel_scalars(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                  decoupled=decoupled, step=step, dtype=theta.dtype)
    kernels.adam_update()(grad.astype(theta.dtype, copy=False), *scalars,
                          theta, exp_avg, exp_avg_sq)
