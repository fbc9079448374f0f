"""Suite ``train``: tokens per second of the real training loop, everything included.

What ``python -m minitransformer train`` runs (``minitransformer.train.train``) on its default
data and model (the standard library's docstrings, character tokens, nanoGPT's CPU config):
each iteration draws a batch with ``data.get_batch``, steps, logs; every ``eval_interval``
iterations it estimates the train and validation loss on ``eval_iters`` batches each and
writes a checkpoint. Two rates:
    loop_tokens_per_s      training tokens / time of the loop, from the run's own log
                           (first record to last: steps, batches, evaluations, checkpoints)
    end_to_end_tokens_per_s  training tokens / wall time of the whole call (also the corpus,
                           the tokenizer, the final evaluation, the plot and the samples)
When ``minitransformer.train`` is not importable, ``equivalent_loop`` times the same loop
built from ``minitransformer.data`` and the model, and the result says so (``method``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..harness import print_table


def settings(quick: bool) -> dict:
    if quick:
        return dict(max_iters=8, eval_interval=4, eval_iters=2, log_interval=1, warmup_iters=2)
    return dict(max_iters=300, eval_interval=100, eval_iters=20, log_interval=1, warmup_iters=30)


def cli_loop(quick: bool) -> dict:
    from minitransformer.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as out_dir, open(os.devnull, "w") as quiet:
        config = TrainConfig(out_dir=out_dir, name="benchmark", sample_tokens=8, **settings(quick))
        start = time.perf_counter()
        run_dir = train(config, out=quiet, results=quiet)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    # the first record is the evaluation at iteration 0, written before the first step
    loop_seconds = steps[-1]["time"] - records[0]["time"]
    tokens = steps[-1]["iter"] * config.batch_size * config.block_size  # every step runs after it
    return {"method": "minitransformer.train.train (the CLI's loop)", "config": {
                k: getattr(config, k) for k in ("batch_size", "block_size", "n_layer", "n_head", "n_embd",
                                                "max_iters", "eval_interval", "eval_iters", "tokenizer")},
            "evaluations": len(evals), "loop_seconds": loop_seconds, "wall_seconds": wall,
            "loop_tokens_per_s": tokens / loop_seconds,
            "end_to_end_tokens_per_s": config.max_iters * config.batch_size * config.block_size / wall,
            "final_val_loss": evals[-1]["val"] if evals else None}


def equivalent_loop(quick: bool) -> dict:
    """The CLI's loop rebuilt from the public pieces (for a tree without minitransformer.train)."""
    import minitransformer as mt
    from minitransformer import data, nn, optim

    s, (B, T) = settings(quick), (12, 64)
    start = time.perf_counter()
    text = data.stdlib_docstrings()
    tokenizer = data.CharTokenizer.train(text)
    train_ids, val_ids = data.train_val_split(np.asarray(tokenizer.encode(text)), 0.1)
    mt.manual_seed(1337)
    model = nn.GPT(nn.GPTConfig(block_size=T, vocab_size=tokenizer.vocab_size, n_layer=4, n_head=4, n_embd=128))
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    loop_start = time.perf_counter()
    for iteration in range(s["max_iters"]):
        if iteration % s["eval_interval"] == 0:
            model.eval()
            with mt.no_grad():
                for ids in (train_ids, val_ids):
                    for _ in range(s["eval_iters"]):
                        model(*data.get_batch(ids, B, T))
            model.train()
        optim.set_lr(optimizer, optim.cosine_lr(iteration, 1e-3, s["warmup_iters"], s["max_iters"], 1e-4))
        _, loss = model(*data.get_batch(train_ids, B, T))
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        loss.item()
    end = time.perf_counter()
    tokens = s["max_iters"] * B * T
    return {"method": "equivalent loop (minitransformer.train not available)",
            "config": {"batch_size": B, "block_size": T, **s}, "loop_seconds": end - loop_start,
            "wall_seconds": end - start, "loop_tokens_per_s": tokens / (end - loop_start),
            "end_to_end_tokens_per_s": tokens / (end - start)}


def run(quick: bool, torch=None) -> dict:
    try:
        import minitransformer.train  # noqa: F401
        result = cli_loop(quick)
    except ImportError:
        result = equivalent_loop(quick)
    print_table("train: the training loop, data and evaluation included", [result], [
        ("method", "method"), ("loop_tokens_per_s", "loop tok/s"),
        ("end_to_end_tokens_per_s", "end-to-end tok/s"), ("loop_seconds", "loop s"),
        ("wall_seconds", "wall s")])
    return result
