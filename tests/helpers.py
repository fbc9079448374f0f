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


# --- one backward on its own (the assignments' tests) -----------------------------------------

STEP = 1e-6  # central differences in float64


def numeric_vjp(forward, arrays, index, grad_out):
    """sum(g * df/dx_index) by central differences, one element of x_index at a time."""
    x = arrays[index]
    result = np.zeros_like(x)
    for position in np.ndindex(x.shape):
        values = []
        for sign in (1, -1):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += sign * STEP
            values.append(np.asarray(forward(*shifted), dtype=np.float64))
        result[position] = np.sum(grad_out * (values[0] - values[1])) / (2 * STEP)
    return result


def check_backward(op, arrays, params=None, extra=(), seed=0, rtol=1e-5, atol=1e-7):
    """Run ``op``'s forward through ``apply``, call its backward with a random g, and compare
    each gradient with the finite-difference one. ``extra``: inputs that take no gradient."""
    params = params or {}
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    tensors = [mt.tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = op.apply(*tensors, *[mt.tensor(e) for e in extra], **params)
    assert out._ctx is not None, f"{op.__name__}.apply recorded no graph node"
    grad_out = np.random.default_rng(seed + 1).normal(size=out.shape)
    grads = out._ctx.backward(grad_out.copy())
    if not isinstance(grads, tuple):
        grads = (grads,)
    assert len(grads) >= len(arrays), (
        f"{op.__name__}.backward returned {len(grads)} gradient(s); expected one per input ({len(arrays)})")

    def forward(*xs):
        return op().forward(*xs, *extra, **params)

    for index, (array, grad) in enumerate(zip(arrays, grads)):
        assert grad is not None, f"{op.__name__}.backward returned None for input {index}, which needs a gradient"
        grad = np.broadcast_to(np.asarray(grad, dtype=np.float64), array.shape) if np.ndim(grad) == 0 else np.asarray(grad)
        assert grad.shape == array.shape, (
            f"{op.__name__}.backward: gradient {index} has shape {grad.shape}; expected the input's {array.shape}")
        expected = numeric_vjp(forward, arrays, index, grad_out)
        np.testing.assert_allclose(grad, expected, rtol=rtol, atol=atol,
                                   err_msg=f"{op.__name__}.backward: gradient of input {index} "
                                           f"(shape {array.shape}) differs from finite differences")
