"""Python fallbacks of the fast layer's CUDA kernels (minitransformer/fast/cuda/kernels.py),
run by the emulated device (fake_cupy.py) in place of the CUDA code.

Each follows its kernel's plan of work, not just its result: a row kernel checks that the
launch gives one block per row, a power-of-two block and the shared memory its reduction needs,
then computes each row as the kernel's threads do (partial results per thread, then the tree
reduction), in float32. So on the emulated device the parity tests check everything around the
CUDA code (shapes, dtypes, contiguity, scalar types, launch sizes, what is saved for backward)
and this plan; the CUDA code itself only a GPU checks.
"""

from __future__ import annotations

import numpy as np

from .fake_cupy import emulates

F32 = np.float32


def check_row_launch(name, grid, block, shared_mem, n_rows, halves=1):
    threads = block[0]
    if grid != (n_rows, 1, 1) or block[1:] != (1, 1):
        raise ValueError(f"{name}: launched with grid {grid}, block {block}; the kernel needs one "
                         f"block per row: grid ({n_rows},), a 1-d block")
    if threads & (threads - 1):
        raise ValueError(f"{name}: its tree reduction needs a power-of-two block, got {threads} threads")
    if shared_mem < halves * threads * 4:
        raise ValueError(f"{name}: {shared_mem} bytes of shared memory; the reduction needs "
                         f"{halves * threads * 4} ({halves} float per thread)")
    return threads


def thread_partials(rows, threads, combine, initial):
    """(N, threads): what each thread's strided loop over its row leaves (j = t, t+threads...)."""
    n_rows, n_cols = rows.shape
    padded = np.full((n_rows, -(-n_cols // threads) * threads), initial, dtype=F32)
    padded[:, :n_cols] = rows
    return combine.reduce(padded.reshape(n_rows, -1, threads), axis=1)


def tree_reduce(partials, combine):
    """The shared-memory reduction: halve the active threads until one value is left."""
    while partials.shape[1] > 1:
        half = partials.shape[1] // 2
        partials = combine(partials[:, :half], partials[:, half:])
    return partials[:, 0]


def max_nan(a, b):
    """The kernel's max_nan: NaN wins, as in the reference (np.maximum propagates NaN too)."""
    return np.maximum(a, b)


@emulates("softmax_rows")
def softmax_rows(grid, block, x, y, n_cols, log_output, *, shared_mem):
    n_cols = int(n_cols)
    n_rows = x.size // n_cols
    threads = check_row_launch("softmax_rows", grid, block, shared_mem, n_rows)
    rows = x.reshape(n_rows, n_cols)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = tree_reduce(thread_partials(rows, threads, np.maximum, -np.inf), max_nan)[:, None]
        e = np.exp(rows - m)
        s = tree_reduce(thread_partials(e, threads, np.add, 0), np.add)[:, None]
        out = (rows - m) - np.log(s) if log_output else e / s
    y.reshape(n_rows, n_cols)[...] = out


@emulates("softmax_backward_rows")
def softmax_backward_rows(grid, block, g, y, dx, n_cols, log_output, *, shared_mem):
    n_cols = int(n_cols)
    n_rows = y.size // n_cols
    threads = check_row_launch("softmax_backward_rows", grid, block, shared_mem, n_rows)
    g, y = g.reshape(n_rows, n_cols), y.reshape(n_rows, n_cols)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = g if log_output else g * y
        s = tree_reduce(thread_partials(terms, threads, np.add, 0), np.add)[:, None]
        out = g - np.exp(y) * s if log_output else y * (g - s)
    dx.reshape(n_rows, n_cols)[...] = out


@emulates("layer_norm_rows")
def layer_norm_rows(grid, block, x, w, b, x_hat, rstd, y, n_cols, eps, *, shared_mem):
    n_cols = int(n_cols)
    n_rows = x.size // n_cols
    threads = check_row_launch("layer_norm_rows", grid, block, shared_mem, n_rows)
    if rstd.size != n_rows or w.size != n_cols or b.size != n_cols:
        raise ValueError(f"layer_norm_rows: rstd {rstd.size}, w {w.size}, b {b.size} for {n_rows} rows of {n_cols}")
    rows = x.reshape(n_rows, n_cols)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = tree_reduce(thread_partials(rows, threads, np.add, 0), np.add)[:, None] / F32(n_cols)
        centred = rows - mean
        var = tree_reduce(thread_partials(centred * centred, threads, np.add, 0), np.add)[:, None] / F32(n_cols)
        r = F32(1) / np.sqrt(var + eps)
        h = centred * r
    rstd[...] = r[:, 0]
    x_hat.reshape(n_rows, n_cols)[...] = h
    y.reshape(n_rows, n_cols)[...] = h * w + b


@emulates("layer_norm_backward_rows")
def layer_norm_backward_rows(grid, block, g, x_hat, rstd, w, dx, n_cols, *, shared_mem):
    n_cols = int(n_cols)
    n_rows = g.size // n_cols
    threads = check_row_launch("layer_norm_backward_rows", grid, block, shared_mem, n_rows, halves=2)
    g, h = g.reshape(n_rows, n_cols), x_hat.reshape(n_rows, n_cols)
    with np.errstate(invalid="ignore", over="ignore"):
        g_hat = g * w
        mean_g_hat = tree_reduce(thread_partials(g_hat, threads, np.add, 0), np.add)[:, None] / F32(n_cols)
        mean_dot = tree_reduce(thread_partials(g_hat * h, threads, np.add, 0), np.add)[:, None] / F32(n_cols)
        out = rstd.reshape(n_rows, 1) * (g_hat - mean_g_hat - h * mean_dot)
    dx.reshape(n_rows, n_cols)[...] = out


@emulates("add_rows_at")
def add_rows_at(grid, block, table, ids, rows, n_values, width, *, shared_mem):
    n_values, width = int(n_values), int(width)
    if grid[0] * block[0] < n_values:
        raise ValueError(f"add_rows_at: {grid[0]} blocks of {block[0]} threads cover "
                         f"{grid[0] * block[0]} of {n_values} values")
    if rows.size != n_values or ids.size * width != n_values:
        raise ValueError(f"add_rows_at: {ids.size} ids and {rows.size} values for rows of {width}")
    if ids.min() < 0 or ids.max() * width >= table.size:
        raise IndexError("add_rows_at: an id outside the table (the kernel would write out of bounds)")
    np.add.at(table.reshape(-1, width), ids, rows.reshape(-1, width))


# --- elementwise kernels: given NumPy arrays broadcast together, inputs then outputs ---------

_INV_SQRT_2 = F32(0.70710678118654752)
_INV_SQRT_2PI = F32(0.39894228040143268)


@emulates("gelu_forward")
def gelu_forward(a, cdf, z):
    from scipy.special import erf

    cdf[...] = F32(0.5) * (F32(1) + erf(a * _INV_SQRT_2))
    z[...] = a * cdf


@emulates("gelu_backward")
def gelu_backward(a, cdf, g, grad_a):
    with np.errstate(over="ignore", invalid="ignore"):
        grad_a[...] = g * (cdf + a * np.exp(F32(-0.5) * a * a) * _INV_SQRT_2PI)


@emulates("adam_update")
def adam_update(grad, shrink, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                sqrt_bias_correction2, eps, step_size, theta, m, v):
    for scalar in (shrink, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                   sqrt_bias_correction2, eps, step_size):
        if np.ndim(scalar) or np.asarray(scalar).dtype != F32:
            raise TypeError(f"adam_update: the scalars must be float32 numbers, got {scalar!r}")
    with np.errstate(invalid="ignore", over="ignore"):
        param = theta * shrink
        g = grad + l2 * param if l2 != 0 else grad
        m[...] = m * beta1 + one_minus_beta1 * g
        v[...] = v * beta2 + one_minus_beta2 * g * g
        theta[...] = param - m / (np.sqrt(v) / sqrt_bias_correction2 + eps) * step_size


@emulates("flash_attention_forward")
def flash_attention_forward(grid, block, q, k, v, o, lse, t_query, t_key, d, scale, causal, *, shared_mem):
    """Tiles of keys as the kernel walks them, every query row of the launch at once, with the
    online softmax's running max, sum and accumulator."""
    t_query, t_key, d = int(t_query), int(t_key), int(d)
    n_heads = q.size // (t_query * d)
    rows_per_block = block[0]
    if block != (64, 1, 1):
        raise ValueError(f"flash_attention_forward: its shared tiles hold 64 keys; launched with block {block}")
    if grid != (-(-t_query // rows_per_block), n_heads, 1):
        raise ValueError(f"flash_attention_forward: grid {grid} for {t_query} queries of {n_heads} heads")
    if d > 64:
        raise ValueError(f"flash_attention_forward: heads of {d} > FLASH_MAX_D = 64")
    if k.size != n_heads * t_key * d or v.size != n_heads * t_key * d or lse.size != n_heads * t_query:
        raise ValueError("flash_attention_forward: k, v or lse do not fit q's heads")
    q, k, v = (a.reshape(n_heads, -1, d) for a in (q, k, v))
    q = q * F32(scale)
    m = np.full((n_heads, t_query), -np.inf, dtype=F32)
    l = np.zeros((n_heads, t_query), dtype=F32)
    acc = np.zeros((n_heads, t_query, d), dtype=F32)
    query_index = np.arange(t_query)[:, None]
    for start in range(0, t_key, rows_per_block):
        k_tile, v_tile = k[:, start:start + rows_per_block], v[:, start:start + rows_per_block]
        s = q @ k_tile.swapaxes(1, 2)  # (BH, Tq, tile)
        if causal:
            s = np.where(np.arange(start, start + k_tile.shape[1])[None, :] > query_index, -np.inf, s)
        m_new = np.maximum(m, s.max(axis=-1))
        with np.errstate(invalid="ignore"):  # a fully hidden tile: exp(-inf - -inf)
            correction = np.where(np.isneginf(m_new), 0, np.exp(m - m_new)).astype(F32)
            p = np.where(np.isneginf(s), 0, np.exp(s - m_new[..., None])).astype(F32)
        l = l * correction + p.sum(axis=-1)
        acc = acc * correction[..., None] + p @ v_tile
        m = m_new
    o.reshape(n_heads, t_query, d)[...] = acc / l[..., None]
    lse.reshape(n_heads, t_query)[...] = m + np.log(l)
