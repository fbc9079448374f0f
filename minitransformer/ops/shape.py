"""Ops that move values around without arithmetic: their backward moves the gradient back.

reshape <-> reshape back, transpose <-> the inverse permutation, indexing <-> scatter into
zeros, concat/stack <-> slicing, broadcast_to <-> sum over the broadcast axes.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import array_module, is_array, scatter_add
from ..tensor import Tensor, describe
from .validate import normalize_axes, normalize_axis


class Reshape(Function):
    """z = a viewed with another shape of the same size;   dz/da = the inverse reshape"""

    def forward(self, a, shape):
        self.input_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape {describe(a)} ({a.size} elements) into {tuple(shape)}"
            ) from None

    def backward(self, grad):
        return grad.reshape(self.input_shape)


class Transpose(Function):
    """z = a with its axes permuted (reversed when axes is None);   dz/da = inverse permutation"""

    def forward(self, a, axes=None):
        if axes is None:
            axes = tuple(reversed(range(a.ndim)))
        if len(axes) != a.ndim:
            raise ValueError(
                f"transpose: axes {tuple(axes)} are not a permutation of the {a.ndim} axes of {describe(a)}"
            )
        normalize_axes("transpose", axes, a.ndim)  # raises on an axis out of range or repeated
        self.axes = tuple(int(ax) % a.ndim for ax in axes)
        return a.transpose(self.axes)

    def backward(self, grad):
        return grad.transpose(np.argsort(self.axes))


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    axes = list(range(x.ndim))
    first, second = (normalize_axis("swapaxes", ax, x.ndim) for ax in (axis1, axis2))
    axes[first], axes[second] = axes[second], axes[first]
    return Transpose.apply(x, axes=tuple(axes))


class BroadcastTo(Function):
    """z = a repeated to a larger shape (NumPy rules);   dz/da = sum over the repeats"""

    def forward(self, a, shape):
        self.input_shape = a.shape
        try:
            return array_module(a).broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast {describe(a)} to shape {tuple(shape)}") from None

    def backward(self, grad):
        return unbroadcast(grad, self.input_shape)


class Cast(Function):
    """z = a converted to another float dtype;   dz/da = the gradient converted back"""

    def forward(self, a, dtype):
        self.input_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.input_dtype)


def _picks_each_at_most_once(index) -> bool:
    """Ints, slices, None, Ellipsis and boolean masks never pick an element twice; only
    integer arrays can (x[[0, 0]])."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis)))
               or (is_array(p) and p.dtype == bool) for p in parts)


class GetItem(Function):
    """z = a[index];   dz/da = zeros with dz scattered back to the picked places.

    Integer-array indices may pick one element several times; those gradients are added up
    (a scatter-add), which plain assignment would silently drop.
    """

    def forward(self, a, index):
        self.index, self.input_shape = index, a.shape
        try:
            return a[index]
        except IndexError as error:
            raise IndexError(f"getitem: index {_show(index)} is invalid for {describe(a)}: {error}") from None

    def backward(self, grad):
        return self.backward_add(grad, None)

    def backward_add(self, grad, into):
        """``into`` (zeros when None) plus this gradient, in place: dz added at the picked places."""
        if into is None:
            into = array_module(grad).zeros(self.input_shape, dtype=grad.dtype)
            if _picks_each_at_most_once(self.index):
                into[self.index] = grad
                return into
        if _picks_each_at_most_once(self.index):
            into[self.index] += grad
        else:
            scatter_add(into, self.index, grad)
        return into


def _show(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    shown = [f"array(shape {p.shape}, {p.dtype})" if is_array(p) else repr(p) for p in parts]
    return shown[0] if not isinstance(index, tuple) else "(" + ", ".join(shown) + ")"


def getitem(x: Tensor, index) -> Tensor:
    """x[index] with ints, slices, None, Ellipsis, integer arrays/tensors and boolean masks."""
    xp = array_module(x.data)
    parts = index if isinstance(index, tuple) else (index,)
    converted = []
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        elif isinstance(part, list):
            part = xp.asarray(part)
        if is_array(part) and not (part.dtype == bool or np.issubdtype(part.dtype, np.integer)):
            raise TypeError(f"getitem: array indices must be integers or booleans, got {describe(part)}")
        converted.append(part)
    index = tuple(converted) if isinstance(index, tuple) else converted[0]
    return GetItem.apply(x, index=index)


class Concat(Function):
    """z = [a_1, ..., a_n] joined along an axis;   dz/da_i = the slice of dz that a_i became"""

    def forward(self, *arrays, axis=0):
        xp = array_module(*arrays)
        if len({a.ndim for a in arrays}) != 1 or arrays[0].ndim == 0:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"concat: shapes {shapes} must all have the same number of dimensions, at least 1"
            )
        self.axis = normalize_axis("concat", axis, arrays[0].ndim)
        self.sizes = [a.shape[self.axis] for a in arrays]
        try:
            return xp.concatenate(arrays, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"concat: shapes {shapes} must match in every axis except axis {self.axis}"
            ) from None

    def backward(self, grad):
        boundaries = np.cumsum(self.sizes)[:-1].tolist()  # a list: CuPy's split takes no NumPy array
        return tuple(array_module(grad).split(grad, boundaries, axis=self.axis))


def concat(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    return Concat.apply(*tensors, axis=axis)


class Stack(Function):
    """z = [a_1, ..., a_n] along a new axis;   dz/da_i = dz indexed at i on that axis"""

    def forward(self, *arrays, axis=0):
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
        self.axis = normalize_axis("stack", axis, arrays[0].ndim + 1)
        return array_module(*arrays).stack(arrays, axis=self.axis)

    def backward(self, grad):
        return tuple(grad.take(i, axis=self.axis) for i in range(grad.shape[self.axis]))


def stack(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def split(x: Tensor, sections, axis: int = 0) -> list[Tensor]:
    """Cut x along an axis into equal parts (sections an int) or at given sizes (a list).

    Each part is a slice of x, so its gradient flows back through ``GetItem``.
    """
    axis = normalize_axis("split", axis, x.ndim)
    length = x.shape[axis]
    if isinstance(sections, int):
        if sections <= 0 or length % sections:
            raise ValueError(
                f"split: axis {axis} of length {length} cannot be split into {sections} equal parts"
            )
        sizes = [length // sections] * sections
    else:
        sizes = list(sections)
        if sum(sizes) != length or min(sizes, default=0) < 0:
            raise ValueError(f"split: sizes {sizes} must be >= 0 and add up to {length} (axis {axis})")
    parts, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        parts.append(GetItem.apply(x, index=index))
        start += size
    return parts
