"""Suite ``startup``: how long a fresh process takes to reach its first training step.

What a user waits for after typing ``python -m minitransformer train`` before training starts,
without the data (reading and tokenizing the corpus is the ``train`` suite's business): starting
Python, importing minitransformer (NumPy, numba and the fast layer), building nanoGPT's CPU
config (``training.SMALL``) with its AdamW, then one training step (forward, backward, clip,
AdamW), which pays for compiling every kernel it calls the first time, and a second step for
comparison. Each run is a new process launched with this Python from the repository root;
the child stamps each phase with the wall clock, against the launch time the parent passed.

The first run may also fill caches (the operating system's file cache, numba's on-disk cache
where kernels use one); the runs after it show a warm start, the case that repeats every time a
user runs a command. ``warm_first_step_s`` is their median of "launch to the end of the first
step".
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..harness import print_table

REPO_ROOT = Path(__file__).resolve().parents[2]
PHASES = (("python_s", "Python starts"), ("import_s", "import minitransformer"),
          ("model_s", "build the GPT and AdamW"), ("first_step_s", "first training step"))

CHILD = """
import json, sys, time
launched = float(sys.argv[1])
marks = {"python": time.time()}
import minitransformer
marks["import"] = time.time()
from benchmarks.training import SMALL, minitransformer_step
step, _ = minitransformer_step(SMALL)
marks["model"] = time.time()
step()
marks["first_step"] = time.time()
step()
marks["second_step"] = time.time()
print(json.dumps({name: moment - launched for name, moment in marks.items()}))
"""


def fresh_process() -> dict:
    """Seconds from launch to each mark of one new process, and each phase's own seconds."""
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD, repr(launched)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"startup: the child process failed: {done.stderr.strip()[-2000:]}")
    since_launch = json.loads(done.stdout.strip().splitlines()[-1])
    marks = ["python", "import", "model", "first_step", "second_step"]
    run = {"since_launch_s": since_launch}
    previous = 0.0
    for mark in marks:  # each phase's own duration: python_s, import_s, ...
        run[f"{mark}_s"] = since_launch[mark] - previous
        previous = since_launch[mark]
    run["to_first_step_s"] = since_launch["first_step"]
    run["compile_overhead_s"] = run["first_step_s"] - run["second_step_s"]
    return run


def run(quick: bool) -> dict:
    runs = [fresh_process() for _ in range(1 if quick else 5)]
    warm = runs[1:]
    rows = [{"run": f"{i + 1}" + (" (first)" if i == 0 else ""), **r} for i, r in enumerate(runs)]
    print_table("startup: seconds of a fresh process, launch to its first training step (nanoGPT's CPU config)",
                rows, [("run", "run"), ("python_s", "Python"), ("import_s", "import"), ("model_s", "model"),
                       ("first_step_s", "first step"), ("second_step_s", "second step"),
                       ("to_first_step_s", "launch to first step")])
    result = {"config": "B12 T64 L4 C128", "phases": [list(phase) for phase in PHASES], "runs": runs,
              "first_run_to_first_step_s": runs[0]["to_first_step_s"],
              "warm_first_step_s": statistics.median(r["to_first_step_s"] for r in warm) if warm else None,
              "warm_import_s": statistics.median(r["import_s"] for r in warm) if warm else None}
    if warm:
        print(f"warm start (median of runs 2-{len(runs)}): {result['warm_first_step_s']:.2f} s to the first step, "
              f"{result['warm_import_s']:.2f} s of it importing")
    return result
