"""An emulated CUDA device: a NumPy-backed stand-in for the ``cupy`` module, for tests.

No GPU is needed to run the framework's CuPy path: ``install()`` puts this module into
``sys.modules`` as ``cupy`` (with ``cupyx``, ``cupyx.scipy`` and ``cupyx.scipy.special``); the
package's ``__init__`` does that when ``MINITRANSFORMER_EMULATE_CUDA=1`` is set, before
``backend.py`` imports CuPy, which then finds this module. Its
arrays (``ndarray``) hold a NumPy array, but they are a distinct type that behaves like a
CuPy array where that differs from NumPy, and is stricter where CuPy would be silently slow:

- no implicit copy to the host: ``np.asarray(x)``, ``np.array(x)``, any NumPy function or
  ufunc given a device array raises ``TypeError`` (real CuPy dispatches some NumPy functions
  to its own; code that relies on that hides a host round trip or works by luck, so the
  framework must use ``backend.array_module`` instead). ``.get()``, ``cupy.asnumpy(x)`` copy back;
- mixing a device array with a NumPy array in arithmetic raises ``TypeError``, as in CuPy;
- reductions and integer indexing give 0-d device arrays, not Python or NumPy scalars;
  ``float()``, ``int()``, ``bool()`` and ``.item()`` work on one element only;
- ``cupy.random.default_rng``, ``cupy.cuda.runtime``/``Device``/``Stream``, the memory pool,
  ``cupyx.scatter_add``, ``cupyx.scipy.special.erf``;
- ``RawKernel`` and ``ElementwiseKernel`` parse the CUDA signature they are given and check
  every launch against it (pointer arguments are device arrays of the declared dtype and
  C-contiguous; scalars are NumPy scalars of the declared type, as CuPy needs them), then run
  a Python fallback registered for that kernel name with ``emulates(name)``
  (minitransformer/testing/cuda_emulations.py). The CUDA code itself never runs here: only a
  real GPU proves it (benchmarks/gpu_check.sh).

``calls`` counts what was called on the device by name; with MINITRANSFORMER_EMULATE_CUDA_LOG=path
set, the counts are written there as JSON when the process ends (a record of which CuPy
functions a test run exercised).

It is a test device, never a runtime path: nothing in the framework imports it unless asked.
"""

from __future__ import annotations

import atexit
import builtins
import collections
import json
import os
import re
import sys
import types
from typing import Callable

import numpy as np

EMULATED = True  # how tests and reports tell this module from the real CuPy
__version__ = "13.0.0+emulated"

# what the framework called on the device, by name ("cupy.exp", "ndarray.sum", "RawKernel
# softmax_rows"...): with MINITRANSFORMER_EMULATE_CUDA_LOG=path, written there as JSON at exit
calls: collections.Counter = collections.Counter()

_NO_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
                "Please use `.get()` to construct a NumPy array explicitly.")


class ndarray:
    """A device array: a NumPy array behind a type that NumPy will not take implicitly."""

    __slots__ = ("_host", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, shape, dtype=float, order="C"):
        object.__setattr__(self, "_host", np.empty(shape, dtype=dtype, order=order))

    @classmethod
    def _of(cls, host: np.ndarray) -> "ndarray":
        out = object.__new__(cls)
        object.__setattr__(out, "_host", host)
        return out

    # --- no implicit host copies ---------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(_NO_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TypeError(f"numpy.{ufunc.__name__}.{method} was given a device array (cupy.ndarray): "
                        "use the array's own module (cupy) or copy it back with .get()")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was given a device array (cupy.ndarray): "
                        "use the array's own module (cupy) or copy it back with .get()")

    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        """A NumPy copy on the host."""
        return np.array(self._host, order=order)

    def set(self, arr, stream=None) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"set: expected a numpy.ndarray, got {type(arr).__name__}")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        self._host[...] = arr

    # --- properties ----------------------------------------------------------------------------
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    strides = property(lambda self: self._host.strides)
    flags = property(lambda self: self._host.flags)
    T = property(lambda self: ndarray._of(self._host.T))
    device = property(lambda self: Device(0))
    base = property(lambda self: None if self._host.base is None else ndarray._of(self._host.base))

    @property
    def data(self):
        return _MemoryPointer(self._host)

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (ndarray._of(self._host[i]) for i in range(len(self._host)))

    def __repr__(self):
        return repr(self._host)

    def __str__(self):
        return str(self._host)

    def __format__(self, spec):
        if self.size != 1:
            return format(str(self), spec)
        return format(self._host.reshape(()).item(), spec)

    # --- one element to a Python number ---------------------------------------------------------
    def _one(self, what):
        if self.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars ({what})")
        return self._host.reshape(()).item()

    def __float__(self):
        return float(self._one("float"))

    def __int__(self):
        return int(self._one("int"))

    def __complex__(self):
        return complex(self._one("complex"))

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return builtins.bool(self._host.reshape(()).item())

    def item(self, *index):
        if index:
            return self._host.item(*index)
        return self._one("item")

    def tolist(self):
        return self._host.tolist()

    def __reduce__(self):  # pickling a device array copies it, like CuPy's
        return (_from_host, (np.array(self._host),))

    # --- indexing -------------------------------------------------------------------------------
    def __getitem__(self, index):
        return _wrap(self._host[_unwrap_index(index)])

    def __setitem__(self, index, value):
        self._host[_unwrap_index(index)] = _operand(value, "__setitem__", allow_host=True)

    # --- methods that NumPy's array has and CuPy's too -------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        calls["ndarray.astype"] += 1
        return ndarray._of(self._host.astype(dtype, order=order, copy=copy))

    def copy(self, order="C"):
        calls["ndarray.copy"] += 1
        return ndarray._of(self._host.copy(order=order))

    def view(self, dtype=None):
        calls["ndarray.view"] += 1
        return ndarray._of(self._host.view() if dtype is None else self._host.view(dtype))

    def fill(self, value):
        calls["ndarray.fill"] += 1
        self._host.fill(_operand(value, "fill"))

    def reshape(self, *shape, order="C"):
        calls["ndarray.reshape"] += 1
        return ndarray._of(self._host.reshape(*shape, order=order))

    def transpose(self, *axes):
        calls["ndarray.transpose"] += 1
        return ndarray._of(self._host.transpose(*axes))

    def __getattr__(self, name):
        if name in _ARRAY_METHODS:
            calls["ndarray." + name] += 1
            method = getattr(self._host, name)
            return lambda *args, **kwargs: _wrap(method(*_unwrap_all(args, name),
                                                        **_unwrap_kwargs(kwargs, name)))
        raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")


_ARRAY_METHODS = {
    "all", "any", "argmax", "argmin", "argsort", "clip", "conj", "cumsum", "diagonal", "dot",
    "flatten", "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "round", "sort",
    "squeeze", "std", "sum", "swapaxes", "take", "trace", "var",
}


class _MemoryPointer:
    def __init__(self, host):
        self.ptr = host.__array_interface__["data"][0]


def _from_host(host):
    return ndarray._of(host)


def _wrap(result):
    """NumPy results back on the device: arrays and NumPy scalars become device arrays (a
    reduction gives a 0-d array, as in CuPy); tuples and lists element by element."""
    if isinstance(result, np.ndarray):
        return ndarray._of(result)
    if isinstance(result, np.generic):
        return ndarray._of(np.asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


def _operand(value, what, allow_host=False):
    """A device array's NumPy array, or a Python/NumPy scalar; a NumPy array is refused
    (CuPy does not mix host and device arrays) unless ``allow_host`` (a host-to-device copy)."""
    if isinstance(value, ndarray):
        return value._host
    if isinstance(value, np.ndarray) and not allow_host:
        raise TypeError(f"cupy.{what}: unsupported type <class 'numpy.ndarray'> "
                        "(a host array mixed with device arrays; move it with cupy.asarray)")
    if isinstance(value, (list, tuple)) and not allow_host:
        return type(value)(_operand(v, what) for v in value)
    return value


def _unwrap_all(args, what):
    return [_operand(a, what) for a in args]


def _unwrap_kwargs(kwargs, what):
    return {k: _operand(v, what) for k, v in kwargs.items()}


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, ndarray):
        return index._host
    return index


def _binary(name):
    def method(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented if name.startswith("__r") else _mixed(name)
        result = getattr(self._host, name)(_operand(other, name))
        return NotImplemented if result is NotImplemented else _wrap(result)
    return method


def _mixed(name):
    raise TypeError(f"cupy.ndarray.{name}: unsupported type <class 'numpy.ndarray'> "
                    "(a host array mixed with device arrays; move it with cupy.asarray)")


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        setattr(ndarray, _form, _binary(_form))
for _form in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(ndarray, _form, _binary(_form))
for _form in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _form, (lambda f: lambda self: _wrap(getattr(self._host, f)()))(_form))
ndarray.__hash__ = None


# --- module functions: NumPy's, with device arrays in and out ------------------------------------

def _device_function(name: str, host_inputs: bool = False) -> Callable:
    numpy_function = getattr(np, name)

    def function(*args, **kwargs):
        calls["cupy." + name] += 1
        args = [_operand(a, name, allow_host=host_inputs) for a in args]
        kwargs = {k: _operand(v, name, allow_host=host_inputs) for k, v in kwargs.items()}
        if "out" in kwargs and not isinstance(kwargs["out"], np.ndarray) and kwargs["out"] is not None:
            raise TypeError(f"cupy.{name}: out must be a cupy.ndarray")
        return _wrap(numpy_function(*args, **kwargs))

    function.__name__ = name
    return function


class _Ufunc:
    """A CuPy ufunc, to call. Its methods (``reduce``, ``at``...) are left out: CuPy's cover
    fewer cases than NumPy's, so the framework uses the reductions and cupyx.scatter_add."""

    def __init__(self, name):
        self.__name__ = name
        self._call = _device_function(name)
        self._numpy = getattr(np, name)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    nin = property(lambda self: self._numpy.nin)
    nout = property(lambda self: self._numpy.nout)


_UFUNCS = (
    "abs", "absolute", "add", "arccos", "arcsin", "arctan", "arctan2", "bitwise_and", "bitwise_or",
    "ceil", "clip", "cos", "cosh", "divide", "equal", "exp", "exp2", "expm1", "floor", "floor_divide",
    "fmax", "fmin", "greater", "greater_equal", "invert", "isfinite", "isinf", "isnan", "less",
    "less_equal", "log", "log10", "log1p", "log2", "logaddexp", "logical_and", "logical_not",
    "logical_or", "logical_xor", "maximum", "minimum", "mod", "multiply", "negative", "not_equal",
    "power", "reciprocal", "remainder", "rint", "sign", "signbit", "sin", "sinh", "sqrt", "square",
    "subtract", "tan", "tanh", "true_divide", "trunc", "copysign", "nextafter",
)
_FUNCTIONS = (
    "all", "allclose", "amax", "amin", "any", "arange", "argmax", "argmin", "argsort", "around",
    "array_equal", "atleast_1d", "atleast_2d", "broadcast_arrays", "broadcast_to", "concatenate",
    "count_nonzero", "cumsum", "diag", "diagonal", "diff", "dot", "einsum", "empty", "empty_like",
    "expand_dims", "eye", "flip", "full", "full_like", "identity", "inner", "isclose", "linspace",
    "matmul", "max", "mean", "median", "min", "moveaxis", "nan_to_num", "nonzero", "ones",
    "ones_like", "outer", "pad", "prod", "ravel", "repeat", "reshape", "round", "searchsorted",
    "sort", "split", "squeeze", "stack", "std", "sum", "swapaxes", "take", "take_along_axis",
    "tensordot", "tile", "transpose", "tril", "triu", "unique", "var", "vstack", "hstack", "where",
    "zeros", "zeros_like", "cumprod", "argpartition", "partition", "array_split", "bincount",
)
_module = sys.modules[__name__]
for _name in _UFUNCS:
    setattr(_module, _name, _Ufunc(_name))
for _name in _FUNCTIONS:
    setattr(_module, _name, _device_function(_name))
for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "uint32", "uint64", "bool_", "intp", "dtype", "finfo", "iinfo", "result_type",
              "can_cast", "issubdtype", "floating", "integer", "signedinteger", "unsignedinteger",
              "number", "inf", "nan", "pi", "e", "newaxis", "float_", "complex64", "complex128"):
    if hasattr(np, _name):
        setattr(_module, _name, getattr(np, _name))
setattr(_module, "bool", np.bool_)  # cupy.bool is NumPy's bool (set so as not to hide the builtin here)
for _name in ("ndim", "shape", "size"):
    setattr(_module, _name, (lambda attribute: lambda a: getattr(a, attribute))(_name))


def asarray(a, dtype=None, order=None):
    """A device array of ``a``: the same one when it is already there with that dtype, else a
    copy (host data moves to the device)."""
    calls["cupy.asarray"] += 1
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return ndarray._of(np.array(_operand(a, "asarray", allow_host=True), dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    calls["cupy.array"] += 1
    host = obj._host if isinstance(obj, ndarray) else obj
    return ndarray._of(np.array(host, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    calls["cupy.ascontiguousarray"] += 1
    return ndarray._of(np.ascontiguousarray(_operand(a, "ascontiguousarray"), dtype=dtype))


def asfortranarray(a, dtype=None):
    calls["cupy.asfortranarray"] += 1
    return ndarray._of(np.asfortranarray(_operand(a, "asfortranarray"), dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None) -> np.ndarray:
    """A NumPy copy of a device array (NumPy input comes back as an array of itself)."""
    calls["cupy.asnumpy"] += 1
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _module if builtins.any(isinstance(a, ndarray) for a in args) else np


def copyto(dst, src, casting="same_kind", where=True):
    if not isinstance(dst, ndarray):
        raise TypeError(f"copyto: dst must be a cupy.ndarray, got {type(dst).__name__}")
    np.copyto(dst._host, _operand(src, "copyto"), casting=casting, where=_operand(where, "copyto"))


def shares_memory(a, b, max_work=None):
    return np.shares_memory(_operand(a, "shares_memory"), _operand(b, "shares_memory"))


def may_share_memory(a, b, max_work=None):
    return np.may_share_memory(_operand(a, "may_share_memory"), _operand(b, "may_share_memory"))


def isscalar(element):
    return np.isscalar(element)


def fuse(*args, **kwargs):  # cupy.fuse: the emulation runs the function as it is
    if args and callable(args[0]):
        return args[0]
    return lambda f: f


# --- the device: runtime, Device, Stream, Event, memory pool ---------------------------------------

class _Runtime:
    """``cupy.cuda.runtime``: one emulated device, numbered 0."""

    class CUDARuntimeError(RuntimeError):
        pass

    @staticmethod
    def getDeviceCount() -> int:
        return 1

    @staticmethod
    def getDevice() -> int:
        return 0

    @staticmethod
    def getDeviceProperties(device: int) -> dict:
        _Runtime._check(device)
        return {"name": b"Emulated CUDA device (NumPy)", "totalGlobalMem": 16 * 2**30,
                "major": 0, "minor": 0, "multiProcessorCount": 1}

    @staticmethod
    def runtimeGetVersion() -> int:
        return 12000

    @staticmethod
    def driverGetVersion() -> int:
        return 12000

    @staticmethod
    def deviceSynchronize() -> None:
        pass

    @staticmethod
    def _check(device):
        if device != 0:
            raise _Runtime.CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        _Runtime._check(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        pass

    def synchronize(self):
        pass

    @property
    def compute_capability(self) -> str:
        return "00"

    @property
    def mem_info(self):
        total = 16 * 2**30
        return total - _memory_pool.used_bytes(), total

    def __repr__(self):
        return f"<CUDA Device {self.id} (emulated)>"


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False):
        pass

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


Stream.null = Stream(null=True)


class Event:
    """Records host time: kernels of the emulation run synchronously."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        import time

        self.time = time.perf_counter()

    def synchronize(self):
        pass


def get_elapsed_time(start: Event, end: Event) -> float:
    return (end.time - start.time) * 1000.0  # milliseconds, as CUDA reports them


class MemoryPool:
    """The bytes the emulation's device arrays would hold cannot be tracked cheaply: it reports
    zero in use and keeps a high-water mark of nothing. Real CuPy's pool says what a GPU holds."""

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass

    def set_limit(self, size=None, fraction=None) -> None:
        pass


_memory_pool = MemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _memory_pool


def get_default_pinned_memory_pool() -> MemoryPool:
    return _memory_pool


cuda = types.ModuleType("cupy.cuda")
cuda.runtime = _Runtime
cuda.Device = Device
cuda.Stream = Stream
cuda.Event = Event
cuda.get_elapsed_time = get_elapsed_time
cuda.MemoryPool = MemoryPool
cuda.is_available = lambda: True
cuda.get_current_stream = lambda: Stream.null


# --- random numbers --------------------------------------------------------------------------------

class Generator:
    """``cupy.random.Generator``: NumPy's PCG64 behind CuPy's method signatures (a float
    dtype= for random and standard_normal, results on the device)."""

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        return _wrap(self._rng.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return _wrap(self._rng.standard_normal(size, dtype=dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return _wrap(self._rng.uniform(low, high, size).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return _wrap(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint))

    def standard_exponential(self, size=None, dtype=np.float64, method="inv", out=None):
        return _wrap(self._rng.standard_exponential(size, dtype=dtype))


class RandomState:
    """``cupy.random.RandomState``, the legacy generator."""

    def __init__(self, seed=None):
        self._rng = np.random.RandomState(seed)

    def rand(self, *size, dtype=np.float64):
        return _wrap(self._rng.rand(*size).astype(dtype))

    def randn(self, *size, dtype=np.float64):
        return _wrap(self._rng.randn(*size).astype(dtype))

    def random_sample(self, size=None, dtype=np.float64):
        return _wrap(self._rng.random_sample(size).astype(dtype))

    def standard_normal(self, size=None, dtype=np.float64):
        return _wrap(self._rng.standard_normal(size).astype(dtype))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=np.float64):
        return _wrap(self._rng.normal(loc, scale, size).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return _wrap(self._rng.uniform(low, high, size).astype(dtype))

    def randint(self, low, high=None, size=None, dtype=int):
        return _wrap(self._rng.randint(low, high, size, dtype=dtype))

    def choice(self, a, size=None, replace=True, p=None):
        return _wrap(self._rng.choice(_operand(a, "choice"), size, replace, _operand(p, "choice")))

    def seed(self, seed=None):
        self._rng.seed(seed)


random = types.ModuleType("cupy.random")
random.Generator = Generator
random.RandomState = RandomState
random.default_rng = lambda seed=None: Generator(seed)
_global_random_state = RandomState()
random.seed = _global_random_state.seed
for _name in ("rand", "randn", "random_sample", "standard_normal", "normal", "uniform", "randint", "choice"):
    setattr(random, _name, getattr(_global_random_state, _name))
random.random = random.random_sample


# --- kernels: checked launches, Python fallbacks ----------------------------------------------------

_emulations: dict[str, Callable] = {}


def emulates(name: str):
    """Decorator: the Python function that stands in for the kernel called ``name``."""
    def decorate(function):
        _emulations[name] = function
        return function
    return decorate


def _emulation_of(name: str) -> Callable:
    if name not in _emulations:
        from . import cuda_emulations  # noqa: F401  (registers the fallbacks on first use)
    if name not in _emulations:
        raise NotImplementedError(f"the emulated CUDA device has no Python fallback for kernel {name!r}")
    return _emulations[name]


_C_TYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64,
            "unsigned int": np.uint32, "long": np.int64, "bool": np.bool_, "size_t": np.uint64,
            "float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64,
            "uint32": np.uint32, "unsigned long long": np.uint64, "ptrdiff_t": np.int64}


def _parse_c_parameters(code: str, name: str):
    """[(dtype, is_pointer), ...] of ``name``'s parameters in its ``extern "C" __global__``
    definition."""
    match = re.search(r"__global__\s+void\s+" + re.escape(name) + r"\s*\(([^)]*)\)", code)
    if match is None:
        raise ValueError(f"RawKernel: no __global__ function {name!r} in the code")
    parameters = []
    for declaration in match.group(1).split(","):
        declaration = re.sub(r"\b(const|__restrict__|__restrict|restrict)\b", " ", declaration)
        is_pointer = "*" in declaration
        words = declaration.replace("*", " ").split()
        type_name = " ".join(words[:-1])
        if type_name not in _C_TYPES:
            raise ValueError(f"RawKernel {name}: the emulation does not know the C type {type_name!r}")
        parameters.append((np.dtype(_C_TYPES[type_name]), is_pointer))
    return parameters


class RawKernel:
    """``cupy.RawKernel(code, name)``; ``kernel(grid, block, args, shared_mem=0)`` checks the
    launch against the CUDA signature, then runs ``name``'s Python fallback as
    ``fallback(grid, block, *host_args, shared_mem=...)``, which writes its outputs in place."""

    MAX_THREADS_PER_BLOCK = 1024
    MAX_SHARED_MEMORY = 48 * 1024

    def __init__(self, code: str, name: str, options=(), backend="nvrtc", translate_cucomplex=False,
                 *, enable_cooperative_groups=False, jitify=False):
        self.code, self.name, self.options = code, name, options
        self.parameters = _parse_c_parameters(code, name)
        self.attributes = {"max_threads_per_block": self.MAX_THREADS_PER_BLOCK}

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        grid, block = _dims(grid, "grid"), _dims(block, "block")
        if int(np.prod(block)) > self.MAX_THREADS_PER_BLOCK:
            raise ValueError(f"{self.name}: {block} threads in a block; at most {self.MAX_THREADS_PER_BLOCK}")
        if shared_mem > self.MAX_SHARED_MEMORY:
            raise ValueError(f"{self.name}: {shared_mem} bytes of shared memory; at most {self.MAX_SHARED_MEMORY}")
        if not isinstance(args, tuple):
            raise TypeError(f"{self.name}: the kernel's arguments must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.parameters)} parameters")
        host_args = []
        for position, (arg, (dtype, is_pointer)) in enumerate(zip(args, self.parameters)):
            where = f"{self.name} argument {position}"
            if is_pointer:
                if not isinstance(arg, ndarray):
                    raise TypeError(f"{where}: a pointer needs a cupy.ndarray, got {type(arg).__name__}")
                if arg.dtype != dtype:
                    raise TypeError(f"{where}: the kernel reads {dtype}, the array is {arg.dtype}")
                if not arg.flags.c_contiguous:
                    raise ValueError(f"{where}: a kernel indexes a flat buffer; the array is not C-contiguous")
                host_args.append(arg._host)
            else:
                if not isinstance(arg, np.generic) or arg.dtype != dtype:
                    raise TypeError(f"{where}: a {dtype} scalar must be passed as numpy.{dtype}(...), "
                                    f"got {type(arg).__name__} (CuPy would pass a Python number as "
                                    "a 64-bit value)")
                host_args.append(arg)
        calls["RawKernel " + self.name] += 1
        _emulation_of(self.name)(grid, block, *host_args, shared_mem=shared_mem)


def _dims(value, what):
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or builtins.any(int(d) < 1 for d in dims):
        raise ValueError(f"RawKernel: {what} must be 1 to 3 positive sizes, got {value!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


class RawModule:
    def __init__(self, *, code: str, options=(), name_expressions=None, backend="nvrtc"):
        self.code, self.options = code, options

    def get_function(self, name: str) -> RawKernel:
        return RawKernel(self.code, name, self.options)


class ElementwiseKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name)``: called with the
    inputs (and optionally the outputs, updated in place), broadcast together; the fallback
    ``name`` gets NumPy arrays (inputs, then outputs) and writes the outputs in place."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel",
                 reduce_dims=True, preamble="", no_return=False, return_tuple=False, **kwargs):
        self.name, self.operation = name, operation
        self.in_params = _parse_elementwise(in_params)
        self.out_params = _parse_elementwise(out_params)
        self.return_tuple = return_tuple

    def __call__(self, *args, size=None, block_size=None, stream=None):
        n_in, n_out = len(self.in_params), len(self.out_params)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} for {n_in} inputs "
                            f"and {n_out} outputs")
        type_of = {}  # the letter a generic type T stands for, from the arrays it is given
        inputs = []
        for arg, (kind, name, raw) in zip(args[:n_in], self.in_params):
            if isinstance(arg, np.ndarray):
                raise TypeError(f"{self.name}: unsupported type <class 'numpy.ndarray'> for {name}")
            host = arg._host if isinstance(arg, ndarray) else arg
            if isinstance(arg, ndarray):
                _check_type(self.name, name, kind, arg.dtype, type_of)
            inputs.append(host)
        arrays = [a for a in inputs if isinstance(a, np.ndarray) and a.ndim > 0]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        outputs = []
        if len(args) == n_in + n_out:
            for arg, (kind, name, raw) in zip(args[n_in:], self.out_params):
                if not isinstance(arg, ndarray):
                    raise TypeError(f"{self.name}: output {name} must be a cupy.ndarray")
                _check_type(self.name, name, kind, arg.dtype, type_of)
                if arg.shape != shape and arrays:
                    raise ValueError(f"{self.name}: output {name} has shape {arg.shape}; the inputs broadcast to {shape}")
                outputs.append(arg)
        else:
            for kind, name, raw in self.out_params:
                dtype = _C_TYPES.get(kind) or type_of.get(kind)
                if dtype is None:
                    raise TypeError(f"{self.name}: cannot tell the type {kind} of output {name}")
                outputs.append(ndarray(shape, dtype=dtype))
        broadcast = [np.broadcast_to(a, shape) if isinstance(a, np.ndarray) and a.ndim > 0 else a
                     for a in inputs]
        calls["ElementwiseKernel " + self.name] += 1
        _emulation_of(self.name)(*broadcast, *(o._host for o in outputs))
        if len(outputs) == 1 and not self.return_tuple:
            return outputs[0]
        return tuple(outputs)


def _parse_elementwise(params: str):
    parsed = []
    for declaration in filter(None, (p.strip() for p in params.split(","))):
        words = declaration.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        parsed.append((" ".join(words[:-1]), words[-1], raw))
    return parsed


def _check_type(kernel, name, kind, dtype, type_of):
    if kind in _C_TYPES:
        if dtype != np.dtype(_C_TYPES[kind]):
            raise TypeError(f"{kernel}: {name} is declared {kind}, the array is {dtype}")
        return
    if type_of.setdefault(kind, dtype) != dtype:
        raise TypeError(f"{kernel}: {name} is {dtype}, but {kind} was {type_of[kind]} for another argument")


class ReductionKernel:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("the emulated CUDA device has no ReductionKernel: write the "
                                  "reduction as a RawKernel with an emulation")


# --- cupyx: scatter_add and scipy.special.erf -------------------------------------------------------

def _scatter_add(a, slices, value):
    calls["cupyx.scatter_add"] += 1
    if not isinstance(a, ndarray):
        raise TypeError(f"cupyx.scatter_add: a must be a cupy.ndarray, got {type(a).__name__}")
    np.add.at(a._host, _unwrap_index(slices), _operand(value, "scatter_add"))


def _erf(x):
    from scipy.special import erf

    calls["cupyx.scipy.special.erf"] += 1

    if isinstance(x, np.ndarray):
        raise TypeError("cupyx.scipy.special.erf: unsupported type <class 'numpy.ndarray'>")
    return _wrap(erf(_operand(x, "erf")))


cupyx = types.ModuleType("cupyx")
cupyx.scatter_add = _scatter_add
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
cupyx.scipy.special.erf = _erf
cupyx.EMULATED = True


def write_calls(path) -> None:
    """The calls made so far, most frequent first, as JSON (a test run's record of what it
    exercised on the device)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dict(calls.most_common()), f, indent=1)


def install() -> None:
    """Make ``import cupy`` (and cupyx, cupyx.scipy.special) find the emulated device; with
    MINITRANSFORMER_EMULATE_CUDA_LOG=path, write the calls made there at exit."""
    log = os.environ.get("MINITRANSFORMER_EMULATE_CUDA_LOG")
    if log:
        atexit.register(write_calls, log)
    sys.modules["cupy"] = _module
    sys.modules["cupy.cuda"] = cuda
    sys.modules["cupy.random"] = random
    sys.modules["cupyx"] = cupyx
    sys.modules["cupyx.scipy"] = cupyx.scipy
    sys.modules["cupyx.scipy.special"] = cupyx.scipy.special
