"""Input checks shared by the ops: each raises an error that names the op, what it got and what
it expected, before NumPy can fail somewhere deep with a message about something else."""

from __future__ import annotations

import numpy as np

from ..backend import describe


def normalize_axes(op: str, axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(
                f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions; "
                f"expected {-ndim} <= axis < {ndim}"
            )
        normalized.append(int(a) % max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} repeats an axis")
    return tuple(sorted(normalized))


def normalize_axis(op: str, axis, ndim: int) -> int:
    """One axis (an int, possibly negative) as a non-negative int; a tuple is an error here."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    return normalize_axes(op, axis, ndim)[0]


def check_float(op: str, name: str, array) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{op}: {name} must be floating point, got {describe(array)}")


def check_integer(op: str, name: str, array) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{op}: {name} must hold integer indices, got {describe(array)}; "
            "convert with .astype('int64') if the values are whole numbers"
        )


def check_index_range(op: str, name: str, indices, size: int, allowed=()) -> None:
    """Every index in [0, size) (or one of ``allowed``), else a ValueError naming the culprits."""
    valid = (indices >= 0) & (indices < size)
    for value in allowed:
        valid |= indices == value
    if indices.size and not bool(valid.all()):
        bad = sorted({int(v) for v in indices[~valid].ravel()[:5].tolist()})
        raise ValueError(f"{op}: {name} must lie in [0, {size}), got {bad}")
