"""tensor.py: making tensors (dtype rules, copies, factories), what a tensor reports, leaving
the graph, device moves, and how Python numbers and arrays combine with tensors."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from tests.helpers import assert_close, device_of, host, tensor


def test_float_data_becomes_float32_unless_asked(xp):
    device = device_of(xp)
    assert mt.tensor([1.0, 2.0], device=device).dtype == np.float32
    assert mt.tensor(np.ones(2), device=device).dtype == np.float32
    assert mt.tensor([1.0], dtype=np.float64, device=device).dtype == np.float64
    assert mt.tensor([1, 2], device=device).dtype.kind == "i"
    assert mt.tensor([True], device=device).dtype == bool


def test_tensor_copies_its_data():
    array = np.ones(3)
    x = mt.tensor(array, dtype=np.float64)
    array[0] = 5
    assert x.numpy()[0] == 1.0
    y = mt.tensor(x)
    y.data[1] = 7
    assert x.numpy()[1] == 1.0
    copy = x.numpy()
    copy[2] = 9
    assert x.numpy()[2] == 1.0


def test_tensor_rejects_non_numeric_data():
    with pytest.raises(TypeError, match="tensor: cannot make a tensor from data of dtype <U1"):
        mt.tensor(["a"])
    with pytest.raises(TypeError, match="Tensor: data must be a NumPy or CuPy array, got list"):
        mt.Tensor([1.0])


def test_properties_and_conversions(xp):
    x = tensor(xp, np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert (x.shape, x.ndim, x.size, len(x), x.dtype, x.device) == ((2, 3), 2, 6, 2, np.float64, device_of(xp))
    assert x.is_leaf and not (x * 2).is_leaf
    assert x[1, 2].item() == 5.0 and x.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match=r"item: needs a tensor with one element, got shape \(2, 3\)"):
        x.item()
    assert "requires_grad=True" in repr(x) and "dtype=float64" in repr(x)
    assert repr(mt.tensor([1.0])) == "tensor([1.])"


def test_detach_shares_data_but_leaves_the_graph(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    assert_close(y, [2.0, 4.0])


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, got dtype int64"):
        mt.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad_: dtype int64 cannot require grad"):
        mt.tensor([1, 2]).requires_grad_()
    assert mt.tensor([1.0]).requires_grad_().requires_grad


def test_factories_and_seeded_random(xp):
    device = device_of(xp)
    assert_close(mt.zeros(2, 3, device=device), np.zeros((2, 3)))
    assert_close(mt.ones((2,), device=device), np.ones(2))
    assert mt.zeros(2, dtype=np.float64).dtype == np.float64
    assert mt.ones(1, requires_grad=True).requires_grad
    assert_close(mt.arange(4, device=device), np.arange(4))
    mt.manual_seed(3)
    a, u = host(mt.randn(100, device=device)), host(mt.rand(100, device=device))
    mt.manual_seed(3)
    np.testing.assert_array_equal(a, host(mt.randn(100, device=device)))
    np.testing.assert_array_equal(u, host(mt.rand(100, device=device)))
    assert a.dtype == np.float32 and np.all((u >= 0) & (u < 1))
    assert abs(a.mean()) < 0.5 and 0.5 < a.std() < 1.5


def test_numbers_and_arrays_combine_with_tensors(xp):
    x = tensor(xp, [1.0, 2.0], dtype=np.float32)
    assert (x + 1).dtype == np.float32 and (x * np.float64(0.5)).dtype == np.float32
    out = xp.asarray([10.0, 20.0]) + x  # ndarray + Tensor goes to Tensor.__radd__
    assert isinstance(out, mt.Tensor) and out.dtype == np.float32
    assert_close(out, [11.0, 22.0])
    assert_close(1 - x, [0.0, -1.0])
    assert_close(2 / x, [2.0, 1.0])
    assert_close(x + [1.0, 1.0], [2.0, 3.0])
    assert (mt.tensor([1, 2]) + 0.5).dtype == np.float64  # int tensors promote as in NumPy
    with pytest.raises(TypeError, match=r"cannot combine a tensor \(shape \(2,\) float32\) with str"):
        x + "a"


def test_comparisons_of_0d_tensors(xp):
    x = tensor(xp, 0.0)
    for result in (x == 0, x != 0, x < 1, x <= 0, x > -1, x >= 0):
        assert isinstance(result, mt.Tensor) and result.dtype == bool and result.shape == ()
    assert bool(x == 0) and not bool(x != 0)


def test_tensors_hash_by_identity():
    a, b = mt.tensor([1.0]), mt.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_to_same_device_returns_self(xp):
    x = tensor(xp, [1.0])
    assert x.to(device_of(xp)) is x
    with pytest.raises(ValueError, match=r"to: unknown device 'tpu'; expected one of \('cpu', 'cuda'\)"):
        x.to("tpu")


def test_to_cuda_without_gpu_says_why():
    if mt.cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="device 'cuda' needs CuPy|no CUDA GPU is visible"):
        mt.tensor([1.0]).to("cuda")
