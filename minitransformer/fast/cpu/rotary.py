"""Rotary position embeddings as one compiled kernel each way (decoder_kernels.rotate_pairs),
blocks of the batch on every core.

The reference is ``RotaryEmbedding`` in ops/rotary.py: NumPy slices x into its two halves (or
its even and odd channels), makes four products and two sums, and joins the halves again with a
concatenation: eight passes over memory and as many temporaries, plus, in a Llama, a copy of the
transposed q or k. The kernel reads x where it lies (a strided view is fine) and writes each
rotated pair once. It takes the common case, one (T, D/2) table of angles shared by every
sequence and head (positions (T,)); per-sequence positions (B, T) go to the reference. The
arithmetic is the reference's, operation for operation, so the results are bitwise the same.
"""

from __future__ import annotations

import math

import numpy as np

from ...dispatch import register
from ...ops.rotary import RotaryEmbedding
from . import decoder_kernels, kernels
from .parallel import parallel_rows

_FORWARD, _BACKWARD = np.float32(1), np.float32(-1)  # turn by the angle, or by minus it (R^T)


def one_table(x, cos, sin, interleaved=False) -> bool:
    """x (..., T, D) with cos and sin one (T, D/2) table each, NumPy arrays of x's dtype (they
    come as parameters, which dispatch does not look at)."""
    return (x.ndim >= 2 and all(type(t) is np.ndarray and t.dtype == x.dtype and t.ndim == 2
                                and t.shape == (x.shape[-2], x.shape[-1] // 2) for t in (cos, sin)))


def as_4d(x):
    """x (..., T, D) as (B, H, T, D): a view, except for more than two leading axes (a reshape)."""
    if x.ndim < 4:
        return x.reshape((1,) * (4 - x.ndim) + x.shape)
    return x.reshape((-1,) + x.shape[-3:])


def rotate(x, cos, sin, direction, interleaved):
    """Every pair of x (..., T, D) turned by its angle (times ``direction``), into a new array."""
    x4 = as_4d(x)  # (B, H, T, D)
    out = np.empty(x4.shape, dtype=x.dtype)
    parallel_rows(lambda rows: decoder_kernels.rotate_pairs(x4[rows], cos, sin, direction, interleaved,
                                                            out[rows]), x4.shape[0], math.prod(x4.shape[1:]))
    return out.reshape(x.shape)


@register(RotaryEmbedding, "cpu.rotary_embedding", when=one_table, available=kernels.compiled_available)
class CompiledRotaryEmbedding(RotaryEmbedding):
    """y = R x in one pass; dL/dx = R^T dL/dy, the rotation by minus the angle, in another."""

    def forward(self, x, cos, sin, interleaved=False):
        self.interleaved = interleaved
        self.save_for_backward(cos, sin)
        return rotate(x, cos, sin, _FORWARD, bool(interleaved))

    def backward(self, grad):
        cos, sin = self.saved
        return rotate(grad, cos, sin, _BACKWARD, self.interleaved)
