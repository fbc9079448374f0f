"""BERT's pretraining heads and losses (minitransformer/nn/bert_pretraining.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn
from minitransformer.nn.bert_pretraining import IGNORE_INDEX, masked_lm_loss

from .module_gradcheck import module_gradcheck

TINY = dict(vocab_size=23, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
            max_position_embeddings=12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

HF_HEAD_KEYS = {  # Hugging Face BertForPreTraining's state-dict keys beyond bert.*
    "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
    "cls.seq_relationship.weight", "cls.seq_relationship.bias",
}


def tiny_model(seed: int = 0) -> nn.BertForPreTraining:
    mt.manual_seed(seed)
    return nn.BertForPreTraining(nn.BertConfig(**TINY))


def test_state_dict_has_hugging_face_names_and_the_decoder_is_the_word_embedding():
    model = tiny_model()
    state = model.state_dict()
    encoder_keys = set(nn.BertModel(nn.BertConfig(**TINY)).state_dict())
    assert set(state) == {f"bert.{key}" for key in encoder_keys} | HF_HEAD_KEYS
    predictions = model.cls.predictions
    assert predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert predictions.bias is predictions.decoder.bias
    # a tied parameter is learned once
    untied = sum(value.size for value in state.values())
    assert model.num_parameters() == untied - TINY["vocab_size"] * TINY["hidden_size"] - TINY["vocab_size"]


def test_forward_shapes_and_the_loss_is_the_sum_of_mlm_and_nsp():
    model = tiny_model()
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 23, size=(3, 10))
    labels = np.full((3, 10), IGNORE_INDEX)
    labels[0, 2], labels[2, 7] = 9, 14
    nsp = np.array([0, 1, 1])
    logits, nsp_logits, loss = model(ids, labels=labels, next_sentence_label=nsp)
    assert logits.shape == (3, 10, 23) and nsp_logits.shape == (3, 2)

    def nll(rows: np.ndarray, targets) -> float:
        rows = rows.astype(np.float64)
        log_probs = rows - rows.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        return float(-log_probs[np.arange(len(targets)), targets].mean())

    expected = (nll(logits.numpy()[[0, 2], [2, 7]], [9, 14]) + nll(nsp_logits.numpy(), nsp))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert model(ids)[2] is None


@given(seed=st.integers(0, 2**32 - 1), masked_share=st.floats(0.05, 0.9))
@settings(max_examples=15)
def test_mlm_loss_ignores_unmasked_positions(seed, masked_share):
    """Changing the logits at unmasked positions, even to huge values, changes neither the loss
    nor the gradient at the masked positions, and the unmasked positions get no gradient."""
    rng = np.random.default_rng(seed)
    B, T, V = 3, 7, 11
    labels = rng.integers(0, V, size=(B, T))
    unmasked = rng.random((B, T)) >= masked_share
    unmasked[0, 0] = False  # at least one masked position
    labels[unmasked] = IGNORE_INDEX
    logits = rng.normal(size=(B, T, V))
    changed = logits.copy()
    changed[unmasked] = rng.normal(scale=1e3, size=(int(unmasked.sum()), V))

    def loss_and_grad(values):
        tensor = mt.tensor(values, dtype=np.float64, requires_grad=True)
        loss = masked_lm_loss(tensor, labels)
        loss.backward()
        return loss.item(), tensor.grad

    loss, grad = loss_and_grad(logits)
    changed_loss, changed_grad = loss_and_grad(changed)
    assert changed_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(changed_grad[~unmasked], grad[~unmasked], rtol=1e-12)
    assert (grad[unmasked] == 0).all() and (changed_grad[unmasked] == 0).all()
    # the mean is over the masked positions only
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.where(unmasked, 0, labels)[..., None], -1)[..., 0]
    assert loss == pytest.approx(-picked[~unmasked].mean(), rel=1e-10)


def test_the_model_ignores_the_labels_of_nothing_but_the_masked_positions():
    """Through the whole model: the loss depends on the label ids at masked positions only."""
    model = tiny_model()
    ids = np.random.default_rng(1).integers(5, 23, size=(2, 9))
    labels = np.full((2, 9), IGNORE_INDEX)
    labels[1, 4] = 6
    loss = model(ids, labels=labels)[2].item()
    other = labels.copy()
    other[1, 4] = 7
    assert model(ids, labels=other)[2].item() != pytest.approx(loss)
    assert model(ids, labels=labels)[2].item() == loss  # deterministic without dropout


def test_pretraining_heads_gradcheck():
    model = tiny_model()
    head = model.cls
    rng = np.random.default_rng(0)
    hidden = mt.tensor(rng.normal(size=(2, 3, 8)), dtype=np.float64, requires_grad=True)
    pooled = mt.tensor(rng.normal(size=(2, 8)), dtype=np.float64, requires_grad=True)

    def forward(module, h, p):
        prediction_logits, nsp_logits = module(h, p)
        return (prediction_logits * prediction_logits).sum() + (nsp_logits * nsp_logits).sum()

    assert module_gradcheck(head, hidden, pooled, forward=forward)

