"""Reductions over any axes (an int, a tuple, or None for all), with ``keepdims``.

Each backward first puts the reduced axes back as size-1 axes (``_expand``), so the gradient
broadcasts against the input.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from .validate import normalize_axes


def _expand(grad, axes: tuple[int, ...], keepdims: bool):
    """The gradient of a reduction with the reduced axes restored as size 1."""
    if keepdims:
        return grad
    return array_module(grad).expand_dims(grad, axes) if axes else grad


class Sum(Function):
    """z = sum_i a_i over the axes;   dz/da_i = 1 (the gradient is copied to every summand)"""

    def forward(self, a, axis=None, keepdims=False):
        self.axes = normalize_axes("sum", axis, a.ndim)
        self.keepdims, self.input_shape = keepdims, a.shape
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        xp = array_module(grad)
        return xp.broadcast_to(_expand(grad, self.axes, self.keepdims), self.input_shape)
        # END SOLUTION a2


class Mean(Function):
    """z = (1/n) sum_i a_i;   dz/da_i = 1/n"""

    def forward(self, a, axis=None, keepdims=False):
        self.axes = normalize_axes("mean", axis, a.ndim)
        self.keepdims, self.input_shape = keepdims, a.shape
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax]
        if self.count == 0:
            raise ValueError(f"mean: cannot average over empty axes {self.axes} of shape {a.shape}")
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        xp = array_module(grad)
        expanded = _expand(grad, self.axes, self.keepdims) / self.count
        return xp.broadcast_to(expanded, self.input_shape)
        # END SOLUTION a2


class Max(Function):
    """z = max_i a_i;   dz/da_i = 1/k for each of the k entries equal to the max, else 0.

    Ties split the gradient evenly (as torch.amax does), so the sum of the gradient is always
    dL/dz and the result does not depend on the order of the entries.
    """

    def forward(self, a, axis=None, keepdims=False):
        self.axes = normalize_axes("max", axis, a.ndim)
        if any(a.shape[ax] == 0 for ax in self.axes):
            raise ValueError(f"max: cannot take the max over empty axes {self.axes} of shape {a.shape}")
        self.keepdims = keepdims
        out = a.max(axis=self.axes, keepdims=True)
        self.save_for_backward(a, out)
        return out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, out = self.saved
        is_max = a == out
        ties = is_max.sum(axis=self.axes, keepdims=True).astype(grad.dtype)
        return is_max * (_expand(grad, self.axes, self.keepdims) / ties)
        # END SOLUTION a2


class Var(Function):
    """z = (1/(n - ddof)) sum_i (a_i - mean)^2;   dz/da_i = 2 (a_i - mean) / (n - ddof)

    (The mean's own dependence on a_i drops out because sum_i (a_i - mean) = 0.)
    """

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        self.axes = normalize_axes("var", axis, a.ndim)
        self.keepdims = keepdims
        count = 1
        for ax in self.axes:
            count *= a.shape[ax]
        if count - ddof <= 0:
            raise ValueError(
                f"var: needs more than ddof={ddof} elements over axes {self.axes}, "
                f"got {count} from shape {a.shape}"
            )
        centered = a - a.mean(axis=self.axes, keepdims=True)
        self.save_for_backward(centered)
        self.divisor = count - ddof
        return (centered * centered).sum(axis=self.axes, keepdims=keepdims) / self.divisor

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (centered,) = self.saved
        return _expand(grad, self.axes, self.keepdims) * centered * (2 / self.divisor)
        # END SOLUTION a2
