"""Assignment a6, the step of the training loop in train.py: one step is forward, zero the
gradients, backward, clip, update, and a run made of such steps learns (lesson 12). The
sampling half of a6 (GPT.generate) is tested in tests/nn/test_gpt.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import data
from minitransformer.nn import GPT
from minitransformer.optim import clip_grad_norm, cosine_lr, set_lr
from minitransformer.train import TrainConfig, load_run, train

TEXT = (
    "Return the number of items in a container. The argument may be a sequence or a collection.\n"
    "Raise ValueError when the value is not found. Open a file and return a stream.\n"
) * 40


@pytest.fixture
def config(tmp_path) -> TrainConfig:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    return TrainConfig(data=str(corpus), out_dir=str(tmp_path / "runs"), name="run", batch_size=4, block_size=16,
                       n_layer=1, n_head=2, n_embd=16, max_iters=3, eval_interval=100, eval_iters=2,
                       log_interval=1, sample_tokens=5, warmup_iters=1, learning_rate=1e-2, grad_clip=0.5)


@pytest.mark.hidden
def test_train_takes_the_steps_of_a_hand_written_loop(config):
    run_dir = train(config, out=open(os.devnull, "w"), results=open(os.devnull, "w"))
    trained, _, _ = load_run(run_dir)

    # the same run by hand: the same tokenizer, split, seed, model and batches
    tokenizer = data.CharTokenizer.train(TEXT)
    train_ids, _ = data.train_val_split(np.asarray(tokenizer.encode(TEXT), dtype=np.int64), 0.1)
    mt.manual_seed(config.seed)
    model = GPT(config.model_config(tokenizer.vocab_size))
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    for iteration in range(config.max_iters):
        set_lr(optimizer, cosine_lr(iteration, config.learning_rate, config.warmup_iters, config.max_iters, config.min_lr))
        x, y = data.get_batch(train_ids, config.batch_size, config.block_size)
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), config.grad_clip)
        optimizer.step()

    expected = model.state_dict()
    for name, value in trained.state_dict().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_loss_falls_and_every_step_is_logged(config):
    config.max_iters, config.eval_interval = 40, 20
    run_dir = train(config, out=open(os.devnull, "w"), results=open(os.devnull, "w"))
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["iter"] for r in steps] == list(range(1, 41))
    assert all(np.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in steps)
    assert [r["iter"] for r in evals] == [0, 20, 40]
    assert evals[-1]["train"] < evals[0]["train"] - 0.5, evals  # it learns, from about ln(vocabulary)


def test_micro_batches_take_the_step_of_the_whole_batch(config, tmp_path):
    """--gradient-accumulation-steps 3 cuts each batch of 4 into micro-batches of 1, 1 and 2
    sequences: weighted by their shares, their gradients add up to the batch's, so the logged
    losses, gradient norms and the parameters are those of one batch (float32 rounding apart)."""
    # no biases: the key bias's exact gradient is zero, and Adam scales float32's rounding noise
    # in it up towards the learning rate (lesson 18)
    config.learning_rate, config.bias = 1e-3, False
    quiet = open(os.devnull, "w")
    whole = train(config, out=quiet, results=quiet)
    config.name, config.gradient_accumulation_steps = "accumulated", 3
    accumulated = train(config, out=quiet, results=quiet)

    def steps(run_dir):
        records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        return [(r["loss"], r["grad_norm"]) for r in records if r["kind"] == "step"]

    np.testing.assert_allclose(steps(accumulated), steps(whole), rtol=1e-5)
    expected = load_run(whole)[0].state_dict()
    for name, value in load_run(accumulated)[0].state_dict().items():
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=1e-6, err_msg=name)
