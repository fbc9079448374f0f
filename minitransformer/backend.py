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


def describe(x) -> str:
    """'shape (2, 3) float32': how error messages name an array or a tensor (its ``.data``)."""
    data = x if is_array(x) else getattr(x, "data", x)
    if is_array(data):
        return f"shape {tuple(data.shape)} {data.dtype}"
    return f"{type(data).__name__} {data!r}"


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


def scatter_add(target, index, values) -> None:
    """target[index] += values, in place, repeated indices adding up (unbuffered, unlike
    ``target[index] += values``, where a repeated index keeps one of its values):
    ``np.add.at`` on the CPU, ``cupyx.scatter_add`` on a GPU."""
    if array_module(target) is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def erf(x):
    """The error function, elementwise: SciPy's for NumPy arrays, cupyx.scipy's for CuPy ones."""
    if array_module(x) is np:
        from scipy.special import erf as _erf
    else:
        from cupyx.scipy.special import erf as _erf
    return _erf(x)


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
