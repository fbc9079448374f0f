"""The recurrent layers of lesson 21 timed side by side: a training step (forward + backward) of
nn.GRU, nn.LSTM and GRUCell/LSTMCell unrolled by hand, and the start-up a first backward through
nn.Embedding pays in a fresh process (the one-time start of the fast layer's compiled kernels).

    python benchmarks/recurrent.py [--quick] [--out DIR | --update-results]

Sizes are lesson 21's text classifiers: batch 32, 64 steps, 32-wide embeddings, 64 units.
Prints a table and writes recurrent.json (machine, versions, date and every timing) into
benchmarks/scratch/<machine>/ (ignored by git), ``--out DIR``, or with ``--update-results`` the
committed benchmarks/results/<machine>/. Ratios are only taken between candidates timed
alternately in one process (harness.time_alternating).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minitransformer as mt  # noqa: E402
from benchmarks import harness  # noqa: E402
from minitransformer import nn  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_EMBEDDING_BACKWARD = """
import json, time, numpy as np
import minitransformer as mt
from minitransformer import nn
table, ids = nn.Embedding(2000, 32), np.random.default_rng(0).integers(0, 2000, (32, 64))
seconds = []
for _ in range(2):
    start = time.perf_counter()
    table(ids).sum().backward()
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def training_steps(B: int, T: int, C: int, H: int) -> dict:
    """Zero-argument callables, each one forward and backward over a (B, T, C) sequence."""
    x = mt.tensor(np.random.default_rng(0).standard_normal((B, T, C)))
    mt.manual_seed(0)
    gru, lstm = nn.GRU(C, H, batch_first=True), nn.LSTM(C, H, batch_first=True)
    gru_cell, lstm_cell = nn.GRUCell(C, H), nn.LSTMCell(C, H)
    gru_dropout = nn.GRU(C, H, batch_first=True, dropout=0.2, recurrent_dropout=0.2)

    def unrolled(cell, read_h):
        def step():
            state = None
            for t in range(T):
                state = cell(x[:, t], state)
            read_h(state).sum().backward()
        return step

    return {
        "nn.GRU": lambda: gru(x)[0].sum().backward(),
        "nn.LSTM": lambda: lstm(x)[0].sum().backward(),
        "nn.GRU, dropout 0.2 + recurrent 0.2": lambda: gru_dropout(x)[0].sum().backward(),
        "GRUCell unrolled": unrolled(gru_cell, lambda h: h),
        "LSTMCell unrolled": unrolled(lstm_cell, lambda state: state[0]),
    }


def first_embedding_backward() -> list[float]:
    """Seconds of the first and the second backward through nn.Embedding in a new process."""
    done = subprocess.run([sys.executable, "-c", FIRST_EMBEDDING_BACKWARD], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"recurrent: the child process failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs: a smoke test")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, metavar="DIR", help="folder for the JSON (default: benchmarks/scratch/<machine>)")
    where.add_argument("--update-results", action="store_true", help="write the committed benchmarks/results/<machine>/")
    args = parser.parse_args(argv)
    if args.update_results and args.quick:
        parser.error("--update-results with --quick would commit smoke-test numbers; run without --quick")
    B, T, C, H = (4, 8, 8, 16) if args.quick else (32, 64, 32, 64)
    timings = harness.time_alternating(training_steps(B, T, C, H), rounds=2 if args.quick else 7)
    gru_ms = timings["nn.GRU"]["median_ms"]
    rows = [{"layer": name, "median_ms": t["median_ms"], "p25_ms": t["p25_ms"], "p75_ms": t["p75_ms"],
             "vs_gru": t["median_ms"] / gru_ms} for name, t in timings.items()]
    harness.print_table(f"one training step (forward + backward), B={B} T={T} C={C} H={H}", rows,
                        [("layer", "layer"), ("median_ms", "median ms"), ("p25_ms", "p25"), ("p75_ms", "p75"),
                         ("vs_gru", "/ nn.GRU")])
    starts = [first_embedding_backward() for _ in range(1 if args.quick else 3)]
    start_rows = [{"run": i + 1, "first_s": first, "second_s": second} for i, (first, second) in enumerate(starts)]
    harness.print_table("nn.Embedding's backward in a fresh process (32 x 64 ids): first call vs second",
                        start_rows, [("run", "process"), ("first_s", "first call s"), ("second_s", "second call s")])
    out_dir = harness.output_dir(args.out, args.update_results)
    path = harness.write_json(out_dir, "recurrent", {
        "suite": "recurrent", "quick": args.quick, "machine": harness.machine_info(),
        "sizes": {"B": B, "T": T, "C": C, "H": H}, "training_step": timings,
        "embedding_first_backward_s": [first for first, _ in starts],
        "embedding_second_backward_s": [second for _, second in starts],
        "command": "python benchmarks/recurrent.py" + (" --quick" if args.quick else ""),
    })
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
