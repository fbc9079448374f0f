"""Language-model batches: random windows of a token stream and the same windows shifted by one.

A GPT learns to predict token t+1 from tokens 0..t, at every position at once, so one window
of ``block_size + 1`` tokens gives T inputs and their T targets (nanoGPT's ``get_batch``):

    x = data[i     : i + T]       # (T,)  what the model reads
    y = data[i + 1 : i + T + 1]   # (T,)  what it should predict at each position

Offsets come from a numpy Generator, by default the framework's (``minitransformer.manual_seed``),
so a seeded run draws the same batches, and saving ``rng.bit_generator.state`` resumes it.
"""

from __future__ import annotations

import numpy as np

from .. import backend


def train_val_split(ids, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split a token stream into its first ``1 - val_fraction`` (train) and its last
    ``val_fraction`` (validation), as int64 arrays. Not shuffled: neighbouring tokens are
    correlated, so a contiguous tail is an honest held-out set."""
    data = np.asarray(ids)
    if data.ndim != 1 or not (data.size == 0 or np.issubdtype(data.dtype, np.integer)):
        raise ValueError(
            f"train_val_split: expected a 1-D sequence of integer token ids, got shape "
            f"{data.shape} and dtype {data.dtype}"
        )
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in [0, 1), got {val_fraction!r}")
    n_train = len(data) - int(round(len(data) * val_fraction))
    data = data.astype(np.int64, copy=False)
    return data[:n_train], data[n_train:]


def get_batch(
    data: np.ndarray,
    batch_size: int,
    block_size: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """B random windows of T = block_size tokens, and their next-token targets.

    data: a 1-D array of token ids, at least block_size + 1 long.
    rng: where the window offsets come from; the framework generator
        (``backend.generator("cpu")``) when None.
    Returns (x, y), int64 arrays of shape (B, T) with ``y[:, t] == data[offset + t + 1]``.
    """
    data = np.asarray(data)
    if data.ndim != 1 or not np.issubdtype(data.dtype, np.integer):
        raise ValueError(
            f"get_batch: expected a 1-D array of integer token ids, got shape {data.shape} "
            f"and dtype {data.dtype}"
        )
    for name, value in (("batch_size", batch_size), ("block_size", block_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"get_batch: {name} must be a positive integer, got {value!r}")
    if len(data) < block_size + 1:
        raise ValueError(
            f"get_batch: the data has {len(data)} tokens, too few for one window of "
            f"block_size + 1 = {block_size + 1}; use a smaller block_size or more text"
        )
    if rng is None:
        rng = backend.generator("cpu")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"get_batch: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    offsets = rng.integers(0, len(data) - block_size, size=batch_size)  # (B,) last start keeps y in range
    positions = offsets[:, None] + np.arange(block_size)                # (B, T)
    x = data[positions].astype(np.int64, copy=False)                    # (B, T)
    y = data[positions + 1].astype(np.int64, copy=False)                # (B, T)
    return x, y
