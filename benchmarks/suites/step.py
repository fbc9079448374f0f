"""Suite ``step``: one full GPT training step, minitransformer (NumPy) against PyTorch eager.

Both run nanoGPT's architecture in float32 with the same thread count, on the same batches,
alternating step by step in one process. Reported per config: ms per step (median), tokens/s,
achieved GFLOP/s from the exact matmul count (``harness.gpt_step_flops``) and its fraction of
the fp32 matmul peak measured in the same run, peak memory (``benchmarks.memory``) and the
ratios ours / PyTorch. The fraction of the peak uses the matmul peak timed in the same rounds
(``measure_config``); the peaks measured before and after the suite are recorded too. A third
candidate runs minitransformer with its NumPy reference code
instead of the fast layer (``minitransformer/fast/``): the difference is what compiling buys.
"""

from __future__ import annotations

import minitransformer as mt
from minitransformer.fast.cpu import kernels

from ..harness import (gpt_step_flops, linear_products, llama_step_flops, matmul_peak, print_table,
                       square_matmul, time_alternating)
from ..memory import measure_in_subprocess
from ..training import LARGE, SMALL, StepConfig, minitransformer_step, torch_step


def with_numpy_kernels(step):
    """``step`` run with the reference ops only (set_kernels("reference")), not the fast layer."""
    def run():
        mt.set_kernels("reference")
        try:
            return step()
        finally:
            mt.set_kernels("fast")
    return run


def step_flops(config: StepConfig) -> dict:
    """The matmul FLOPs of one training step of ``config``'s model (GPT or Llama-style)."""
    shape = (config.n_layer, config.n_embd, config.vocab, config.batch, config.block)
    if config.arch == "llama":
        llama = config.llama_config()
        return llama_step_flops(*shape, llama.n_head, llama.n_kv_head, llama.intermediate_size)
    return gpt_step_flops(*shape)


def measure_config(config: StepConfig, torch, threads: int, rounds: int, peak_gflops: float = 0.0,
                   peak_n: int | None = None, memory: bool = True, numpy_kernels: bool = True,
                   blas_products: bool = True, more_candidates: dict | None = None) -> dict:
    """Time, rate and memory of one config, both frameworks side by side.

    With ``peak_n`` the matmul peak is timed in the same rounds, as one more candidate (an
    (n, n) @ (n, n) product): the fraction of the peak is a ratio of two rates, and like the
    other ratios it holds only when both were measured under the same load. Without it the
    fraction is of ``peak_gflops``, measured elsewhere (the scaling suite). ``blas_products``
    also times the matrix products of the step's Linear layers alone, with NumPy's BLAS and
    PyTorch's (``harness.linear_products``; GPT configs only). ``more_candidates``: further
    named step functions timed in the same rounds (e.g. ours without some fast kernels)."""
    ours, model = minitransformer_step(config)
    candidates = {"minitransformer": ours}
    if numpy_kernels and mt.get_kernels() == "fast" and kernels.compiled_available():
        candidates["numpy_kernels"] = with_numpy_kernels(minitransformer_step(config)[0])
    if torch is not None:
        candidates["torch"] = torch_step(config, torch)[0]
    candidates.update(more_candidates or {})
    if peak_n:
        candidates["matmul_peak"] = square_matmul(peak_n)
    shape = (config.n_layer, config.n_embd, config.vocab, config.batch, config.block)
    if blas_products and config.arch == "gpt":  # the Linear layers' products alone, with each framework's BLAS
        candidates["linear_products_numpy"], linear_flops = linear_products(*shape)
        if torch is not None:
            candidates["linear_products_torch"] = linear_products(*shape, torch=torch)[0]
    timings = time_alternating(candidates, rounds=rounds, per_turn=2, warmup=2)
    peak = timings.pop("matmul_peak", None)
    if peak is not None:
        peak_gflops = 2 * peak_n**3 / (peak["median_ms"] * 1e-3) / 1e9
    products = {name.removeprefix("linear_products_"): timings.pop(name) for name in list(timings)
                if name.startswith("linear_products_")}
    flops = step_flops(config)
    row = {"config": config.name, "arch": config.arch, "batch": config.batch, "block": config.block,
           "n_layer": config.n_layer, "n_head": config.n_head, "n_kv_head": config.n_kv_head,
           "n_embd": config.n_embd,
           "vocab": config.vocab, "tokens_per_step": config.tokens,
           "parameters": model.num_parameters(), "flops_per_step": flops, "timings": timings,
           "matmul_peak_gflops": peak_gflops, "matmul_peak_timing": peak}
    for library, timing in products.items():  # "numpy", "torch"
        row[f"linear_products_{library}_ms"] = timing["median_ms"]
        row[f"linear_products_{library}_gflops"] = linear_flops / (timing["median_ms"] * 1e-3) / 1e9
        row[f"linear_products_{library}_timing"] = timing
    for name, timing in timings.items():
        seconds = timing["median_ms"] / 1e3
        row[f"{name}_ms"] = timing["median_ms"]
        row[f"{name}_tokens_per_s"] = config.tokens / seconds
        row[f"{name}_gflops"] = flops["matmul_flops"] / seconds / 1e9
        row[f"{name}_fraction_of_peak"] = row[f"{name}_gflops"] / peak_gflops
    if memory:
        for name in ("minitransformer", "torch")[:2 if torch is not None else 1]:
            for key, value in measure_in_subprocess(name, config, threads).items():
                if key != "framework":
                    row[f"{name}_{key}"] = value
    if "numpy_kernels" in candidates:  # what the compiled kernels buy over the NumPy code
        row["compiled_speedup"] = row["numpy_kernels_ms"] / row["minitransformer_ms"]
    if torch is not None:
        row["time_ratio"] = row["minitransformer_ms"] / row["torch_ms"]
        if memory:
            row["memory_ratio"] = row["minitransformer_peak_rss_delta"] / max(row["torch_peak_rss_delta"], 1)
    return row


def run(quick: bool, torch=None, threads: int = 1) -> dict:
    peak = matmul_peak(runs=3 if quick else 9)
    configs = [SMALL] if quick else [SMALL, LARGE]
    rows = [measure_config(c, torch, threads, rounds=2 if quick else (20 if c is SMALL else 6),
                           peak_n=peak["n"]) for c in configs]
    peak_after = matmul_peak(runs=3 if quick else 9)  # the machine may have got busier or calmer
    print(f"\nfp32 matmul peak ({peak['n']}^3): {peak['gflops']:.0f} GFLOP/s before, "
          f"{peak_after['gflops']:.0f} after")
    for row in rows:
        for key in ("minitransformer_peak_rss_delta", "torch_peak_rss_delta",
                    "minitransformer_tracemalloc_peak"):
            if key in row:
                row[key.replace("peak_rss_delta", "mib").replace("tracemalloc_peak", "tracemalloc_mib")] = row[key] / 2**20
    print_table("step: one training step (forward, backward, clip, AdamW)", rows, [
        ("config", "config"), ("minitransformer_ms", "ours ms"), ("torch_ms", "torch ms"),
        ("numpy_kernels_ms", "ours, NumPy kernels ms"),
        ("time_ratio", "ours/torch"), ("minitransformer_tokens_per_s", "ours tok/s"),
        ("minitransformer_gflops", "ours GFLOP/s"), ("minitransformer_fraction_of_peak", "of peak"),
        ("torch_gflops", "torch GFLOP/s"), ("matmul_peak_gflops", "peak GFLOP/s"),
        ("minitransformer_mib", "ours MiB"),
        ("torch_mib", "torch MiB"), ("memory_ratio", "mem ratio")])
    print_table("step: the Linear layers' matrix products alone (forward and backward), each "
                "framework's BLAS", rows, [
                    ("config", "config"), ("linear_products_numpy_ms", "NumPy ms"),
                    ("linear_products_torch_ms", "PyTorch ms"),
                    ("linear_products_numpy_gflops", "NumPy GFLOP/s"),
                    ("linear_products_torch_gflops", "PyTorch GFLOP/s")])
    return {"matmul_peak": peak, "matmul_peak_after": peak_after, "results": rows}
