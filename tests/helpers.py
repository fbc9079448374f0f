"""Small helpers shared by the tests: tensors on the backend under test, and comparisons."""

from __future__ import annotations

import numpy as np

import minitransformer as mt
from minitransformer.backend import to_numpy


def device_of(xp) -> str:
    return "cpu" if xp is np else "cuda"


def tensor(xp, array, requires_grad: bool = False, dtype=np.float64) -> mt.Tensor:
    """A float64 (by default) leaf tensor on the backend ``xp`` from a NumPy array."""
    return mt.tensor(np.asarray(array), dtype=dtype, requires_grad=requires_grad, device=device_of(xp))


def host(x) -> np.ndarray:
    """A tensor's or array's values as a NumPy array."""
    return to_numpy(x.data if isinstance(x, mt.Tensor) else x)


def assert_close(actual, expected, rtol: float = 1e-7, atol: float = 1e-10) -> None:
    np.testing.assert_allclose(host(actual), host(expected), rtol=rtol, atol=atol)


def check_op(xp, op, reference, *arrays, rtol: float = 1e-7, atol: float = 1e-10, grad: bool = True):
    """op(*tensors) equals reference(*arrays) (NumPy, float64), and autograd equals finite
    differences (mt.gradcheck) for every input."""
    tensors = [tensor(xp, a) for a in arrays]
    out = op(*tensors)
    expected = reference(*[np.asarray(a, dtype=np.float64) for a in arrays])
    assert out.shape == np.shape(expected)
    assert_close(out, expected, rtol=rtol, atol=atol)
    if grad:
        assert mt.gradcheck(op, tensors)
    return out
