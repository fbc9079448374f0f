"""The scalars of one Adam step as the fused kernels (CPU and CUDA) take them."""

from __future__ import annotations

import math


def adam_kernel_scalars(*, lr, beta1, beta2, eps, weight_decay, decoupled, step, dtype) -> list:
    """[shrink, l2, beta1, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps, lr / (1 - beta1^t)]
    in ``dtype``, as NumPy's float32 arithmetic sees them (a Python float meeting a float32
    array is rounded to float32 first): theta *= shrink is AdamW's decay (1 for Adam), and
    g = grad + l2 theta is Adam's L2 penalty (0 for AdamW)."""
    decoupled = bool(weight_decay and decoupled)
    values = [1 - lr * weight_decay if decoupled else 1.0, 0.0 if decoupled else weight_decay,
              beta1, 1 - beta1, beta2, 1 - beta2, math.sqrt(1 - beta2**step), eps, lr / (1 - beta1**step)]
    return [dtype.type(value) for value in values]
