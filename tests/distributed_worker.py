"""What tests/test_distributed.py runs on each rank under mpiexec (and, for one rank, in the test
process itself): a tiny GPT trained with DistributedDataParallel on fixed batches.

    mpiexec -n 2 python tests/distributed_worker.py equal OUT_DIR ACCUMULATION_STEPS
    mpiexec -n 2 python tests/distributed_worker.py zero OUT_DIR
    mpiexec -n 2 python tests/distributed_worker.py fail
    mpiexec -n 2 python tests/distributed_worker.py timeout
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import minitransformer as mt
from minitransformer import distributed, nn
from minitransformer.optim import clip_grad_norm
from minitransformer.zero import ZeroRedundancyOptimizer

STEPS, BATCH, BLOCK, VOCAB = 4, 8, 8, 11


def batches(steps: int = STEPS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (x, y) batches whose rows count different numbers of targets: y is -1 (GPT's
    ignore_index) with a probability growing from 0.1 (row 0) to 0.9 (row 7)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        x = rng.integers(0, VOCAB, (BATCH, BLOCK))
        y = rng.integers(0, VOCAB, (BATCH, BLOCK))
        y[rng.random((BATCH, BLOCK)) < np.linspace(0.1, 0.9, BATCH)[:, None]] = -1
        out.append((x, y))
    return out


def train_tiny(dtype, accumulation_steps: int = 1, world: distributed.World | None = None,
               learning_rate: float = 1e-3, fail_at: int | None = None, zero: bool = False) -> tuple[dict, object]:
    """(the parameters, the optimizer) after STEPS AdamW steps (clipped at 1) of a GPT in
    ``dtype``; ``zero``: its state sharded over the ranks (ZeRO stage 1)."""
    mt.manual_seed(0)
    # no biases: the key projection's bias has a zero gradient in exact arithmetic (softmax ignores
    # a shift shared by all keys), which float32 rounds to noise that Adam scales up towards lr
    gpt = nn.GPT(nn.GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=1, n_head=2, n_embd=8, bias=False))
    for p in gpt.parameters():
        p.data = p.data.astype(dtype)
    world = world or distributed.World()
    if world.rank != 0:  # other ranks start elsewhere: the broadcast must fix it
        for p in gpt.parameters():
            p.data = p.data + dtype(world.rank)
    model = distributed.DistributedDataParallel(gpt, accumulation_steps, world)
    optimizer = gpt.configure_optimizers(0.1, learning_rate, (0.9, 0.99))
    if zero:
        optimizer = ZeroRedundancyOptimizer(optimizer, world)
    for step, (x, y) in enumerate(batches()):
        if step == fail_at and world.rank == 1:
            raise ValueError("rank 1 failed on purpose")
        optimizer.zero_grad()
        for x_part, y_part, share in model.pieces(x, y, ignore_index=-1):
            _, loss = model(x_part, y_part)
            (loss * share).backward()
        model.all_reduce_gradients()
        clip_grad_norm(gpt.parameters(), 1.0)
        optimizer.step()
    return gpt.state_dict(), optimizer


def main(mode: str, *args: str) -> int:
    world = distributed.init(timeout=2.0 if mode == "timeout" else None)
    try:
        if mode == "equal":
            out_dir, accumulation_steps = Path(args[0]), int(args[1])
            for dtype in (np.float64, np.float32):
                state, _ = train_tiny(dtype, accumulation_steps, world)
                np.savez(out_dir / f"{np.dtype(dtype).name}-rank{world.rank}.npz", **state)
        elif mode == "zero":
            out_dir = Path(args[0])
            state, optimizer = train_tiny(np.float64, 1, world, zero=True)
            gathered = optimizer.state_dict()  # every rank takes part
            arrays = {f"optimizer/{i}/{name}": value for i, entry in gathered["state"].items()
                      for name, value in entry.items()}
            np.savez(out_dir / f"zero-rank{world.rank}.npz", **state, **arrays,
                     state_bytes=np.array(optimizer.state_bytes()))
        elif mode == "fail":
            train_tiny(np.float32, 1, world, fail_at=1)
        elif mode == "timeout":
            if world.rank == 1:
                time.sleep(60)  # never joins: rank 0's collective must give up, not hang
            train_tiny(np.float32, 1, world)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    distributed.exit(main(*sys.argv[1:]))
