"""backend.py: array modules and devices, the seeded generator, scatter-add and erf; and the
CPU-vs-GPU parity of ops, forward and backward (skipped without a GPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend


def test_array_module_and_device_of_host_data():
    a = np.ones(2)
    assert backend.array_module(a, 1.0) is np and backend.is_array(a) and not backend.is_array([1.0])
    assert backend.device_of(a) == "cpu" and backend.to_numpy(a) is a
    assert backend.to_device(a, "cpu") is a


def test_check_device_names_the_caller():
    with pytest.raises(ValueError, match=r"tensor: unknown device 'gpu'; expected one of \('cpu', 'cuda'\)"):
        mt.tensor([1.0], device="gpu")


def test_require_cupy_says_why_when_missing():
    if backend.cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="randn: device 'cuda' needs CuPy|randn: CuPy is installed but no CUDA GPU"):
        backend.require_cupy("randn")


def test_manual_seed_reproduces_and_validates():
    mt.manual_seed(42)
    first = backend.generator().random(5)
    mt.manual_seed(42)
    np.testing.assert_array_equal(first, backend.generator().random(5))
    for bad in (-1, 1.5, "0"):
        with pytest.raises(ValueError, match="manual_seed: seed must be a non-negative integer"):
            mt.manual_seed(bad)


def test_rng_state_round_trip():
    state = backend.get_rng_state()
    a = backend.generator().random(3)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(a, backend.generator().random(3))


def test_scatter_add_adds_repeated_indices(xp):
    target = xp.zeros(4)
    backend.scatter_add(target, xp.asarray([1, 1, 3, 1]), xp.asarray([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(backend.to_numpy(target), [0, 7, 0, 3])


@given(ids=st.lists(st.integers(-6, 5), min_size=1, max_size=40), width=st.integers(1, 5))
def test_scatter_add_of_rows_matches_add_at(ids, width):
    rng = np.random.default_rng(len(ids))
    values = rng.standard_normal((len(ids), width)).astype(np.float32)
    for start in (np.zeros((6, width), np.float32), rng.standard_normal((6, width)).astype(np.float32)):
        expected = start.copy()
        np.add.at(expected, np.asarray(ids), values)
        target = start.copy()
        backend.scatter_add(target, np.asarray(ids), values)
        np.testing.assert_array_equal(target, expected)


def test_erf_matches_math(xp):
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(backend.to_numpy(backend.erf(xp.asarray(x))), [math.erf(v) for v in x], rtol=1e-12)


PARITY_CASES = {
    "arithmetic": lambda a, b: ((a * b - a / (b * b + 1)) ** 2).sum(axis=0),
    "matmul": lambda a, b: a @ b.T,
    "activations": lambda a, b: F.gelu(a) + F.gelu(b, approximate="tanh") + a.sigmoid() * b.tanh() + a.relu(),
    "reductions": lambda a, b: a.max(axis=1) + b.var(axis=1, ddof=1) + a.mean(axis=1),
    "softmax": lambda a, b: F.softmax(a, axis=0) * F.log_softmax(b * 100),
    "layer_norm": lambda a, b: F.layer_norm(a, b[0], b[1]),
    "cross_entropy": lambda a, b: F.cross_entropy(a @ b.T, a.data.argmax(axis=1) % 4),
    "attention": lambda a, b: F.scaled_dot_product_attention(a[None], b[None], a[None], is_causal=True),
    "shape": lambda a, b: mt.concat([a[::2], b.T.reshape(4, 4)[:2]], axis=0)[[0, 0, 1]],
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(PARITY_CASES))
def test_cpu_and_gpu_agree(name):
    """The same op on NumPy and on CuPy gives the same values and gradients (float64)."""
    if not backend.cupy_available():
        pytest.skip("CPU-vs-GPU parity: no CuPy or no CUDA GPU on this machine")
    op = PARITY_CASES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 4)), rng.standard_normal((4, 4))]
    results = []
    for device in ("cpu", "cuda"):
        inputs = [mt.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in arrays]
        out = op(*inputs)
        out.sum().backward()
        results.append([out.numpy()] + [backend.to_numpy(t.grad) for t in inputs])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-12)
