"""parallel.py: row blocks shared among threads, and the same numbers whatever the thread count.

The ops' own tests run on small arrays, which fit in one block; here the block size is made
tiny so that every op that splits its work (GELU, layer norm, the attention softmax, the Linear
bias, AdamW) really runs in many blocks on several threads, and is checked against the one-block
result and against finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from minitransformer.fast.cpu import parallel


@given(n_rows=st.integers(1, 5000), row_size=st.integers(1, 5000))
def test_row_blocks_cover_every_row_once_in_order(n_rows, row_size):
    blocks = parallel.row_blocks(n_rows, row_size)
    assert blocks[0].start == 0 and blocks[-1].stop == n_rows
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    assert all(block.stop > block.start for block in blocks)
    # about BLOCK_ELEMENTS numbers each: never more blocks than rows, never one block per few numbers
    assert len(blocks) <= max(1, round(n_rows * row_size / parallel.BLOCK_ELEMENTS))


def test_parallel_rows_runs_each_block_once_and_returns_results_in_order(tiny_blocks):
    done = np.zeros(1000, dtype=int)

    def kernel(rows):
        done[rows] += 1
        return rows.start

    starts = parallel.parallel_rows(kernel, 1000, 1)
    assert (done == 1).all()
    assert starts == sorted(starts) and len(starts) > 3


def test_an_error_in_a_worker_thread_reaches_the_caller(tiny_blocks):
    def kernel(rows):
        if rows.start > 0:
            raise ValueError("block failed")

    with pytest.raises(ValueError, match="block failed"):
        parallel.parallel_rows(kernel, 1000, 1)


def test_set_num_threads_validates():
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match=r"set_num_threads: expected a positive integer"):
            mt.set_num_threads(bad)


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINITRANSFORMER_NUM_THREADS", "3")
    assert parallel.default_num_threads() == 3
    monkeypatch.setenv("MINITRANSFORMER_NUM_THREADS", "many")
    with pytest.raises(ValueError, match=r"MINITRANSFORMER_NUM_THREADS is 'many'; expected a positive integer"):
        parallel.default_num_threads()


def test_keep_freed_memory_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("MINITRANSFORMER_KEEP_FREED_MEMORY", "0")
    assert parallel.keep_freed_memory() is False


def _op_results(make_inputs, op):
    """Forward output and input gradients of op, in float64, for fresh inputs."""
    inputs = make_inputs()
    out = op(*inputs)
    out.backward(mt.tensor(np.cos(np.arange(out.size)).reshape(out.shape), dtype=np.float64))
    return [out.data] + [x.grad for x in inputs if x.requires_grad]


def _inputs(*shapes):
    """A function that makes the same float64 inputs every time it is called."""
    def make():
        rng = np.random.default_rng(1)
        return [mt.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)
                for shape in shapes]
    return make


def _attention_with_padding(q, k, v):
    keys_allowed = mt.tensor(np.arange(k.shape[-2]) < k.shape[-2] - 2)  # (Tk,): last two hidden
    return F.scaled_dot_product_attention(q, k, v, mask=keys_allowed.data[None, None, None, :])


def _attention_per_matrix_mask(q, k, v):
    mask = np.random.default_rng(2).random((q.shape[0], q.shape[1], q.shape[2], k.shape[2])) < 0.8
    mask[..., 0] = True
    return F.scaled_dot_product_attention(q, k, v, mask=mask)


SPLIT_OPS = {
    "gelu": (_inputs((6, 40)), F.gelu),
    "layer_norm": (_inputs((5, 7, 16), (16,), (16,)), lambda x, w, b: F.layer_norm(x, w, b)),
    "linear": (_inputs((5, 7, 16), (12, 16), (12,)), F.linear),
    "causal attention": (_inputs((2, 3, 9, 4), (2, 3, 9, 4), (2, 3, 9, 4)),
                         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
    "attention, padding mask": (_inputs((2, 3, 9, 4), (2, 3, 9, 4), (2, 3, 9, 4)), _attention_with_padding),
    "attention, mask per matrix": (_inputs((2, 3, 9, 4), (2, 3, 9, 4), (2, 3, 9, 4)), _attention_per_matrix_mask),
}


@pytest.mark.parametrize("name", SPLIT_OPS)
def test_ops_split_into_blocks_match_one_block_and_finite_differences(name, monkeypatch):
    make_inputs, op = SPLIT_OPS[name]
    one_block = _op_results(make_inputs, op)
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 8)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 0)
    mt.set_num_threads(3)
    try:
        assert len(parallel.row_blocks(*one_block[0].reshape(-1, one_block[0].shape[-1]).shape)) > 1
        many_blocks = _op_results(make_inputs, op)
        for a, b in zip(one_block, many_blocks):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        assert mt.gradcheck(op, make_inputs())
    finally:
        mt.set_num_threads(parallel.default_num_threads())


def _gpt_step(threads: int, seed: int = 0):
    """Parameters and gradients after one forward, backward and AdamW step of a small GPT."""
    mt.set_num_threads(threads)
    mt.manual_seed(seed)
    model = nn.GPT(nn.GPTConfig(block_size=16, vocab_size=20, n_layer=2, n_head=2, n_embd=32))
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 20, (4, 16)), rng.integers(0, 20, (4, 16))
    _, loss = model(x, y)
    loss.backward()
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    optim.clip_grad_norm(model.parameters(), 1.0)
    optimizer.step()
    return loss.item(), grads, {name: p.data.copy() for name, p in model.named_parameters()}


def test_a_training_step_is_bitwise_the_same_on_any_number_of_threads(tiny_blocks):
    loss_1, grads_1, params_1 = _gpt_step(threads=1)
    loss_3, grads_3, params_3 = _gpt_step(threads=3)
    assert loss_1 == loss_3
    for name in grads_1:
        np.testing.assert_array_equal(grads_3[name], grads_1[name], err_msg=name)
        np.testing.assert_array_equal(params_3[name], params_1[name], err_msg=name)


def test_blas_runs_on_one_thread_inside_blocks_that_use_it(tiny_blocks):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    inside = parallel.parallel_rows(lambda rows: blas_threads(), 1000, 1, uses_blas=True)
    assert all(threads == [1] * len(before) for threads in inside)
    assert blas_threads() == before  # given back afterwards
