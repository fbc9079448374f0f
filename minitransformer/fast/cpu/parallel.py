"""Using every CPU core for elementwise work, and reusing freed memory.

NumPy's matrix products already run on all cores (its BLAS has a thread pool), but every other
NumPy call runs on one core, where PyTorch parallelises its elementwise kernels too. NumPy
releases Python's GIL while a ufunc loops over a large array, so plain Python threads can work
on different rows of the same array at once. ``parallel_rows(kernel, n_rows, row_size)`` cuts
the rows into blocks of about 1 MiB and calls ``kernel(rows)`` for each block (a ``slice``),
sharing the blocks among ``get_num_threads()`` threads; each call writes only its rows of
preallocated outputs. Two things follow from the blocks:
- every pass a kernel makes over its block (GELU makes about twenty) finds it in the cache;
- the blocks don't depend on the thread count, so partial sums are added in the same order and
  results are bitwise the same with 1 thread or 16.
A hand-off to a thread costs tens of microseconds (more in a virtual machine, where an idle core
sleeps) and the GIL is taken back after every NumPy call, so work below
``MIN_PARALLEL_ELEMENTS`` runs in the calling thread.

Two process-wide settings, both applied when minitransformer is imported:
- OpenBLAS's idle threads spin for ~0.1 s after each matrix product before they sleep, on the
  core our second thread wants. ``minitransformer/__init__.py`` sets ``OPENBLAS_THREAD_TIMEOUT``
  (when NumPy is not loaded yet and the variable is unset) so they spin for about a millisecond:
  long enough to bridge back-to-back products, short enough to free the core for the
  elementwise work that follows them.
- glibc gives large freed blocks back to the operating system and maps fresh pages for the next
  array of the same size, paying a page fault per 4 KiB. A training step allocates and frees the
  same sizes again and again, so ``keep_freed_memory()`` asks glibc to keep blocks up to 32 MiB
  for reuse (``mallopt``); on a small GPT's step this saves about a tenth of the time.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

BLOCK_ELEMENTS = 1 << 18  # 1 MiB of float32: a block and a temporary of it stay in a core's L2 cache
MIN_PARALLEL_ELEMENTS = 1 << 19  # below 2 MiB a hand-off to another thread costs more than it saves

_num_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_blas_controller = None  # threadpoolctl's handle on the BLAS libraries, found on first use


def default_num_threads() -> int:
    """The cores this process may run on (its CPU affinity), or MINITRANSFORMER_NUM_THREADS."""
    setting = os.environ.get("MINITRANSFORMER_NUM_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(
                f"MINITRANSFORMER_NUM_THREADS is {setting!r}; expected a positive integer "
                "(the number of threads for minitransformer's CPU kernels)"
            )
        return int(setting)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """How many threads minitransformer's own CPU kernels use (NumPy's BLAS has its own setting).

    The default is read once, on first use: a step asks about a hundred times, and reading the
    environment and the CPU affinity each time cost more than some of the kernels it serves."""
    global _num_threads
    if _num_threads is None:
        _num_threads = default_num_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for elementwise kernels on the CPU (1 turns splitting off)."""
    global _num_threads, _pool
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = n


def _forget_pool_in_child() -> None:  # a forked child has the pool object but not its threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def row_blocks(n_rows: int, row_size: int, block_elements: int | None = None) -> list[slice]:
    """[0, n_rows) cut into contiguous blocks of about ``block_elements`` numbers each
    (``BLOCK_ELEMENTS`` unless given)."""
    block_elements = block_elements or BLOCK_ELEMENTS
    count = max(1, min(n_rows, round(n_rows * row_size / block_elements)))
    bounds = [n_rows * i // count for i in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def parallel_rows(kernel, n_rows: int, row_size: int, uses_blas: bool = False) -> list:
    """[kernel(rows) for rows in row_blocks(...)], the blocks shared out among the threads.

    ``kernel(rows)`` gets a ``slice`` of rows; it must write only those rows of any output
    (what it returns, such as partial sums, comes back in block order). Blocks are about 1 MiB,
    so each pass a kernel makes over its block finds the data still in cache.
    A kernel that multiplies matrices says ``uses_blas=True``: while its blocks run on several
    threads, BLAS runs on one thread in each, instead of every call waking BLAS's own threads
    for a product too small to share out (attention's (T, hs) x (hs, T) per head).
    """
    blocks = row_blocks(n_rows, row_size)
    if n_rows * row_size < MIN_PARALLEL_ELEMENTS or get_num_threads() == 1 or len(blocks) == 1:
        return [kernel(rows) for rows in blocks]
    threads = min(get_num_threads(), len(blocks))
    # Every thread, the calling one included, takes the next block not yet taken until none is
    # left. A thread that starts late (its core still busy, say with BLAS's spinning threads)
    # simply takes fewer blocks, instead of leaving the others waiting for its fixed share.
    results = [None] * len(blocks)
    next_block = itertools.count()  # next() on it is atomic: the GIL guards it
    failed = []  # after an error in any thread, the others take no further blocks

    def take_blocks():
        for i in iter(lambda: next(next_block), None):
            if i >= len(blocks) or failed:
                return
            try:
                results[i] = kernel(blocks[i])
            except BaseException:
                failed.append(i)
                raise

    with _single_threaded_blas() if uses_blas else contextlib.nullcontext():
        helpers = [_thread_pool().submit(take_blocks) for _ in range(threads - 1)]
        try:
            take_blocks()
        finally:  # a helper that never started is cancelled; the others finish their block
            running = [helper for helper in helpers if not helper.cancel()]
            errors = [helper.exception() for helper in running]
    for error in errors:
        if error is not None:
            raise error
    return results


def _single_threaded_blas():
    """A context in which NumPy's BLAS uses one thread (threadpoolctl finds the library)."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=get_num_threads() - 1,
                                   thread_name_prefix="minitransformer")
    return _pool


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed blocks of up to 32 MiB instead of unmapping them (Linux only).

    Returns whether the setting took. Without glibc (macOS, Windows, musl), or with the
    environment variable MINITRANSFORMER_KEEP_FREED_MEMORY=0, nothing changes.
    """
    if not sys.platform.startswith("linux") or os.environ.get("MINITRANSFORMER_KEEP_FREED_MEMORY") == "0":
        return False
    try:  # the process's own symbols include the C library's: no search for libc needed
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt (musl)
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
    # blocks above the mmap threshold get their own mapping, unmapped when freed: raise it to
    # glibc's maximum, and let the heap keep up to 256 MiB of free space at its top
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 256 << 20))
