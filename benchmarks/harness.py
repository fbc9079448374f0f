"""What every suite shares: the machine description, timing, the matmul peak, FLOP counts,
and writing results (a table for people, JSON for programs).

Timing rules, because the machine may be shared and noisy: every number is the median of many
calls after warm-up calls, and when two implementations are compared they run alternately in
the same process (A, B, B, A, A, B, ...), so a burst of load from elsewhere hits both alike;
ratios are only ever taken between numbers measured side by side like that.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).parent / "results"  # committed: written only with --update-results
SCRATCH_DIR = Path(__file__).parent / "scratch"  # ignored by git: where a run writes by default


# --- the machine ------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_slug() -> str:
    """A short folder name for this machine, e.g. ``cpu-2core-intel-xeon-processor``."""
    model = re.sub(r"\((r|tm|R|TM)\)|cpu|@.*", "", cpu_model(), flags=re.IGNORECASE)
    model = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"cpu-{os.cpu_count()}core-{model}"


def blas_info() -> dict:
    """Which BLAS NumPy calls, with which kernel and how many threads.

    threadpoolctl (a minitransformer dependency) reads the kernel OpenBLAS picked at run time
    (its "architecture") and the live thread count; NumPy's build configuration is the fallback
    when it finds no BLAS of NumPy's.
    """
    from threadpoolctl import threadpool_info

    info = {}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            info = {key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                                   "num_threads", "threading_layer", "filepath")}
            break
    if not info:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            info = {"internal_api": blas.get("name"), "version": blas.get("version"),
                    "architecture": "unknown",
                    "num_threads": None}
        except Exception:  # older NumPy without mode="dicts"
            info = {"internal_api": "unknown"}
    # Thread and kernel overrides change the numbers, so they belong in the record.
    info["environment"] = {name: os.environ[name] for name in (
        "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
        "MKL_NUM_THREADS") if name in os.environ}
    return info


def blas_threads() -> int:
    """NumPy's BLAS thread count (PyTorch is given the same, so both use the same cores)."""
    threads = blas_info().get("num_threads")
    if threads:
        return int(threads)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def limit_blas_threads(threads: int) -> None:
    """Run NumPy's BLAS and minitransformer's elementwise kernels with ``threads`` threads from
    now on."""
    from threadpoolctl import threadpool_limits

    import minitransformer as mt

    mt.set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")


def import_torch(threads: int | None = None):
    """PyTorch set to ``threads`` threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or blas_threads())
    return torch


def kernel_info() -> str:
    """Which CPU kernels minitransformer's ops run: the fast layer compiled by numba (with its version), or the reference ops."""
    import minitransformer as mt
    from minitransformer.fast.cpu import kernels

    if mt.get_kernels() == "fast" and kernels.compiled_available():
        import numba

        return f"compiled (numba {numba.__version__})"
    return "reference"


def machine_info(torch=None) -> dict:
    import scipy

    import minitransformer as mt

    info = {
        "machine": machine_slug(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": blas_info(),
        "minitransformer_threads": mt.get_num_threads(),
        "minitransformer_kernels": kernel_info(),
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "gpu": "none: these results are CPU-only (NumPy backend)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # other processes on the cores distort timings (OpenMP thread teams, PyTorch's, most)
        "load_average_1_5_15_min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "unknown"
    return info


# --- timing -----------------------------------------------------------------------------------

def summarize(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "p25_ms": float(np.percentile(ms, 25)),
            "p75_ms": float(np.percentile(ms, 75)), "min_ms": float(ms.min()), "runs": len(ms)}


def time_alternating(candidates: dict, rounds: int, per_turn: int = 1, warmup: int = 1,
                     settle_s: float = 0.1) -> dict:
    """Time zero-argument callables side by side: ``rounds`` rounds, in each of which every
    candidate takes a turn of ``per_turn`` timed calls (the order reverses every round, so
    neither always runs right after the other). Returns {name: summarize(...)}.

    Each turn starts with a pause of ``settle_s`` and one untimed call: after a BLAS call,
    OpenBLAS keeps its worker threads spinning on the cores for tens of milliseconds, which
    would slow down whatever the next candidate runs (PyTorch's OpenMP threads most of all).
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    seconds = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            time.sleep(settle_s)
            candidates[name]()
            for _ in range(per_turn):
                start = time.perf_counter()
                candidates[name]()
                seconds[name].append(time.perf_counter() - start)
    return {name: summarize(seconds[name]) for name in names}


def square_matmul(n: int = 2048):
    """A zero-argument callable computing an (n, n) @ (n, n) float32 product: 2 n^3 FLOPs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return lambda: a @ b


def linear_products(n_layer: int, n_embd: int, vocab_size: int, batch: int, block: int,
                    torch=None):
    """(callable, FLOPs): the matrix products of one training step's Linear layers and nothing
    else, y = x W^T, dx = dy W and dW = dy^T x for each layer's qkv, output, MLP-in and MLP-out
    projections and for the head, with NumPy's BLAS, or with PyTorch's when ``torch`` is given
    (the same arrays, shared through ``torch.from_numpy``). Timed side by side, the two say how
    much of a step's difference is the BLAS library alone. Each layer has its own arrays, as in
    a step, so inputs come from memory rather than from a cache warmed by the layer before."""
    rng = np.random.default_rng(0)
    N, C = batch * block, n_embd
    layers = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)] * n_layer + [(C, vocab_size)]
    products, flops = [], 0
    for fan_in, fan_out in layers:
        arrays = [rng.standard_normal(shape, dtype=np.float32)
                  for shape in ((N, fan_in), (fan_out, fan_in), (N, fan_out))]  # x, W, dy
        products.append([torch.from_numpy(a) for a in arrays] if torch is not None else arrays)
        flops += 3 * 2 * N * fan_in * fan_out

    def run():
        for x, weight, grad in products:
            x @ weight.T  # (N, out)
            grad @ weight  # (N, in)
            grad.T @ x  # (out, in)

    return run, flops


def matmul_peak(n: int = 2048, runs: int = 7) -> dict:
    """The machine's achievable fp32 matmul rate: the median GFLOP/s of an (n, n) @ (n, n)
    np.matmul, 2 n^3 FLOPs each. This is the "peak" that model rates are a fraction of."""
    timing = time_alternating({"matmul": square_matmul(n)}, rounds=1, per_turn=runs)["matmul"]
    return {"n": n, "gflops": 2 * n**3 / (timing["median_ms"] * 1e-3) / 1e9,
            "best_gflops": 2 * n**3 / (timing["min_ms"] * 1e-3) / 1e9, **timing}


# --- FLOPs ------------------------------------------------------------------------------------

def gpt_step_flops(n_layer: int, n_embd: int, vocab_size: int, batch: int, block: int) -> dict:
    """Matmul FLOPs of one training step of the GPT, counted matmul by matmul.

    Forward, per layer, with N = B T tokens and C = n_embd (2 m k n FLOPs per (m,k)@(k,n)):
        qkv 2 N C 3C,  attention scores and weights @ v 2 * 2 B T T C (the full T x T, as a
        non-flash kernel computes it; the causal mask would allow half),  c_proj 2 N C C,
        MLP 2 * 2 N C 4C;   plus the head 2 N C V.
    Backward computes two matmuls of the same size per forward matmul, so a step is 3x the
    forward. Elementwise work (GELU, layer norm, softmax, AdamW) is not counted.
    ``nanogpt_estimate`` is nanoGPT's rule 6 P + 12 L T C per token (P = parameters without
    position embeddings) for comparison.
    """
    N, C, T, L, V = batch * block, n_embd, block, n_layer, vocab_size
    per_layer = 2 * N * C * 3 * C + 2 * 2 * batch * T * T * C + 2 * N * C * C + 2 * 2 * N * C * 4 * C
    forward = L * per_layer + 2 * N * C * V
    params = L * (12 * C * C + 13 * C) + V * C + 2 * C  # with biases; wte tied to lm_head
    return {"matmul_flops": 3 * forward, "nanogpt_estimate": (6 * params + 12 * L * T * C) * N,
            "method": "exact matmul count, 3x forward, full T x T attention"}


def llama_step_flops(n_layer: int, n_embd: int, vocab_size: int, batch: int, block: int,
                     n_head: int, n_kv_head: int, intermediate_size: int) -> dict:
    """Matmul FLOPs of one training step of the Llama-style model, counted as for the GPT.

    Forward, per layer, with N = B T tokens, C = n_embd, hs = C / nh, H = intermediate_size:
        q and o 2 * 2 N C (nh hs),  k and v 2 * 2 N C (n_kv hs) (grouped-query attention: fewer
        key/value heads),  attention 2 * 2 B nh T T hs (full T x T),  SwiGLU 3 * 2 N C H;
    plus the head 2 N C V; a step is 3x the forward. Elementwise work is not counted.
    """
    N, C, T, L, V = batch * block, n_embd, block, n_layer, vocab_size
    hs = C // n_head
    per_layer = (2 * 2 * N * C * n_head * hs + 2 * 2 * N * C * n_kv_head * hs
                 + 2 * 2 * batch * n_head * T * T * hs + 3 * 2 * N * C * intermediate_size)
    return {"matmul_flops": 3 * (L * per_layer + 2 * N * C * V),
            "method": "exact matmul count, 3x forward, full T x T attention"}


# --- results ----------------------------------------------------------------------------------

def output_dir(out: Path | None, update_results: bool) -> Path:
    """Where a run writes: ``out`` if given, the committed ``results/<machine>/`` with
    ``update_results``, else ``scratch/<machine>/``, so that running a benchmark never
    overwrites the reference numbers by accident."""
    if out is not None:
        return out
    return (RESULTS_DIR if update_results else SCRATCH_DIR) / machine_slug()


def write_json(out_dir: Path, suite: str, payload: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{suite}.json"
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Print rows as an aligned table; ``columns`` are (key, header) pairs, None shows as '-'."""
    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    table = [[header for _, header in columns]] + [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    print(f"\n{title}")
    for i, line in enumerate(table):
        print("  " + "  ".join(text.rjust(width) for text, width in zip(line, widths)))
        if i == 0:
            print("  " + "  ".join("-" * width for width in widths))
    sys.stdout.flush()
