"""GPU benchmarks: ``python -m benchmarks.gpu [--quick] [--out DIR] [--skip-torch]``.

**step**: one GPT training step (forward with targets, backward, clip_grad_norm(1.0), AdamW with
nanoGPT's groups: benchmarks/training.py) at nanoGPT's shakespeare-char GPU config (B 64, T 256,
6 layers, 6 heads, C 384, vocabulary 65), float32: minitransformer on CuPy with the reference
ops and with the CUDA kernels of fast/cuda/ (MINITRANSFORMER_CUDA_KERNELS=1 for that candidate
only), and PyTorch eager on the same GPU in fp32, TF32 and bf16 autocast when PyTorch sees it.
Per candidate: ms per step (median of timed steps, each ended by a device synchronize),
tokens/s, model FLOPs utilisation (the exact matmul count of ``harness.gpt_step_flops`` over
the fp32 matmul rate measured on the device in the same run) and peak device memory (the bytes
CuPy's memory pool holds after the steps, emptied before each candidate: the pool keeps freed
blocks, so that is its high-water mark; PyTorch's max_memory_allocated). CuPy's TF32 is a
setting read at import (CUPY_TF32=1), so minitransformer runs fp32 only here.

**ops**: forward + backward of each op the CUDA kernels replace (causal attention included),
at that config's shapes, reference on CuPy against the kernel.

Writes ``gpu_step.json`` and ``gpu_ops.json`` to ``--out DIR``, or to
``benchmarks/scratch/gpu-<name>/`` (ignored by git), or with ``--update-results`` to the
committed ``benchmarks/results/gpu-<name>/``. ``--quick`` uses a tiny config and few steps: the
rehearsal on the emulated device (MINITRANSFORMER_EMULATE_CUDA=1), whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from . import harness
from .training import BETAS, GRAD_CLIP, LEARNING_RATE, WEIGHT_DECAY, StepConfig, batches

GPU_CONFIG = StepConfig("shakespeare_char", batch=64, block=256, n_layer=6, n_head=6, n_embd=384)
QUICK_CONFIG = StepConfig("quick", batch=2, block=16, n_layer=1, n_head=2, n_embd=16)
OPT_IN = "MINITRANSFORMER_CUDA_KERNELS"


def cupy_module():
    from minitransformer import backend

    return backend.require_cupy("benchmarks.gpu")


def synchronize() -> None:
    cupy_module().cuda.Device().synchronize()


def device_info() -> dict:
    cp = cupy_module()
    properties = cp.cuda.runtime.getDeviceProperties(0)
    name = properties["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return {"gpu": name, "gpu_memory_bytes": int(properties.get("totalGlobalMem", 0)),
            "cupy": cp.__version__, "emulated": bool(getattr(cp, "EMULATED", False)),
            "cuda_runtime": int(cp.cuda.runtime.runtimeGetVersion())}


def gpu_slug(name: str) -> str:
    return "gpu-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown")


@contextlib.contextmanager
def cuda_kernels(enabled: bool):
    """MINITRANSFORMER_CUDA_KERNELS set to 1 or 0 for the duration."""
    previous = os.environ.get(OPT_IN)
    os.environ[OPT_IN] = "1" if enabled else "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[OPT_IN]
        else:
            os.environ[OPT_IN] = previous


def time_synchronized(run, steps: int, warmup: int) -> dict:
    """Median and quartiles of ``steps`` calls of ``run`` after ``warmup``, each timed up to a
    device synchronize (GPU work is asynchronous: without it we would time the launches)."""
    for _ in range(warmup):
        run()
    synchronize()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return harness.summarize(seconds)


def matmul_peak(n: int, runs: int) -> dict:
    """The device's achievable fp32 matmul rate: an (n, n) @ (n, n) CuPy product, 2 n^3 FLOPs."""
    cp = cupy_module()
    a = cp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    b = cp.asarray(np.random.default_rng(1).standard_normal((n, n), dtype=np.float32))
    timing = time_synchronized(lambda: a @ b, runs, warmup=2)
    return {"n": n, "gflops": 2 * n**3 / (timing["median_ms"] * 1e-3) / 1e9, **timing}


# --- the step ------------------------------------------------------------------------------

def minitransformer_step(config: StepConfig, kernels: bool):
    """(step function, model) for minitransformer on 'cuda'; ``kernels`` turns fast/cuda on."""
    import minitransformer as mt
    from minitransformer import backend, nn, optim

    mt.manual_seed(0)
    model = nn.GPT(config.gpt_config()).to("cuda")
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    params = model.parameters()
    data = [tuple(backend.to_device(a, "cuda") for a in batch) for batch in batches(config)]
    counter = [0]

    def step() -> float:
        with cuda_kernels(kernels):
            x, y = data[counter[0] % len(data)]
            counter[0] += 1
            _, loss = model(x, y)
            loss.backward()
            optim.clip_grad_norm(params, GRAD_CLIP)
            optimizer.step()
            optimizer.zero_grad()
            return loss.data  # stays on the device: no host sync inside the timed step

    return step, model


def torch_step(config: StepConfig, torch, precision: str):
    """nanoGPT's model in PyTorch eager on the GPU: "fp32", "tf32" or "bf16" (autocast)."""
    from .torch_gpt import GPT

    torch.manual_seed(0)
    model = GPT(config.gpt_config()).cuda()
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    data = [(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()) for x, y in batches(config)]
    counter = [0]

    def step():
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        x, y = data[counter[0] % len(data)]
        counter[0] += 1
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step, model


def import_torch_cuda():
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__} sees no CUDA device"
    return torch, None


def measure_step(config: StepConfig, steps: int, warmup: int, peak_gflops: float, torch) -> list[dict]:
    cp = cupy_module()
    pool = cp.get_default_memory_pool()
    flops = harness.gpt_step_flops(config.n_layer, config.n_embd, config.vocab, config.batch, config.block)
    candidates = [("minitransformer_reference", lambda: minitransformer_step(config, kernels=False)),
                  ("minitransformer_cuda_kernels", lambda: minitransformer_step(config, kernels=True))]
    if torch is not None:
        candidates += [(f"torch_{p}", (lambda p: lambda: torch_step(config, torch, p))(p))
                       for p in ("fp32", "tf32", "bf16")]
    rows = []
    for name, build in candidates:
        row = {"candidate": name, "config": config.name, "batch": config.batch, "block": config.block,
               "n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
               "vocab": config.vocab, "flops_per_step": flops["matmul_flops"]}
        try:
            pool.free_all_blocks()
            if name.startswith("torch"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            step, _ = build()
            timing = time_synchronized(step, steps, warmup)
            row.update(timing)
            row["loss_after"] = float(step())
            seconds = timing["median_ms"] / 1e3
            row["tokens_per_s"] = config.tokens / seconds
            row["gflops"] = flops["matmul_flops"] / seconds / 1e9
            row["mfu_of_measured_fp32_peak"] = row["gflops"] / peak_gflops if peak_gflops else None
            row["peak_device_memory_bytes"] = (int(torch.cuda.max_memory_allocated()) if name.startswith("torch")
                                               else int(pool.total_bytes()))
        except Exception as error:  # one failing candidate must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        step = None  # the next candidate's peak memory must not count this one's model
        gc.collect()
        rows.append(row)
        print(f"  {name:30s} " + (f"{row['median_ms']:9.2f} ms  {row['tokens_per_s']:12.0f} tok/s  "
                                   f"MFU {row['mfu_of_measured_fp32_peak'] or 0:.3f}  "
                                   f"peak {row['peak_device_memory_bytes'] / 2**20:8.1f} MiB"
                                   if "error" not in row else row["error"]), flush=True)
    by_name = {r["candidate"]: r for r in rows if "error" not in r}
    for ours in ("minitransformer_reference", "minitransformer_cuda_kernels"):
        if ours in by_name and "torch_fp32" in by_name:
            by_name[ours]["ratio_to_torch_fp32"] = by_name[ours]["median_ms"] / by_name["torch_fp32"]["median_ms"]
    return rows


# --- the ops -------------------------------------------------------------------------------

def op_cases(config: StepConfig):
    """(name, function of device tensors, input arrays) at the step's shapes."""
    import minitransformer.functional as F
    from minitransformer import backend

    rng = np.random.default_rng(0)
    N, C, V = config.tokens, config.n_embd, config.vocab
    scores = (config.batch, config.n_head, config.block, config.block)
    heads = (config.batch, config.n_head, config.block, C // config.n_head)  # (B, nh, T, hs)
    targets = backend.to_device(rng.integers(0, V, N), "cuda")
    ids = backend.to_device(rng.integers(0, V, (config.batch, config.block)), "cuda")
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return [
        ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
         [f32(*heads) for _ in range(3)]),
        ("softmax", lambda x: F.softmax(x), [f32(*scores)]),
        ("log_softmax", lambda x: F.log_softmax(x), [f32(N, V)]),
        ("cross_entropy", lambda z: F.cross_entropy(z, targets), [f32(N, V)]),
        ("layer_norm", lambda x, w, b: F.layer_norm(x, w, b), [f32(N, C), f32(C), f32(C)]),
        ("gelu", lambda x: F.gelu(x), [f32(N, 4 * C)]),
        ("embedding", lambda w: F.embedding(ids, w), [f32(V, C)]),
    ]


def measure_ops(config: StepConfig, steps: int, warmup: int) -> list[dict]:
    import minitransformer as mt
    from minitransformer import backend

    rows = []
    for name, op, arrays in op_cases(config):
        row = {"op": name, "shapes": [list(a.shape) for a in arrays]}
        for label, kernels in (("reference", False), ("cuda_kernels", True)):
            tensors = [mt.tensor(a, requires_grad=True, device="cuda") for a in arrays]

            def run():
                with cuda_kernels(kernels):
                    out = op(*tensors)
                    out.backward(mt.tensor(backend.array_module(out.data).ones(out.shape, dtype=out.dtype)))
                    for t in tensors:
                        t.grad = None

            try:
                timing = time_synchronized(run, steps, warmup)
                row[f"{label}_ms"] = timing["median_ms"]
                row[f"{label}_timing"] = timing
            except Exception as error:
                row[f"{label}_error"] = f"{type(error).__name__}: {error}"
        if "reference_ms" in row and "cuda_kernels_ms" in row:
            row["speedup"] = row["reference_ms"] / row["cuda_kernels_ms"]
        rows.append(row)
        print(f"  {name:14s} reference {row.get('reference_ms', float('nan')):8.3f} ms   "
              f"kernels {row.get('cuda_kernels_ms', float('nan')):8.3f} ms "
              f"{row.get('cuda_kernels_error', '')}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny config, few steps: a rehearsal")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None,
                       help="folder for the JSON (default: benchmarks/scratch/gpu-<name>, ignored by git)")
    where.add_argument("--update-results", action="store_true",
                       help="write the committed benchmarks/results/gpu-<name>/ instead")
    parser.add_argument("--skip-torch", action="store_true", help="do not time PyTorch")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per candidate")
    args = parser.parse_args(argv)
    if args.update_results and args.quick:
        parser.error("--update-results with --quick would commit smoke-test numbers; run without --quick")
    from minitransformer import backend

    if not backend.cupy_available():
        print("benchmarks.gpu: no CuPy or no CUDA GPU on this machine "
              "(MINITRANSFORMER_EMULATE_CUDA=1 rehearses on the emulated device)", file=sys.stderr)
        return 1
    info = {**harness.machine_info(), **device_info()}
    if info["emulated"] and args.update_results:
        print("benchmarks.gpu: --update-results on the emulated device would commit numbers that "
              "mean nothing", file=sys.stderr)
        return 1
    out = args.out or (harness.RESULTS_DIR if args.update_results else harness.SCRATCH_DIR) / gpu_slug(info["gpu"])
    config = QUICK_CONFIG if args.quick else GPU_CONFIG
    steps = args.steps or (2 if args.quick else 10)
    warmup = 1 if args.quick else 3
    torch, torch_note = (None, "skipped (--skip-torch)") if args.skip_torch else import_torch_cuda()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_gpu"] = torch.cuda.get_device_name(0)
    print(f"benchmarks.gpu on {info['gpu']} (CuPy {info['cupy']}{', emulated' if info['emulated'] else ''}); "
          f"PyTorch: {info.get('torch', torch_note)}", flush=True)
    peak = matmul_peak(256 if args.quick else 8192, runs=3 if args.quick else 10)
    print(f"  fp32 matmul peak {peak['gflops']:.0f} GFLOP/s (n = {peak['n']})", flush=True)
    common = {"machine": info, "quick": args.quick, "torch_note": torch_note, "matmul_peak": peak,
              "cuda_kernels_default": "off: MINITRANSFORMER_CUDA_KERNELS=1 turns them on"}
    print("step:", flush=True)
    step_rows = measure_step(config, steps, warmup, peak["gflops"], torch)
    path = harness.write_json(out, "gpu_step", {"suite": "gpu_step", **common, "results": step_rows})
    print(f"  wrote {path}")
    print("ops:", flush=True)
    op_rows = measure_ops(config, steps * 2, warmup)
    path = harness.write_json(out, "gpu_ops", {"suite": "gpu_ops", **common, "results": op_rows})
    print(f"  wrote {path}")
    failed = [r["candidate"] for r in step_rows if "error" in r and r["candidate"].startswith("minitransformer")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
