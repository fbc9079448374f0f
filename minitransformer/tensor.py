"""``Tensor``: an array (NumPy or CuPy) plus what autograd needs to differentiate through it.

A tensor holds ``data`` (the array), ``grad`` (an array of the same shape once ``backward`` has
run, else None), ``requires_grad``, and ``_ctx``: the ``Function`` node that produced it, which
links it to its inputs. Leaf tensors (made by the user, parameters) have no ``_ctx``.

The arithmetic methods are thin: each calls one op from ``minitransformer.ops``.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from . import backend
from .backend import DEFAULT_DTYPE, array_module, describe, is_array  # noqa: F401 (describe: re-exported)


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retains_grad", "_node", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy

    def __init__(self, data, requires_grad: bool = False):
        if not is_array(data):
            raise TypeError(
                f"Tensor: data must be a NumPy or CuPy array, got {type(data).__name__}; "
                "use minitransformer.tensor(...) to convert lists and scalars"
            )
        if requires_grad and not _is_float(data.dtype):
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {data.dtype}"
            )
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._ctx = None
        self._retains_grad = False
        self._node = None  # what the graph keeps of this tensor when later ops take it as input

    # --- what it is -----------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        extras = f", dtype={self.dtype}" if self.dtype != DEFAULT_DTYPE else ""
        extras += ", device='cuda'" if self.device == "cuda" else ""
        extras += ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}{extras})"

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    def __bool__(self) -> bool:
        return bool(self.data)

    # --- leaving the graph, moving, converting ----------------------------------------------
    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data, on the host."""
        return np.array(backend.to_numpy(self.data), copy=True)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device: str) -> Tensor:
        """This tensor on 'cpu' (NumPy) or 'cuda' (CuPy): a new leaf, or self if already there."""
        if backend.check_device(device, "to") == self.device:
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def astype(self, dtype) -> Tensor:
        return self if self.dtype == np.dtype(dtype) else ops.shape.Cast.apply(self, dtype=dtype)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not _is_float(self.dtype):
            raise TypeError(f"requires_grad_: dtype {self.dtype} cannot require grad")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> Tensor:
        """Keep .grad on this intermediate tensor too (leaves always keep theirs)."""
        self._retains_grad = True
        return self

    # --- autograd ---------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf this tensor depends on, into ``leaf.grad``."""
        autograd.backward(self, grad, retain_graph)

    # --- arithmetic (NumPy broadcasting) ----------------------------------------------------
    def __add__(self, other):
        return ops.elementwise.Add.apply(self, lift(other, self))

    def __radd__(self, other):
        return ops.elementwise.Add.apply(lift(other, self), self)

    def __sub__(self, other):
        return ops.elementwise.Sub.apply(self, lift(other, self))

    def __rsub__(self, other):
        return ops.elementwise.Sub.apply(lift(other, self), self)

    def __mul__(self, other):
        return ops.elementwise.Mul.apply(self, lift(other, self))

    def __rmul__(self, other):
        return ops.elementwise.Mul.apply(lift(other, self), self)

    def __truediv__(self, other):
        return ops.elementwise.Div.apply(self, lift(other, self))

    def __rtruediv__(self, other):
        return ops.elementwise.Div.apply(lift(other, self), self)

    def __neg__(self):
        return ops.elementwise.Neg.apply(self)

    def __pow__(self, exponent):
        return ops.elementwise.pow(self, exponent)

    def __rpow__(self, base):
        return ops.elementwise.pow(lift(base, self), self)

    def __matmul__(self, other):
        return ops.matmul.MatMul.apply(self, lift(other, self))

    def __rmatmul__(self, other):
        return ops.matmul.MatMul.apply(lift(other, self), self)

    # comparisons: plain boolean tensors, outside the graph
    def _compare(self, other, compare) -> Tensor:
        result = compare(self.data, lift(other, self).data)
        return Tensor(array_module(self.data).asarray(result))  # 0-d NumPy results are scalars

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    # --- elementwise functions --------------------------------------------------------------
    def exp(self):
        return ops.elementwise.Exp.apply(self)

    def log(self):
        return ops.elementwise.Log.apply(self)

    def sqrt(self):
        return ops.elementwise.Sqrt.apply(self)

    def tanh(self):
        return ops.elementwise.Tanh.apply(self)

    def sigmoid(self):
        return ops.elementwise.Sigmoid.apply(self)

    def relu(self):
        return ops.elementwise.ReLU.apply(self)

    def abs(self):
        return ops.elementwise.Abs.apply(self)

    # --- reductions -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        return ops.reduce.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return ops.reduce.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return ops.reduce.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return -ops.reduce.Max.apply(-self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        return ops.reduce.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def argmax(self, axis=None) -> Tensor:
        return Tensor(self.data.argmax(axis=axis))

    # --- shape ------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.shape.Reshape.apply(self, shape=tuple(shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return ops.shape.Transpose.apply(self, axes=tuple(axes) if axes else None)

    @property
    def T(self):
        return ops.shape.Transpose.apply(self, axes=None)

    def swapaxes(self, axis1: int, axis2: int):
        return ops.shape.swapaxes(self, axis1, axis2)

    def broadcast_to(self, shape):
        return ops.shape.BroadcastTo.apply(self, shape=tuple(shape))

    def split(self, sections, axis: int = 0):
        return ops.shape.split(self, sections, axis)

    def __getitem__(self, index):
        return ops.shape.getitem(self, index)


def _is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def lift(value, like: Tensor) -> Tensor:
    """Make ``value`` (a tensor, array or Python number) a tensor to combine with ``like``.

    Python numbers and float arrays take ``like``'s float dtype, so ``x * 0.5`` stays float32
    instead of silently becoming float64.
    """
    if isinstance(value, Tensor):
        return value
    xp = array_module(like.data)
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        dtype = like.dtype if _is_float(like.dtype) or isinstance(value, numbers.Integral) else None
        return Tensor(xp.asarray(value, dtype=dtype))
    if is_array(value) or isinstance(value, (list, tuple, bool)):
        array = xp.asarray(value)
        if _is_float(array.dtype) and _is_float(like.dtype):
            array = array.astype(like.dtype, copy=False)
        return Tensor(array)
    raise TypeError(
        f"cannot combine a tensor ({describe(like)}) with {type(value).__name__}; "
        "expected a tensor, an array or a number"
    )


# --- making tensors ---------------------------------------------------------------------------

def tensor(data, dtype=None, requires_grad: bool = False, device: str | None = None) -> Tensor:
    """A new leaf tensor from a list, scalar, NumPy/CuPy array or tensor (whose data is copied).

    Floating-point data becomes float32 unless ``dtype`` says otherwise; integers and booleans
    keep their kind.
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = array_module(data)
    array = xp.array(data, dtype=dtype, copy=True)
    if dtype is None and _is_float(array.dtype):
        array = array.astype(DEFAULT_DTYPE, copy=False)
    if array.dtype == object or not (_is_float(array.dtype) or array.dtype.kind in "iub"):
        raise TypeError(
            f"tensor: cannot make a tensor from data of dtype {array.dtype}; "
            "expected numbers (float, int or bool)"
        )
    if device is not None:
        array = backend.to_device(array, backend.check_device(device, "tensor"))
    return Tensor(array, requires_grad=requires_grad)


def _xp_for(device: str):
    backend.check_device(device, "creating a tensor")
    return np if device == "cpu" else backend.require_cupy("creating a tensor on 'cuda'")


def _shape_of(shape) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device="cpu") -> Tensor:
    return Tensor(_xp_for(device).zeros(_shape_of(shape), dtype=dtype), requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device="cpu") -> Tensor:
    return Tensor(_xp_for(device).ones(_shape_of(shape), dtype=dtype), requires_grad)


def randn(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device="cpu") -> Tensor:
    """Standard normal samples from the framework's seeded generator."""
    _xp_for(device)
    data = backend.generator(device).standard_normal(_shape_of(shape), dtype=dtype)
    return Tensor(data, requires_grad)


def rand(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device="cpu") -> Tensor:
    """Uniform samples in [0, 1) from the framework's seeded generator."""
    _xp_for(device)
    data = backend.generator(device).random(_shape_of(shape), dtype=dtype)
    return Tensor(data, requires_grad)


def arange(*args, dtype=None, device="cpu") -> Tensor:
    return Tensor(_xp_for(device).arange(*args, dtype=dtype))


# The ops need Tensor, so they are imported after it is defined.
from . import autograd, ops  # noqa: E402
