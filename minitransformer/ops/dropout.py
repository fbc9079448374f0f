"""Inverted dropout (Srivastava et al. 2014): zero each value with probability p in training
and scale the survivors by 1/(1-p), so nothing changes at evaluation time."""

from __future__ import annotations

from ..autograd import Function
from ..backend import device_of, generator


def keep_mask(shape, p: float, dtype, device: str):
    """1/(1-p) with probability 1-p, else 0, from the framework's seeded generator."""
    keep = generator(device).random(shape, dtype=dtype) >= p
    return keep.astype(dtype) * (1.0 / (1.0 - p)) if p < 1 else keep.astype(dtype)


class Dropout(Function):
    """y = x * m / (1 - p),  m_i ~ Bernoulli(1 - p);   dL/dx = dL/dy * m / (1 - p)"""

    def forward(self, x, p):
        mask = keep_mask(x.shape, p, x.dtype, device_of(x))
        self.save_for_backward(mask)
        return x * mask

    def backward(self, grad):
        (mask,) = self.saved
        return grad * mask
