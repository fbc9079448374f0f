"""ops/rotary.py through F.rotary_embedding: rotary position embeddings in both channel
pairings, against what a rotation promises (norms kept, scores that depend on m - n only,
rotations that compose), finite differences, and Llama 3.1's frequency scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.ops.rotary import inverse_frequencies
from tests.helpers import host, tensor
from tests.strategies import arrays

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
CONVENTIONS = [False, True]  # rotate-half (Hugging Face), interleaved (RoFormer, Meta)

# (..., T, D) with D even
rotary_shapes = hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4).map(
    lambda s: s[:-1] + (2 * s[-1],))


def rope(xp, x, positions=None, **kwargs) -> np.ndarray:
    return host(F.rotary_embedding(tensor(xp, x), positions, **kwargs))


def to_half_layout(x):
    """Channels (x0, x1, x2, x3, ...) reordered as (x0, x2, ..., x1, x3, ...): the interleaved
    pairs (x_2i, x_2i+1) become the rotate-half pairs (x_i, x_i+D/2)."""
    return np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)


@pytest.mark.parametrize("interleaved", CONVENTIONS)
@given(x=arrays(rotary_shapes), theta=st.sampled_from([10000.0, 500000.0, 3.0]))
def test_rotation_keeps_every_vectors_norm(xp, interleaved, x, theta):
    y = rope(xp, x, theta=theta, interleaved=interleaved)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("interleaved", CONVENTIONS)
@given(data=st.data())
def test_scores_depend_only_on_the_distance_between_positions(xp, interleaved, data):
    """q_m . k_n = q_{m+s} . k_{n+s}: what makes RoPE a relative position encoding."""
    d = 2 * data.draw(st.integers(1, 8))
    q, k = data.draw(arrays((1, d))), data.draw(arrays((1, d)))
    m, n, shift = (data.draw(st.integers(0, 5000)) for _ in range(3))

    def score(i, j):
        return float((rope(xp, q, [i], interleaved=interleaved) * rope(xp, k, [j], interleaved=interleaved)).sum())

    assert score(m, n) == pytest.approx(score(m + shift, n + shift), rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("interleaved", CONVENTIONS)
@given(x=arrays((3, 6)), m=st.integers(0, 1000), n=st.integers(0, 1000))
def test_rotations_compose_and_position_zero_is_the_identity(xp, interleaved, x, m, n):
    t = 3
    twice = host(F.rotary_embedding(F.rotary_embedding(tensor(xp, x), [m] * t, interleaved=interleaved),
                                    [n] * t, interleaved=interleaved))
    np.testing.assert_allclose(twice, rope(xp, x, [m + n] * t, interleaved=interleaved), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(rope(xp, x, [0] * t, interleaved=interleaved), x)


@given(x=arrays(rotary_shapes))
def test_the_two_conventions_are_one_rotation_in_two_channel_orders(xp, x):
    """Rotate-half on channels reordered to its layout = the interleaved rotation, reordered:
    why Hugging Face's conversion permutes the rows of Meta's q and k weights."""
    half = rope(xp, to_half_layout(x), interleaved=False)
    np.testing.assert_allclose(half, to_half_layout(rope(xp, x, interleaved=True)), rtol=1e-12, atol=1e-12)


def test_angles_are_position_times_base_to_the_minus_2i_over_d(xp):
    """theta_i = 10000^(-2i/D): for D = 4, theta = (1, 1/100); position 3 turns pair i by 3 theta_i."""
    x = np.array([[1.0, 0.0, 1.0, 0.0]])
    expected = [math.cos(3), math.sin(3), math.cos(0.03), math.sin(0.03)]
    np.testing.assert_allclose(rope(xp, x, [3], interleaved=True)[0], expected, rtol=1e-14)
    half = rope(xp, np.array([[1.0, 1.0, 0.0, 0.0]]), [3], interleaved=False)[0]  # pairs (x0, x2), (x1, x3)
    np.testing.assert_allclose(half, [math.cos(3), math.cos(0.03), math.sin(3), math.sin(0.03)], rtol=1e-14)


def test_default_positions_are_0_to_t_and_batched_positions_are_per_sequence(xp):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 8))  # (B, nh, T, hs)
    np.testing.assert_array_equal(rope(xp, x), rope(xp, x, np.arange(5)))
    positions = np.array([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]])  # (B, T): the second one continues a cache
    batched = rope(xp, x, positions)
    for b in range(2):
        np.testing.assert_allclose(batched[b], rope(xp, x[b], positions[b]), rtol=1e-14)


@pytest.mark.parametrize("interleaved", CONVENTIONS)
@pytest.mark.parametrize("scaling", [None, {**LLAMA3, "original_max_position_embeddings": 16}])
def test_gradient_matches_finite_differences(interleaved, scaling):
    x = mt.tensor(np.random.default_rng(1).standard_normal((2, 3, 4, 6)), dtype=np.float64, requires_grad=True)
    positions = np.array([[3, 4, 5, 6], [0, 1, 2, 3]])
    assert mt.gradcheck(lambda t: F.rotary_embedding(t, positions, 500.0, interleaved, scaling), [x])


def test_llama3_scaling_divides_slow_rotations_keeps_fast_ones_and_blends_between():
    """Llama 3.1 (rope_scaling of its config): wavelengths above L / low_freq_factor rotate
    `factor` times slower, those below L / high_freq_factor are kept, the band between blends
    from one to the other (the exact values are cross-checked against Hugging Face's formula in
    tests/crosscheck/test_llama_torch.py)."""
    base = inverse_frequencies(128, 500000.0, None, np)
    scaled = inverse_frequencies(128, 500000.0, LLAMA3, np)
    wavelength = 2 * np.pi / base
    fast, slow = wavelength < 8192 / 4, wavelength > 8192 / 1
    assert fast.any() and slow.any() and (~fast & ~slow).any()
    np.testing.assert_array_equal(scaled[fast], base[fast])
    np.testing.assert_allclose(scaled[slow], base[slow] / 8, rtol=1e-15)
    middle = ~fast & ~slow
    assert np.all(scaled[middle] <= base[middle]) and np.all(scaled[middle] >= base[middle] / 8)
    ratio = scaled / base  # 1 on the fast side, falling to 1/8 on the slow side, never rising
    assert np.all(np.diff(ratio) <= 1e-15)


def test_bad_inputs_name_the_op(xp):
    x = tensor(xp, np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"rotary_embedding: input is shape \(2, 3, 5\) float64; expected .* even D"):
        F.rotary_embedding(tensor(xp, np.ones((2, 3, 5))))
    with pytest.raises(TypeError, match="rotary_embedding: positions must be integers"):
        F.rotary_embedding(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"rotary_embedding: positions shape \(4,\) int64 don't fit"):
        F.rotary_embedding(x, np.arange(4))
    with pytest.raises(ValueError, match="rotary_embedding: theta must be a positive number, got -1"):
        F.rotary_embedding(x, theta=-1)
    with pytest.raises(ValueError, match="rotary_embedding: Llama 3 scaling is missing"):
        F.rotary_embedding(x, scaling={"factor": 8.0})
    with pytest.raises(ValueError, match="rotary_embedding: scaling must be None or a dict"):
        F.rotary_embedding(x, scaling={"rope_type": "yarn"})
