"""Where tensor data lives: NumPy arrays on the CPU or CuPy arrays on a GPU.

Every op finds its array module from its inputs (``array_module(x)``) instead of importing
NumPy, so the same line of math runs on both (the idea of DeZero's ``get_array_module``).
This module also owns the framework's one random generator (``manual_seed``).
"""

from __future__ import annotations

import numpy as np

DEFAULT_DTYPE = np.float32
DEVICES = ("cpu", "cuda")

try:  # CuPy is optional: without it everything runs on NumPy.
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA library that fails to load
    _cupy = None


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def require_cupy(what: str):
    """Return the cupy module, or raise an error that says what asked for it and why it failed."""
    if _cupy is None:
        raise RuntimeError(
            f"{what}: device 'cuda' needs CuPy, which is not installed "
            "(pip install 'minitransformer[gpu]')"
        )
    if not cupy_available():
        raise RuntimeError(f"{what}: CuPy is installed but no CUDA GPU is visible")
    return _cupy


def array_module(*arrays):
    """The module (numpy or cupy) that holds these arrays; NumPy for host data and scalars."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def is_array(x) -> bool:
    return isinstance(x, np.ndarray) or (_cupy is not None and isinstance(x, _cupy.ndarray))


def device_of(array) -> str:
    return "cuda" if _cupy is not None and isinstance(array, _cupy.ndarray) else "cpu"


def check_device(device: str, what: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"{what}: unknown device {device!r}; expected one of {DEVICES}")
    return device


def to_device(array, device: str):
    """Copy an array to 'cpu' (NumPy) or 'cuda' (CuPy); no copy when it is already there."""
    check_device(device, "to")
    if device_of(array) == device:
        return array
    if device == "cuda":
        return require_cupy("to('cuda')").asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array) -> np.ndarray:
    return to_device(array, "cpu")


def row_sums(x):
    """Sums over the last axis, shape x.shape[:-1], as a matrix-vector product x @ ones.

    NumPy reduces over a short last axis row by row (a GPT's rows are 64 to 1024 numbers);
    BLAS's matrix-vector product runs through the same rows several times faster.
    """
    xp = array_module(x)
    return x @ xp.ones(x.shape[-1], dtype=x.dtype)


def column_sums(x):
    """Sums over the first axis of a matrix (N, C) -> (C,), as ones @ x: BLAS again, 2-3x
    faster than NumPy's reduction over rows (a bias's gradient, a layer norm's weight's)."""
    xp = array_module(x)
    return xp.ones(x.shape[0], dtype=x.dtype) @ x


def scatter_add(target, index, values) -> None:
    """target[index] += values, adding repeated indices up (an unbuffered scatter-add).

    Rows picked by a 1-D index (an embedding's gradient) of a float32 matrix are added one by
    one by a compiled loop (``kernels.scatter_add_rows``, the same sums as ``np.add.at``, ~40x
    faster). Without it they are summed per distinct index after a stable sort, so each row of
    ``target`` is touched once (``np.add.reduceat``) instead of once per occurrence
    (``np.add.at``, several times slower); those sums may round differently from
    ``np.add.at``'s one-by-one additions (NumPy sums a run of rows pairwise).
    """
    xp = array_module(target)
    if xp is np and _is_row_index(index, values, target):
        from . import kernels  # kernels builds on backend: imported when first needed

        if target.ndim == 2 and kernels.use_compiled(target, values):
            kernels.scatter_add_rows(target, index, np.ascontiguousarray(values))
            return
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
        target[sorted_index[starts]] += np.add.reduceat(values[order], starts, axis=0)
    elif xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def _is_row_index(index, values, target) -> bool:
    # -1 and n-1 name one row: only non-negative indices can be told apart by value; an index
    # past the end goes to np.add.at, which raises IndexError
    return (isinstance(index, np.ndarray) and index.ndim == 1 and index.size > 0
            and index.dtype.kind in "iu" and values.shape == index.shape + target.shape[1:]
            and index.min() >= 0 and index.max() < target.shape[0])


def erf(x, out=None):
    """The error function, elementwise: float32 NumPy arrays through ``erf_float32``; float64
    (gradcheck, references) through SciPy, and CuPy arrays through cupyx.scipy, exactly.
    ``out`` (optional, may be ``x`` itself) receives the result."""
    if array_module(x) is not np:
        from cupyx.scipy.special import erf as _erf
    elif x.dtype == np.float32:
        return erf_float32(x, out)
    else:
        from scipy.special import erf as _erf
    if out is None:
        return _erf(x)
    out[...] = _erf(x)
    return out


# erf(x) = tanh(x P(x^2)) with P of degree 6, fitted by weighted least squares so that the error
# is small in units of the last place (ulp) of erf. Max error 3.7 ulp (abs 1.8e-7), mean 0.6 ulp
# over all float32 inputs (tests/test_backend.py). From |x| = 3.92 on, erf(x) rounds to +-1; P
# was fitted up to 3.95, and clamping x at 4.1 (where tanh reaches exactly 1) keeps it from
# turning over further out. SciPy's float32 erf evaluates a double
# precision series at ~12 ns per value; this costs ~2 (GPT-2's tanh GELU is P's first 2 terms).
ERF_FLOAT32_COEFFICIENTS = (1.12837923, 0.102769002, -0.000191258572, -0.000620509265,
                            8.79562213e-05, -5.72423642e-06, 1.451278e-07)  # P_0 ... P_6
ERF_FLOAT32_CLAMP = 4.1
ELEMENTWISE_CHUNK = 1 << 17  # 512 KiB of float32: a chunk and its temporaries stay in L2 cache


def erf_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """erf of a float32 NumPy array, tanh(x P(x^2)) evaluated chunk by chunk in place
    (into ``out`` when given: a contiguous float32 array of x's shape, possibly x itself)."""
    source = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(x.shape, dtype=np.float32) if out is None else out
    flat_out = out.reshape(-1)
    p_0, *p_rest = (np.float32(c) for c in ERF_FLOAT32_COEFFICIENTS)
    square = np.empty(min(ELEMENTWISE_CHUNK, source.size), dtype=np.float32)
    poly = np.empty_like(square)
    for start in range(0, source.size, ELEMENTWISE_CHUNK):
        chunk = flat_out[start:start + ELEMENTWISE_CHUNK]
        s, p = square[:len(chunk)], poly[:len(chunk)]
        np.clip(source[start:start + ELEMENTWISE_CHUNK], -ERF_FLOAT32_CLAMP, ERF_FLOAT32_CLAMP, out=chunk)
        np.multiply(chunk, chunk, out=s)  # x^2
        np.multiply(s, p_rest[-1], out=p)  # Horner: p = (...(P_6 s + P_5) s + ...) s + P_0
        for coefficient in reversed(p_rest[:-1]):
            p += coefficient
            p *= s
        p += p_0
        p *= chunk
        np.tanh(p, out=chunk)
    return out


# ---------------------------------------------------------------------------------------------
# Random numbers: one seedable generator per device, used by init, dropout, batching, sampling.

_generators: dict[str, object] = {}


def manual_seed(seed: int) -> None:
    """Seed every random number the framework draws (CPU and, when present, GPU)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generators.clear()
    _generators["cpu"] = np.random.default_rng(int(seed))
    if _cupy is not None:
        _generators["cuda_seed"] = int(seed)


def generator(device: str = "cpu"):
    """The framework's random generator for a device (numpy.random.Generator or CuPy's)."""
    if device == "cpu":
        if "cpu" not in _generators:
            _generators["cpu"] = np.random.default_rng()
        return _generators["cpu"]
    if "cuda" not in _generators:
        cp = require_cupy("random numbers on 'cuda'")
        _generators["cuda"] = cp.random.default_rng(_generators.get("cuda_seed"))
    return _generators["cuda"]


def get_rng_state() -> dict:
    """The CPU generator's state, as a JSON-friendly dict (checkpoints store it to resume)."""
    return generator("cpu").bit_generator.state


def set_rng_state(state: dict) -> None:
    generator("cpu").bit_generator.state = state
