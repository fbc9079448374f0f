"""Rotary position embeddings (RoPE, Su et al. 2021, "RoFormer"): position m turns each pair of
a query's or key's channels by the angle m * theta_i, so that the score q_m . k_n depends on
the positions only through m - n (the proof is in lessons/16).

Two ways to pair the channels of a head of size D are in use, and checkpoints follow one or
the other:
- ``interleaved``: pairs (x_0, x_1), (x_2, x_3), ... (the RoFormer paper and Meta's Llama code,
  which views the pairs as complex numbers);
- rotate-half (the default): pairs (x_i, x_{i + D/2}) (Hugging Face's ``rotate_half``, used by its
  Llama, Qwen, Mistral and Gemma checkpoints, whose q and k weights are permuted to match).
Both rotate pair i by the same angle m * theta_i, theta_i = base^(-2i / D).
"""

from __future__ import annotations

import math

from ..autograd import Function
from ..backend import array_module
from ..tensor import describe
from .validate import check_float

LLAMA3_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def check_scaling(scaling) -> None:
    """``scaling``: None, or Llama 3.1's frequency scaling as its config writes it."""
    if scaling is None:
        return
    if not isinstance(scaling, dict) or scaling.get("rope_type", "llama3") != "llama3":
        raise ValueError(
            f"rotary_embedding: scaling must be None or a dict with rope_type 'llama3' and keys "
            f"{', '.join(LLAMA3_SCALING_KEYS)}; got {scaling!r}"
        )
    missing = [k for k in LLAMA3_SCALING_KEYS if k not in scaling]
    if missing:
        raise ValueError(f"rotary_embedding: Llama 3 scaling is missing {missing}; got {scaling!r}")
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    if not (factor >= 1 and 0 < low < high and scaling["original_max_position_embeddings"] > 0):
        raise ValueError(
            "rotary_embedding: Llama 3 scaling needs factor >= 1, 0 < low_freq_factor < "
            f"high_freq_factor and original_max_position_embeddings > 0; got {scaling!r}"
        )


def inverse_frequencies(head_dim: int, theta: float, scaling: dict | None, xp):
    """theta_i = base^(-2i / D) for i = 0 .. D/2 - 1, float64, (D/2,).

    Llama 3.1's scaling (``scaling``, the ``rope_scaling`` of its config.json) stretches the
    slow rotations to reach a longer context, with L = original_max_position_embeddings and
    wavelength lambda_i = 2 pi / theta_i:
        lambda_i < L / high_freq_factor:  theta_i unchanged (fast rotations: local order)
        lambda_i > L / low_freq_factor:   theta_i / factor
        in between:  (1 - s) theta_i / factor + s theta_i,
                     s = (L / lambda_i - low_freq_factor) / (high_freq_factor - low_freq_factor)
    """
    inv_freq = 1.0 / theta ** (xp.arange(0, head_dim, 2, dtype=xp.float64) / head_dim)
    if scaling is None:
        return inv_freq
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    context = scaling["original_max_position_embeddings"]
    wavelength = 2 * math.pi / inv_freq
    smooth = (context / wavelength - low) / (high - low)
    scaled = xp.where(wavelength > context / low, inv_freq / factor, inv_freq)
    medium = (wavelength >= context / high) & (wavelength <= context / low)
    return xp.where(medium, (1 - smooth) * inv_freq / factor + smooth * inv_freq, scaled)


def rotation_tables(positions, inv_freq, dtype):
    """cos and sin of every angle m * theta_i: (*positions.shape, D/2) each, in ``dtype``.
    The angles are formed in float64: m * theta_i reaches 1e5 and more for long contexts, where
    float32 would lose the fractional part that the rotation depends on."""
    xp = array_module(inv_freq)
    angles = positions.astype(xp.float64)[..., None] * inv_freq  # (..., T, D/2)
    return xp.cos(angles).astype(dtype), xp.sin(angles).astype(dtype)


def _pairs(x, interleaved: bool):
    """The two members of every pair, (..., D/2) each."""
    if interleaved:
        return x[..., 0::2], x[..., 1::2]
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


def _join(first, second, interleaved: bool):
    xp = array_module(first)
    if interleaved:  # (..., D/2, 2) -> (..., D): each pair side by side again
        return xp.stack([first, second], axis=-1).reshape(first.shape[:-1] + (2 * first.shape[-1],))
    return xp.concatenate([first, second], axis=-1)


class RotaryEmbedding(Function):
    """Each pair (x1, x2) of channels turned by its angle, cos and sin given (``rotation_tables``):

        y1 = x1 cos - x2 sin,   y2 = x1 sin + x2 cos
    A rotation R is orthogonal, so dL/dx = R^T dL/dy, the rotation by minus the angle:
        dx1 = g1 cos + g2 sin,  dx2 = -g1 sin + g2 cos
    x (..., T, D) and cos, sin broadcastable to (..., T, D/2).
    """

    def forward(self, x, cos, sin, interleaved=False):
        x1, x2 = _pairs(x, interleaved)
        self.interleaved = interleaved
        self.save_for_backward(cos, sin)
        return _join(x1 * cos - x2 * sin, x1 * sin + x2 * cos, interleaved)

    def backward(self, grad):
        cos, sin = self.saved
        g1, g2 = _pairs(grad, self.interleaved)
        return _join(g1 * cos + g2 * sin, g2 * cos - g1 * sin, self.interleaved)


def check_rotary_inputs(x, positions, theta) -> None:
    check_float("rotary_embedding", "input", x)
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(
            f"rotary_embedding: input is {describe(x)}; expected (..., T, D) with an even D "
            "(the channels are rotated in pairs)"
        )
    if not (theta > 0 and math.isfinite(theta)):
        raise ValueError(f"rotary_embedding: theta must be a positive number, got {theta}")
    if positions.dtype.kind not in "iu":
        raise TypeError(f"rotary_embedding: positions must be integers, got {describe(positions)}")
