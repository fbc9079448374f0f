"""Check autograd against central finite differences, in float64."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .autograd import no_grad
from .backend import array_module, to_numpy
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Autograd and finite differences disagree; the message has a per-input report."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> bool:
    """Compare autograd's gradient of ``fn(*inputs)`` with central differences.

    Every floating-point input is copied to float64 and differentiated. A non-scalar output is
    reduced to the scalar sum(output * r) with a fixed random r, so every output element is
    checked with its own weight. For each input element x_i:

        numeric_i = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)     (error O(eps^2))

    and it must hold that |autograd_i - numeric_i| <= atol + rtol * |numeric_i|. Returns True,
    or raises GradcheckError naming, for each input, the worst element and its errors.
    """
    leaves = []
    for x in inputs:
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: inputs must be tensors, got {type(x).__name__}")
        is_float = np.issubdtype(x.dtype, np.floating)
        # a C-ordered copy, so that reshape(-1) below is a view of it even when x is a
        # transposed (Fortran-ordered) array
        data = x.data.astype(np.float64, order="C")
        leaves.append(Tensor(data, requires_grad=True) if is_float else x)
    differentiable = [i for i, t in enumerate(leaves) if t.requires_grad]

    out = fn(*leaves)
    xp = array_module(out.data)
    weights = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))

    def scalar_loss() -> float:
        with no_grad():  # forward only: no graph to build for the nudged inputs
            return float((fn(*leaves).data * weights).sum())

    (out * Tensor(weights)).sum().backward()
    failures = []
    for i in differentiable:
        leaf = leaves[i]
        analytic = to_numpy(leaf.grad) if leaf.grad is not None else np.zeros(leaf.shape)
        numeric = np.zeros(leaf.shape)
        flat = leaf.data.reshape(-1)  # a view: nudging it nudges the input
        for j in range(flat.size):
            original = float(flat[j])
            flat[j] = original + eps
            plus = scalar_loss()
            flat[j] = original - eps
            minus = scalar_loss()
            flat[j] = original
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        error = np.abs(analytic - numeric)
        if error.size and not np.all(error <= atol + rtol * np.abs(numeric)):
            worst = np.unravel_index(np.argmax(error - rtol * np.abs(numeric)), error.shape)
            relative = error[worst] / max(abs(numeric[worst]), 1e-300)
            failures.append(
                f"  input {i} (shape {leaf.shape}): max abs error {error.max():.3e}, at index "
                f"{tuple(int(w) for w in worst)}: autograd {analytic[worst]:.6e} vs numeric "
                f"{numeric[worst]:.6e} (rel error {relative:.3e})"
            )
    if failures:
        raise GradcheckError("gradcheck: autograd disagrees with finite differences\n" + "\n".join(failures))
    return True
