"""Peak memory of training steps, measured the same way for both frameworks.

Method (one fresh subprocess per framework and config, so nothing else lives in the process):
    baseline = the resident set size (RSS) after the imports and one step of a tiny model
    run: build the model and optimizer, then ``steps`` training steps
    peak_rss_delta = the RSS high-water mark during the run - baseline
That counts everything a training run holds at its worst moment: weights, gradients, AdamW's
two moments, the activations saved for backward and the temporaries. Both NumPy and PyTorch
get large arrays from malloc; the subprocess sets MALLOC_MMAP_THRESHOLD_=65536, so every
block over 64 KiB is its own mmap, returned to the system when freed, and the RSS follows the
live bytes instead of what the allocator keeps for later. minitransformer itself asks glibc to
keep freed blocks for reuse (``minitransformer.keep_freed_memory``), which overrides
that for its own run, so its number includes the freed memory it holds on to. On Linux the high-water mark is reset
after the imports (/proc/self/clear_refs), so importing PyTorch's libraries does not hide it.

For minitransformer a second, exact number: NumPy reports every array allocation to
``tracemalloc``, so ``tracemalloc_peak`` (started before the model is built) is the peak of
live NumPy and Python bytes. PyTorch's CPU allocator is invisible to tracemalloc, so only the
RSS numbers are compared between the two.

    python -m benchmarks.memory '{"framework": "torch", "config": {...}, "threads": 2}'
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


def _rss() -> tuple[int, int]:
    """(current RSS, high-water mark) in bytes; both the lifetime maximum without /proc."""
    try:
        status = Path("/proc/self/status").read_text()
        return tuple(int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024
                     for key in ("VmRSS", "VmHWM"))
    except (OSError, AttributeError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_UNIT
        return peak, peak


def _reset_high_water_mark() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
    except OSError:
        pass


def measure(framework: str, config: dict, threads: int, steps: int = 2) -> dict:
    """Run in this process (a fresh one: see ``measure_in_subprocess``)."""
    from .harness import import_torch
    from .training import StepConfig, minitransformer_step, torch_step

    config = StepConfig(**config)
    torch = import_torch(threads)  # imported in both cases, so both baselines include it
    import minitransformer  # noqa: F401

    make_step = (lambda c: torch_step(c, torch)) if framework == "torch" else minitransformer_step
    # One step of a tiny model first, so that one-time library set-up (thread pools, MKL and
    # oneDNN buffers) is in the baseline rather than counted as the model's memory.
    make_step(StepConfig("warm-up", batch=1, block=8, n_layer=1, n_head=1, n_embd=8))[0]()
    baseline = _rss()[0]
    _reset_high_water_mark()
    step, _ = make_step(config)
    for _ in range(steps):
        step()
    result = {"framework": framework, "peak_rss_delta": _rss()[1] - baseline}
    if framework == "minitransformer":
        del step
        tracemalloc.start()
        step, _ = minitransformer_step(config)
        for _ in range(steps):
            step()
        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def measure_in_subprocess(framework: str, config, threads: int, steps: int = 2) -> dict:
    from dataclasses import asdict

    request = json.dumps({"framework": framework, "config": asdict(config), "threads": threads,
                          "steps": steps})
    repo_root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    if framework != "minitransformer":  # importing minitransformer must not change torch's malloc
        env["MINITRANSFORMER_KEEP_FREED_MEMORY"] = "0"
    done = subprocess.run([sys.executable, "-m", "benchmarks.memory", request], cwd=repo_root,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {framework} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
