"""Choosing between an op's reference code and a faster implementation of it.

Every op in ``ops/`` is written once, as its math. A faster implementation (compiled, threaded,
or for a GPU) lives in the fast layer (``minitransformer/fast/``) and *registers* itself here
for the op and the conditions it handles: the device of the op's arrays, their float dtypes,
and any other test (``when``, e.g. "over the last axis"). ``Function.apply`` asks
``implementation_for`` once per call; with no registration that handles the call, or with
``set_kernels("reference")``, the reference runs. Nothing in the stack imports the fast layer:
the package ``__init__`` loads it, and its modules call ``register``.

A registered implementation of a ``Function`` is a subclass of it that overrides both
``forward`` and ``backward``, so what it saves for backward is its own business. A few hot
spots are plain functions, not ops: the engine adding up a tensor's gradients, Adam's update,
the scatter-add of an embedding's gradient, the squared norm behind gradient clipping. Those
are marked ``@dispatchable``, and a faster version registers for them the same way. Each
registration has a parity test against its reference (tests/fast/test_parity.py).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .backend import device_of, is_array

KERNEL_CHOICES = ("fast", "reference")

_choice: str | None = None  # read from MINITRANSFORMER_KERNELS on first use


def _default_choice() -> str:
    setting = os.environ.get("MINITRANSFORMER_KERNELS", "fast").strip() or "fast"
    if setting not in KERNEL_CHOICES:
        raise ValueError(
            f"MINITRANSFORMER_KERNELS is {setting!r}; expected one of {', '.join(KERNEL_CHOICES)}"
        )
    return setting


def get_kernels() -> str:
    """"fast" (registered implementations where they apply) or "reference" (the ops' own code)."""
    global _choice
    if _choice is None:
        _choice = _default_choice()
    return _choice


def set_kernels(choice: str) -> None:
    """Run the fast layer's implementations ("fast") or only the reference ops ("reference")."""
    global _choice
    if choice not in KERNEL_CHOICES:
        raise ValueError(f"set_kernels: expected one of {', '.join(KERNEL_CHOICES)}, got {choice!r}")
    _choice = choice


@dataclass(frozen=True)
class Registration:
    """``implementation`` stands in for ``reference`` on calls it handles."""

    name: str  # e.g. "cpu.layer_norm": what parity tests and error messages call it
    reference: object  # a Function subclass, or a @dispatchable function
    implementation: object  # a subclass of that Function, or a function of the same arguments
    device: str  # "cpu" or "cuda": every array input must be there
    dtypes: frozenset  # every floating-point array input must have one of these dtypes
    when: Callable | None  # when(*arrays, **params) -> bool, a further condition
    available: Callable | None  # available() -> bool: can it run here (numba importable, opted in...)

    def handles(self, args, params) -> bool:
        """Whether every array among ``args`` suits it, and ``when(*args, **params)`` holds."""
        on_cpu = self.device == "cpu"
        for a in args:
            if type(a) is np.ndarray:  # the common case, told apart without a function call
                if not on_cpu:
                    return False
            elif not is_array(a):  # None, a number, a flag
                continue
            elif on_cpu or device_of(a) != self.device:  # a GPU array, or a subclass of
                return False  # ndarray (memmap...), which CPU implementations don't take
            dtype = a.dtype
            if dtype.kind == "f" and dtype not in self.dtypes:  # a set: one hash, no == per dtype
                return False
        if self.available is not None and not self.available():  # first: when() may cost more
            return False
        return self.when is None or bool(self.when(*args, **params))


_registry: dict[object, list[Registration]] = {}


def register(reference, name: str, *, device: str = "cpu", dtypes=(np.float32,),
             when: Callable | None = None, available: Callable | None = None):
    """Decorator: the decorated implementation replaces ``reference`` on the calls it handles."""
    def decorate(implementation):
        entry = Registration(name, reference, implementation, device,
                             frozenset(np.dtype(d) for d in dtypes), when, available)
        if any(r.name == name for r in registrations()):
            raise ValueError(f"register: a fast implementation named {name!r} is registered already")
        _registry.setdefault(reference, []).append(entry)
        return implementation
    return decorate


def implementation_for(reference, args, params):
    """The first registered implementation that handles this call, or None (the reference)."""
    candidates = _registry.get(reference)
    if not candidates or (_choice or get_kernels()) != "fast":
        return None
    for entry in candidates:
        if entry.handles(args, params):
            return entry.implementation
    return None


def dispatchable(reference: Callable) -> Callable:
    """Decorator for a plain function that the fast layer may replace: a call runs the first
    registered implementation that handles its arguments, else ``reference`` itself.

    ``register(f, ...)`` takes the decorated function ``f``; ``f.reference`` is the plain one.
    """
    @functools.wraps(reference)
    def call(*args, **params):
        implementation = implementation_for(call, args, params)
        return (implementation or reference)(*args, **params)

    call.reference = reference
    return call


def unregister(name: str) -> None:
    """Remove the registration called ``name`` (an experiment's, a lesson's)."""
    for entries in _registry.values():
        for entry in entries:
            if entry.name == name:
                entries.remove(entry)
                return
    raise KeyError(f"unregister: no fast implementation named {name!r} is registered")


def registrations() -> list[Registration]:
    """Every registration, in the order they were made."""
    return [entry for entries in _registry.values() for entry in entries]
