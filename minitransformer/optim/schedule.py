"""Learning-rate schedules: functions of the iteration number, set into the optimizer's groups
by the training loop (``set_lr``)."""

from __future__ import annotations

import math


def constant_lr(iteration: int, learning_rate: float) -> float:
    return learning_rate


def cosine_lr(iteration: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int,
              min_lr: float) -> float:
    """nanoGPT's get_lr: linear warmup from 0 to learning_rate over warmup_iters, cosine decay
    to min_lr at lr_decay_iters, then min_lr.

        warmup:  lr = learning_rate * (it + 1) / (warmup_iters + 1)
        decay:   lr = min_lr + (learning_rate - min_lr) * (1 + cos(pi * r)) / 2,
                 r = (it - warmup_iters) / (lr_decay_iters - warmup_iters) in [0, 1]
    """
    # BEGIN SOLUTION a5
    if iteration < warmup_iters:
        return learning_rate * (iteration + 1) / (warmup_iters + 1)
    if iteration > lr_decay_iters:
        return min_lr
    span = lr_decay_iters - warmup_iters
    ratio = (iteration - warmup_iters) / span if span > 0 else 1.0
    coefficient = 0.5 * (1.0 + math.cos(math.pi * ratio))  # goes 1 -> 0
    return min_lr + coefficient * (learning_rate - min_lr)
    # END SOLUTION a5


def set_lr(optimizer, lr: float) -> None:
    """Give every parameter group the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
