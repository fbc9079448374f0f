"""Suite ``distributed``: data-parallel training steps on 1 and 2 MPI ranks, one thread each.

Each candidate is a fresh ``mpiexec -n N python -m benchmarks.suites.distributed --worker ...``
that trains nanoGPT's architecture with ``DistributedDataParallel`` on the same global batch
(``training.SMALL``, the "baby" config, and ``training.LARGE``): N ranks take B/N rows each.
Reported per config and N: ms per step (median over the timed steps; each rank's median, the
slowest rank counted), tokens/s of the whole job, the share of the step spent in all-reduce
(every collective, waiting for the slower rank included) and the speed-up of 2 ranks over 1.
A third candidate sends one message per gradient tensor instead of 4 MB buckets: what bucketing
buys. A probe then asks whether overlapping the all-reduce with the backward pass could help
here: it times an all-reduce of the small config's gradients, a computation, and the all-reduce
started before the computation and waited for after it (what a backward-pass hook would do). The launches alternate (1, 2, 2-unbucketed, then reversed...), so a burst of load from
elsewhere hits all alike.

Skipped, with the reason in the JSON, where mpi4py or mpiexec is not installed
(``pip install 'minitransformer[mpi]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..harness import print_table
from ..training import LARGE, SMALL

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"small": SMALL, "large": LARGE}
CANDIDATES = (("1 rank", 1, None), ("2 ranks", 2, None), ("2 ranks, a message per tensor", 2, 0))


def _launch(config: str, ranks: int, bucket_bytes: int | None, steps: int, warmup: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MINITRANSFORMER_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    command = [shutil.which("mpiexec"), "-n", str(ranks), sys.executable, "-m", "benchmarks.suites.distributed",
               "--worker", config, "--steps", str(steps), "--warmup", str(warmup)]
    if bucket_bytes is not None:
        command += ["--bucket-bytes", str(bucket_bytes)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"distributed benchmark: {' '.join(command[1:4])} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpi4py = None
    if mpi4py is None or shutil.which("mpiexec") is None:
        reason = "mpi4py or mpiexec is not installed (pip install 'minitransformer[mpi]')"
        print(f"distributed: skipped: {reason}")
        return {"skipped": reason, "results": []}
    configs = ["small"] if quick else ["small", "large"]
    steps, warmup, rounds = (3, 1, 1) if quick else (12, 3, 2)
    candidates = CANDIDATES[:2] if quick else CANDIDATES  # a smoke test needs one launch of each size
    rows = []
    for config in configs:
        measured = {label: [] for label, _, _ in candidates}
        for round_index in range(rounds):
            order = candidates if round_index % 2 == 0 else candidates[::-1]
            for label, ranks, bucket_bytes in order:
                measured[label].append(_launch(config, ranks, bucket_bytes, steps, warmup))
        for label, ranks, bucket_bytes in candidates:
            runs = measured[label]
            step_ms = statistics.median(r["step_ms"] for r in runs)
            rows.append({"config": config, "candidate": label, "ranks": ranks, "global_batch": CONFIGS[config].batch,
                         "tokens_per_step": CONFIGS[config].tokens, "step_ms": step_ms,
                         "tokens_per_s": CONFIGS[config].tokens / (step_ms / 1e3),
                         "all_reduce_ms": statistics.median(r["all_reduce_ms"] for r in runs),
                         "gradient_mib": runs[0]["gradient_mib"], "messages_per_step": runs[0]["messages_per_step"],
                         "runs": runs})
        single = next(r for r in rows if r["config"] == config and r["ranks"] == 1)
        for row in rows:
            if row["config"] == config:
                row["speedup"] = single["step_ms"] / row["step_ms"]
                row["all_reduce_share"] = row["all_reduce_ms"] / row["step_ms"]
    probe = probe_overlap(quick)
    print_table("distributed: one training step on 1 and 2 MPI ranks (same global batch, one thread a rank)", rows, [
        ("config", "config"), ("candidate", "ranks"), ("step_ms", "ms/step"), ("tokens_per_s", "tok/s"),
        ("speedup", "speed-up"), ("all_reduce_ms", "all-reduce ms"), ("all_reduce_share", "of the step"),
        ("messages_per_step", "messages"), ("gradient_mib", "gradients MiB")])
    print_table("distributed: does an all-reduce progress during computation? (2 ranks, MPICH, no progress thread)",
                [probe], [("gradient_mib", "MiB"), ("all_reduce_ms", "all-reduce ms"), ("compute_ms", "compute ms"),
                          ("overlapped_ms", "started before the compute ms"), ("hidden_ms", "hidden ms"),
                          ("hidden_share", "share hidden")])
    return {"results": rows, "overlap_probe": probe, "steps": steps, "warmup": warmup, "rounds": rounds}


def probe_overlap(quick: bool) -> dict:
    """Does an all-reduce progress while the rank computes? 2 ranks, the small config's gradient
    size: the all-reduce alone, a computation alone, and the all-reduce started before the
    computation and waited for after it."""
    return _launch_probe(["--probe-overlap", "--steps", "3" if quick else "40"])


def _launch_probe(arguments: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MINITRANSFORMER_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    command = [shutil.which("mpiexec"), "-n", "2", sys.executable, "-m", "benchmarks.suites.distributed",
               "--worker", "small", *arguments]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"distributed benchmark: the overlap probe failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- what each rank runs --------------------------------------------------------------------------

def overlap_worker(config_name: str, repeats: int) -> dict:
    import numpy as np

    from minitransformer import distributed, nn

    world = distributed.init()
    count = nn.GPT(CONFIGS[config_name].gpt_config()).num_parameters()
    gradient = np.ones(count, dtype=np.float32)
    a = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    MPI = world._mpi

    def all_reduce():
        world._wait([world.comm.Iallreduce(MPI.IN_PLACE, gradient, op=MPI.SUM)], "all-reduce")

    def compute(times: int = 12):
        for _ in range(times):
            a @ a

    def overlapped():
        request = world.comm.Iallreduce(MPI.IN_PLACE, gradient, op=MPI.SUM)
        compute()
        world._wait([request], "all-reduce")

    timings = {}
    for name, run in (("all_reduce_ms", all_reduce), ("compute_ms", compute), ("overlapped_ms", overlapped)):
        samples = []
        for _ in range(repeats + 1):
            world.barrier()
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1e3)
        timings[name] = statistics.median(samples[1:])
    hidden = timings["all_reduce_ms"] + timings["compute_ms"] - timings["overlapped_ms"]
    return {**timings, "hidden_ms": hidden, "hidden_share": hidden / timings["all_reduce_ms"],
            "gradient_mib": gradient.nbytes / 2**20}


def worker(config_name: str, steps: int, warmup: int, bucket_bytes: int) -> dict:
    import minitransformer as mt
    from minitransformer import distributed, nn
    from minitransformer.optim import clip_grad_norm

    from ..training import BETAS, GRAD_CLIP, LEARNING_RATE, WEIGHT_DECAY, batches

    config = CONFIGS[config_name]
    world = distributed.init()
    mt.manual_seed(0)
    model = distributed.DistributedDataParallel(nn.GPT(config.gpt_config()), world=world, bucket_bytes=bucket_bytes)
    params = model.module.parameters()
    optimizer = model.module.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    data = batches(config, count=4)
    step_seconds, reduce_seconds = [], []
    for step in range(warmup + steps):
        x, y = data[step % len(data)]
        world.barrier("step start")  # every rank starts the step together
        started, communicated = time.perf_counter(), world.seconds_communicating
        optimizer.zero_grad()
        for x_part, y_part, share in model.pieces(x, y, ignore_index=-1):
            _, loss = model(x_part, y_part)
            (loss * share).backward()
        model.all_reduce_gradients()
        clip_grad_norm(params, GRAD_CLIP)
        optimizer.step()
        if step >= warmup:
            step_seconds.append(time.perf_counter() - started)
            reduce_seconds.append(world.seconds_communicating - communicated)
    # the job is as fast as its slowest rank
    slowest = world.sum_numbers(*(statistics.median(step_seconds) if r == world.rank else 0.0
                                  for r in range(world.size)))
    gradient_bytes = sum(p.data.nbytes for p in params)
    messages = len(distributed._buckets([p.data for p in params], bucket_bytes)) if world.size > 1 else 0
    return {"ranks": world.size, "rank_step_ms": [s * 1e3 for s in slowest], "step_ms": max(slowest) * 1e3,
            "all_reduce_ms": statistics.median(reduce_seconds) * 1e3, "gradient_mib": gradient_bytes / 2**20,
            "messages_per_step": messages, "bucket_bytes": bucket_bytes}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=tuple(CONFIGS), required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bucket-bytes", type=int, default=4 << 20)
    parser.add_argument("--probe-overlap", action="store_true")
    args = parser.parse_args()
    if args.probe_overlap:
        result = overlap_worker(args.worker, args.steps)
    else:
        result = worker(args.worker, args.steps, args.warmup, args.bucket_bytes)
    from minitransformer import distributed

    if distributed.rank() == 0:
        print(json.dumps(result))
