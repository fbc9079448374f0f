"""microbatches.py: how a batch is cut into ranks x micro-batches, and why the weighted pieces
give the whole batch's update (the Python loop, finetune; train's is in tests/assignments)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer.finetune import FinetuneConfig, _scratch_gpt_classifier, encode_texts, fit
from minitransformer.microbatches import BatchPlan, counted_targets
from tests.distributed_worker import train_tiny


@given(rows=st.integers(1, 40), world_size=st.integers(1, 5), accumulation_steps=st.integers(1, 5))
def test_the_ranks_pieces_cover_the_batch_in_order_once(rows, world_size, accumulation_steps):
    plans = [BatchPlan(accumulation_steps, rank, world_size) for rank in range(world_size)]
    ranges = [span for plan in plans for span in plan.row_ranges(rows)]
    assert len(ranges) == world_size * accumulation_steps
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, in rank order
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


@given(rows=st.integers(1, 24), world_size=st.integers(1, 4), accumulation_steps=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_the_shares_are_the_pieces_counted_targets_and_add_up_to_one(rows, world_size, accumulation_steps, seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 5, (rows, 6))
    targets[rng.random((rows, 6)) < 0.5] = -100
    targets[0, 0] = 1  # at least one counted target in the batch
    pieces = [piece for rank in range(world_size)
              for piece in BatchPlan(accumulation_steps, rank, world_size).pieces(targets)]
    assert sum(share for _, share in pieces) == pytest.approx(1.0, abs=1e-12)
    for part, share in pieces:
        assert share == counted_targets(part) / counted_targets(targets) > 0  # empty pieces are left out
    spans = [span for rank in range(world_size) for span in BatchPlan(accumulation_steps, rank, world_size).row_ranges(rows)]
    uncounted_rows = sum(stop - start for start, stop in spans if not counted_targets(targets[start:stop]))
    assert sum(len(part) for part, _ in pieces) == rows - uncounted_rows


def test_counted_targets():
    assert counted_targets(np.array([[1, -100], [-100, -100]])) == 1
    assert counted_targets(np.array([1, -1, 2]), ignore_index=-1) == 2
    assert counted_targets(np.array([0.5, -100.0])) == 2  # real-valued targets (a regression) count all
    assert counted_targets(np.array([1, -100]), ignore_index=None) == 2


@pytest.mark.parametrize("flags, fragment", [
    (dict(accumulation_steps=0), "accumulation_steps must be a positive integer"),
    (dict(world_size=2, rank=2), "rank must be in [0, 2)"),
])
def test_bad_plans_are_refused(flags, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        BatchPlan(**flags)


def test_a_batch_smaller_than_its_pieces_is_refused():
    with pytest.raises(ValueError, match="train: --batch-size 3 is smaller than the 2 rank"):
        BatchPlan(2, 0, 2).check_batch_size("train", 3)
    with pytest.raises(ValueError, match="finetune: --batch-size 2 is smaller"):
        FinetuneConfig(batch_size=2, gradient_accumulation_steps=4)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_accumulated_micro_batches_update_like_the_whole_batch(dtype, tolerance):
    """A hand-written loop: 4 AdamW steps on batches of 8 whose rows ignore more and more of
    their targets, whole or in 4 micro-batches weighted by counted tokens. Weighting each piece
    1/4 instead (nanoGPT's loss / gradient_accumulation_steps) is measurably wrong here."""
    whole = train_tiny(dtype, accumulation_steps=1)[0]
    accumulated = train_tiny(dtype, accumulation_steps=4)[0]
    for name, value in accumulated.items():
        np.testing.assert_allclose(value, whole[name], rtol=0, atol=tolerance, err_msg=name)


def test_equal_weights_would_be_wrong_with_ignore_index(monkeypatch):
    whole = train_tiny(np.float64, accumulation_steps=1)[0]
    rows_only = BatchPlan.pieces

    def equal_shares(self, *arrays, ignore_index=-100):
        return [(*piece[:-1], 1 / self.accumulation_steps) for piece in rows_only(self, *arrays,
                                                                                  ignore_index=ignore_index)]

    monkeypatch.setattr(BatchPlan, "pieces", equal_shares)
    equal = train_tiny(np.float64, accumulation_steps=4)[0]
    assert max(float(np.abs(equal[name] - whole[name]).max()) for name in whole) > 1e-5


def test_finetune_with_micro_batches_fits_like_whole_batches(tmp_path):
    texts = [f"the {word} is here" for word in ("cat", "dog", "cow", "owl")] * 6
    labels = np.array([0, 1, 0, 1] * 6)
    reports = []
    for steps in (1, 3):
        config = FinetuneConfig(from_scratch=True, epochs=2, batch_size=5, gradient_accumulation_steps=steps,
                                n_layer=1, n_head=2, n_embd=16, dropout=0.0, max_tokens=16, out_dir=str(tmp_path))
        mt.manual_seed(0)
        model, tokenizer = _scratch_gpt_classifier(config, texts, 2)
        for p in model.parameters():  # float64: the attention's key bias has a zero gradient, which float32
            p.data = p.data.astype(np.float64)  # rounds to noise that Adam scales up to steps of the lr
        ids, mask = encode_texts(tokenizer, texts, config.max_tokens)
        result = fit(model, (ids, mask, labels), (ids[:4], mask[:4], labels[:4]), config, open(os.devnull, "w"),
                     "test", 1e-3, 2)
        reports.append((result["history"], model.state_dict()))
    (history_1, state_1), (history_3, state_3) = reports
    for one, three in zip(history_1, history_3):
        assert three["train_loss"] == pytest.approx(one["train_loss"], rel=1e-12)
        assert three["train_accuracy"] == one["train_accuracy"]
    for name, value in state_3.items():
        np.testing.assert_allclose(value, state_1[name], rtol=0, atol=1e-12, err_msg=name)
