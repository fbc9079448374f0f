"""Gradient clipping by the global norm."""

from __future__ import annotations

import math

from ..dispatch import dispatchable


@dispatchable
def squared_norm(g) -> float:
    """||g||^2, the sum of the squares of g's elements. Fast version: fast/cpu/clip.py."""
    return float((g * g).sum())


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    total = sqrt(sum over parameters of ||g||^2);  g <- g * min(1, max_norm / (total + 1e-6))
    Returns the norm before clipping (worth logging: spikes show instabilities).
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(squared_norm(p.grad) for p in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for p in grads:
            p.grad = p.grad * p.grad.dtype.type(scale)
    return total
