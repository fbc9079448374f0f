"""Suite ``llama``: one training step of the Llama-style model (``nn.Llama``: RMSNorm, rotary
positions, grouped-query attention, SwiGLU), minitransformer against PyTorch eager, and where
its time goes.

The step and its measurements are the ``step`` suite's (``step.measure_config``): forward,
backward, clipping and AdamW on the same batches, float32, the same thread count, the
frameworks alternating step by step in one process; PyTorch runs benchmarks/torch_llama.py's
model loaded with the same weights. Candidates:
    minitransformer     the fast layer as it is
    without_llama_kernels  the fast layer without the Llama ops' kernels (``LLAMA_KERNELS``):
                        what those kernels buy, side by side ("before" and "after")
    numpy_kernels       the reference ops alone (``set_kernels("reference")``)
    torch               PyTorch eager
Then ``profile.profile_config`` takes the fast step apart op by op, as the ``profile`` suite
does for the GPT. ``--quick`` leaves out the peak memory (a subprocess per framework) and the
NumPy-kernels candidate, to stay a smoke test of a few seconds.
"""

from __future__ import annotations

import contextlib

from minitransformer import dispatch

from ..harness import matmul_peak, print_table
from ..training import LLAMA_LARGE, LLAMA_SMALL, minitransformer_step
from .profile import profile_config
from .step import measure_config

# the fast implementations written for the Llama-style model's ops (minitransformer/fast/cpu/)
LLAMA_KERNELS = ("cpu.silu", "cpu.swiglu", "cpu.rms_norm", "cpu.rotary_embedding")


@contextlib.contextmanager
def without_registrations(names):
    """Inside the block the fast implementations called ``names`` are not registered; on
    leaving it (also by an exception) they are registered again, as they were."""
    removed = [entry for entry in dispatch.registrations() if entry.name in names]
    for entry in removed:
        dispatch.unregister(entry.name)
    try:
        yield
    finally:
        for entry in removed:
            dispatch.register(entry.reference, entry.name, device=entry.device, dtypes=entry.dtypes,
                              when=entry.when, available=entry.available)(entry.implementation)


def without_llama_kernels(step):
    """``step`` run by the fast layer less the Llama ops' kernels."""
    def run():
        with without_registrations(LLAMA_KERNELS):
            return step()
    return run


def run(quick: bool, torch=None, threads: int = 1) -> dict:
    peak = matmul_peak(runs=3 if quick else 9)
    configs = [LLAMA_SMALL] if quick else [LLAMA_SMALL, LLAMA_LARGE]
    rows = []
    for config in configs:
        before = {"without_llama_kernels": without_llama_kernels(minitransformer_step(config)[0])}
        rows.append(measure_config(config, torch, threads, peak_n=peak["n"], more_candidates=before,
                                   rounds=2 if quick else (20 if config is LLAMA_SMALL else 6),
                                   memory=not quick, numpy_kernels=not quick))  # --quick: a smoke test
    for row in rows:
        row["llama_kernels_speedup"] = row["without_llama_kernels_ms"] / row["minitransformer_ms"]
        for name in ("minitransformer", "torch"):
            if f"{name}_peak_rss_delta" in row:
                row[f"{name}_mib"] = row[f"{name}_peak_rss_delta"] / 2**20
    print_table("llama: one training step of the Llama-style model (forward, backward, clip, AdamW)", rows, [
        ("config", "config"), ("minitransformer_ms", "ours ms"), ("torch_ms", "torch ms"),
        ("time_ratio", "ours/torch"), ("without_llama_kernels_ms", "without Llama kernels ms"),
        ("llama_kernels_speedup", "kernels' speedup"), ("numpy_kernels_ms", "NumPy kernels ms"),
        ("minitransformer_tokens_per_s", "ours tok/s"), ("torch_tokens_per_s", "torch tok/s"),
        ("minitransformer_fraction_of_peak", "of peak"),
        ("minitransformer_mib", "ours MiB"), ("torch_mib", "torch MiB"), ("memory_ratio", "mem ratio")])

    plan = [(LLAMA_SMALL, 3)] if quick else [(LLAMA_SMALL, 40), (LLAMA_LARGE, 10)]
    profiles = [profile_config(config, steps) for config, steps in plan]
    for result in profiles:
        title = (f"llama profile: {result['config']} (B{result['batch']} T{result['block']} "
                 f"L{result['n_layer']} C{result['n_embd']}), {result['step_ms']:.1f} ms per step, "
                 f"mean of {result['steps']} steps")
        print_table(f"{title}: phases", result["phases"], [
            ("phase", "phase"), ("ms_per_step", "ms/step"), ("share_percent", "% of step")])
        print_table(f"{title}: ops in forward and backward", result["rows"][:16], [
            ("name", "op"), ("implementation", "implementation"), ("ms_per_step", "ms/step"),
            ("share_percent", "% of step"), ("calls_per_step", "calls/step")])
    return {"matmul_peak": peak, "llama_kernels": list(LLAMA_KERNELS), "results": rows,
            "profiles": profiles}
