"""Run the benchmark suites: ``python -m benchmarks [suite ...] [--quick] [--out DIR | --update-results]``.

Suites: ops, step, profile, llama, scaling, train, startup, generation, tokenizer, distributed,
pretrained, lora (default: all, in that order).
Each prints a table and writes ``<suite>.json`` (machine, versions, BLAS, date and every number)
and a plot beside it, into ``benchmarks/scratch/<machine>/`` (ignored by git; the folder is
printed at the end), or ``--out DIR``. ``--update-results`` writes the committed
``benchmarks/results/<machine>/`` instead: only when regenerating the reference numbers on
purpose, on an idle machine. ``--quick`` runs every suite on small sizes with few repetitions, a
smoke test that finishes in well under a minute (the test suite runs it); its numbers are not
meant to be quoted, and ``--update-results`` refuses them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import harness
from .plots import PLOTS
from .suites import distributed, generation, llama, lora, ops, pretrained, profile, scaling, startup, step, tokenizer, train

SUITES = ("ops", "step", "profile", "llama", "scaling", "train", "startup", "generation", "tokenizer", "distributed", "pretrained", "lora")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Time minitransformer against "
                                     "PyTorch; print tables and write JSON and plots (see benchmarks/README.md).")
    parser.add_argument("suites", nargs="*", metavar="suite", default=[],
                        help=f"which suites to run: {', '.join(SUITES)} (default: all)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for BLAS, minitransformer's kernels and PyTorch "
                             "(default: NumPy's BLAS default)")
    parser.add_argument("--kernels", choices=("fast", "reference"), default=None,
                        help="minitransformer's kernels: the fast layer (numba-compiled, the default) or "
                             "the reference ops alone")
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs: a smoke test")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="folder for the JSON and plots (default: benchmarks/scratch/<machine>, ignored by git)")
    where.add_argument("--update-results", action="store_true",
                       help="write the committed benchmarks/results/<machine>/ (to regenerate them on purpose)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites {unknown}; choose from {', '.join(SUITES)}")
    if args.update_results and args.quick:
        parser.error("--update-results with --quick would commit smoke-test numbers; run without --quick")
    suites = args.suites or list(SUITES)
    out_dir = harness.output_dir(args.out, args.update_results)

    if args.kernels is not None:
        import minitransformer as mt

        mt.set_kernels(args.kernels)
    if args.threads is not None:
        harness.limit_blas_threads(args.threads)
    threads = harness.blas_threads()
    torch = harness.import_torch(threads)
    machine = harness.machine_info(torch)
    blas = machine["blas"]
    print(f"{machine['machine']}: {machine['cpu_model']}, {machine['cores']} cores; python "
          f"{machine['python']}, numpy {machine['numpy']} ({blas.get('internal_api')} "
          f"{blas.get('version')}, kernel {blas.get('architecture')}, {blas.get('num_threads')} threads), "
          f"torch {machine.get('torch', 'not installed')} ({machine.get('torch_threads', '-')} threads); "
          f"minitransformer kernels: {machine['minitransformer_kernels']}; no GPU")
    if torch is None:
        print("PyTorch is not installed: the comparison columns stay empty")
    peak = harness.matmul_peak(runs=3 if args.quick else 9)
    print(f"fp32 matmul peak: {peak['gflops']:.0f} GFLOP/s ({peak['n']}^3 np.matmul, median)")

    for suite in suites:
        start = time.perf_counter()
        if suite == "ops":
            result = ops.run(args.quick, torch)
        elif suite == "step":
            result = step.run(args.quick, torch, threads)
        elif suite == "profile":
            result = profile.run(args.quick)
        elif suite == "llama":
            result = llama.run(args.quick, torch, threads)
        elif suite == "scaling":
            result = scaling.run(args.quick, torch, threads, peak_gflops=peak["gflops"])
        elif suite == "train":
            result = train.run(args.quick)
        elif suite == "startup":
            result = startup.run(args.quick)
        elif suite == "generation":
            result = generation.run(args.quick)
        elif suite == "tokenizer":
            result = tokenizer.run(args.quick)
        elif suite == "distributed":
            result = distributed.run(args.quick)
        elif suite == "pretrained":
            result = pretrained.run(args.quick, torch)
        else:
            result = lora.run(args.quick)
        payload = {"suite": suite, "quick": args.quick, "machine": machine, "matmul_peak_at_start": peak,
                   "seconds": time.perf_counter() - start, "load_average_after": list(os.getloadavg()),
                   **result}
        path = harness.write_json(out_dir, suite, payload)
        print(f"-> {path}")
        if suite in PLOTS:
            subtitle = f"{machine['machine']}, {machine['date'][:10]}" + (", --quick" if args.quick else "")
            print(f"-> {PLOTS[suite](payload, out_dir, subtitle)}")
    if args.update_results:
        kind = "the committed results"
    elif args.out:
        kind = "the folder given with --out"
    else:
        kind = "scratch, ignored by git; --update-results writes the committed benchmarks/results/<machine>/"
    print(f"\nresults and plots: {out_dir}  ({kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
