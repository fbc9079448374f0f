"""optim/schedule.py: cosine_lr against nanoGPT's get_lr (train.py), transcribed below."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitransformer import nn, optim


@pytest.mark.hidden  # a reference implementation: graded, never released
def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)


@given(warmup=st.integers(0, 50), span=st.integers(1, 200), learning_rate=st.floats(1e-5, 1.0),
       floor=st.floats(0.0, 1.0), it=st.integers(0, 400))
@pytest.mark.hidden
def test_matches_nanogpts_get_lr(warmup, span, learning_rate, floor, it):
    min_lr = learning_rate * floor
    expected = nanogpt_get_lr(it, learning_rate, warmup, warmup + span, min_lr)
    assert optim.cosine_lr(it, learning_rate, warmup, warmup + span, min_lr) == pytest.approx(expected, rel=1e-12)


def test_shape_of_the_schedule():
    lrs = [optim.cosine_lr(it, 6e-4, 10, 100, 6e-5) for it in range(120)]
    assert lrs[0] == pytest.approx(6e-4 / 11)  # warmup starts above zero
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising through warmup
    assert lrs[10] == pytest.approx(6e-4)  # the peak right after warmup
    assert all(a >= b for a, b in zip(lrs[10:100], lrs[11:101]))  # decaying
    assert lrs[55] == pytest.approx((6e-4 + 6e-5) / 2)  # halfway is the midpoint
    assert lrs[100] == pytest.approx(6e-5) and set(lrs[101:]) == {6e-5}  # the floor
    assert optim.constant_lr(12345, 3e-4) == 3e-4


def test_set_lr_sets_every_group():
    a, b = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    optimizer = optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.5)
    optim.set_lr(optimizer, 0.01)
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.01]
