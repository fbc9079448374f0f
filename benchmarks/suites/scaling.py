"""Suite ``scaling``: step time and peak memory as the context T and the width n_embd grow.

Two sweeps of a 4-layer, 4-head GPT with batch 4: T in {64, ..., 1024} at n_embd 128, and
n_embd in {64, ..., 512} at T 256. Time as in ``step`` (alternating with PyTorch), memory as
in ``benchmarks.memory`` (peak RSS delta in a fresh subprocess; tracemalloc for ours).

``attention_weights_bytes`` is what the NumPy code of our fused attention keeps for backward,
the weights P (B, nh, T, T) in float32, summed over layers: it grows with T^2 while everything
else grows with T. With the compiled kernels (the default, and what is measured here) our
attention keeps only a (B, nh, T) log-sum-exp and computes P again in backward, as PyTorch's
flash-style CPU kernel does; then only the (T, T) scores of the block being worked on are
alive at a time, and memory stays nearly linear in T.
"""

from __future__ import annotations

from ..harness import gpt_step_flops, print_table
from ..training import StepConfig
from .step import measure_config

BATCH, N_LAYER, N_HEAD = 4, 4, 4
T_SWEEP, T_SWEEP_EMBD = (64, 128, 256, 512, 1024), 128
EMBD_SWEEP, EMBD_SWEEP_T = (64, 128, 256, 512), 256


def sweep_configs(quick: bool) -> list[tuple[str, StepConfig]]:
    if quick:  # two points per sweep; T32-C32 is in both and measured once
        t_values, embd_values, t_embd, embd_t = (32, 64), (32, 64), 32, 32
    else:
        t_values, embd_values, t_embd, embd_t = T_SWEEP, EMBD_SWEEP, T_SWEEP_EMBD, EMBD_SWEEP_T
    configs = [("T", StepConfig(f"T{t}-C{t_embd}", BATCH, t, N_LAYER, N_HEAD, t_embd)) for t in t_values]
    configs += [("n_embd", StepConfig(f"T{embd_t}-C{c}", BATCH, embd_t, N_LAYER, N_HEAD, c))
                for c in embd_values]
    return configs


def run(quick: bool, torch=None, threads: int = 1, peak_gflops: float = 1.0) -> dict:
    rows, measured = [], {}
    for sweep, config in sweep_configs(quick):
        if config in measured:  # a config both sweeps pass through
            rows.append({**measured[config], "sweep": sweep})
            continue
        flops = gpt_step_flops(config.n_layer, config.n_embd, config.vocab, config.batch, config.block)
        # at least 3 rounds even in quick mode: with one, a single slow turn (a burst of load, a
        # late compilation) becomes the point and the curve runs backwards
        rounds = 3 if quick else max(3, min(10, int(1e10 / flops["matmul_flops"])))
        row = measure_config(config, torch, threads, rounds=rounds, peak_gflops=peak_gflops,
                             numpy_kernels=False, blas_products=False)
        row["sweep"] = sweep
        measured[config] = row
        row["attention_weights_bytes"] = config.n_layer * config.batch * config.n_head * config.block**2 * 4
        for key in ("minitransformer_peak_rss_delta", "torch_peak_rss_delta",
                    "minitransformer_tracemalloc_peak", "attention_weights_bytes"):
            if key in row:
                row[key + "_mib"] = row[key] / 2**20
        rows.append(row)
    print_table("scaling: step time and peak memory (MiB) over T and n_embd", rows, [
        ("sweep", "sweep"), ("config", "config"), ("minitransformer_ms", "ours ms"),
        ("torch_ms", "torch ms"), ("time_ratio", "ours/torch"),
        ("minitransformer_peak_rss_delta_mib", "ours RSS"),
        ("minitransformer_tracemalloc_peak_mib", "ours traced"), ("torch_peak_rss_delta_mib", "torch RSS"),
        ("attention_weights_bytes_mib", "P (NumPy code)"), ("memory_ratio", "mem ratio")])
    return {"batch": BATCH, "n_layer": N_LAYER, "n_head": N_HEAD, "results": rows}
