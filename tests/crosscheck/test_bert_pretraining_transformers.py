"""Optional cross-checks of BertForPreTraining, in float64: the pretraining heads and both
losses against a PyTorch transcription of Hugging Face's ``BertPreTrainingHeads`` (skipped
without torch); and, where transformers is installed (CI installs torch only), the whole
model against transformers' own: our state dict loads into theirs (the same names and
shapes) and both give the same logits and loss."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
TF = torch.nn.functional

TINY = dict(vocab_size=31, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
TINY_EPS = 1e-12  # BertConfig's layer_norm_eps


def perturbed_model(seed: int = 0) -> nn.BertForPreTraining:
    """A tiny model whose biases and LayerNorm gains are not 0 and 1, so every weight matters."""
    mt.manual_seed(seed)
    model = nn.BertForPreTraining(nn.BertConfig(**TINY)).eval()
    for name, param in model.named_parameters():
        param.data = param.data + np.random.default_rng(len(name)).normal(0, 0.05, param.shape).astype(np.float32)
    return model


def torch_pretraining_heads(state: dict, hidden, pooled, labels, nsp_labels):
    """Hugging Face's BertPreTrainingHeads and BertForPreTraining's loss, transcribed."""
    def w(name):
        return torch.tensor(np.asarray(state[name], dtype=np.float64))

    h = TF.linear(hidden, w("cls.predictions.transform.dense.weight"), w("cls.predictions.transform.dense.bias"))
    h = TF.layer_norm(TF.gelu(h), (h.shape[-1],), w("cls.predictions.transform.LayerNorm.weight"),
                      w("cls.predictions.transform.LayerNorm.bias"), eps=TINY_EPS)
    logits = h @ w("bert.embeddings.word_embeddings.weight").T + w("cls.predictions.bias")
    nsp_logits = TF.linear(pooled, w("cls.seq_relationship.weight"), w("cls.seq_relationship.bias"))
    loss = (TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(labels).reshape(-1), ignore_index=-100)
            + TF.cross_entropy(nsp_logits, torch.tensor(nsp_labels)))
    return logits, nsp_logits, loss


def test_pretraining_heads_and_loss_match_a_torch_transcription():
    model = perturbed_model()
    for _, param in model.named_parameters():
        param.data = param.data.astype(np.float64)
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 31, size=(3, 10))
    labels = np.where(rng.random(ids.shape) < 0.3, ids, -100)
    labels[0, 1] = ids[0, 1]
    nsp = np.array([1, 0, 1])
    hidden = model.bert(ids)  # (B, T, C)
    logits, nsp_logits, loss = model(ids, labels=labels, next_sentence_label=nsp)
    expected = torch_pretraining_heads(model.state_dict(), torch.tensor(hidden.numpy()),
                                       torch.tensor(model.bert.pooler(hidden).numpy()), labels, nsp)
    np.testing.assert_allclose(logits.numpy(), expected[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nsp_logits.numpy(), expected[1].numpy(), rtol=1e-10, atol=1e-12)
    assert loss.item() == pytest.approx(expected[2].item(), rel=1e-10)


def test_bert_for_pretraining_matches_transformers():
    transformers = pytest.importorskip("transformers", reason="transformers is not installed (CI installs torch "
                                                               "only); the torch transcription above still runs")
    ours = perturbed_model()
    theirs = transformers.BertForPreTraining(transformers.BertConfig(**TINY, attn_implementation="eager"))
    theirs = theirs.double().eval()
    state = {name: torch.tensor(np.asarray(value, dtype=np.float64)) for name, value in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert unexpected == [] and [key for key in missing if "position_ids" not in key] == []

    rng = np.random.default_rng(1)
    ids = rng.integers(5, 31, size=(3, 10))
    types = np.zeros_like(ids)
    types[:, 6:] = 1
    mask = np.ones_like(ids)
    mask[2, 8:] = 0
    labels = np.where(rng.random(ids.shape) < 0.3, ids, -100)
    labels[0, 1] = ids[0, 1]
    nsp = np.array([0, 1, 0])

    for _, param in ours.named_parameters():  # float64, as theirs (a tied parameter is listed once)
        param.data = param.data.astype(np.float64)
    logits, nsp_logits, loss = ours(ids, mask, types, labels, nsp)
    expected = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                      token_type_ids=torch.tensor(types), labels=torch.tensor(labels),
                      next_sentence_label=torch.tensor(nsp))
    real = mask.astype(bool)  # padded positions' outputs are never read
    np.testing.assert_allclose(logits.numpy()[real], expected.prediction_logits.detach().numpy()[real],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(nsp_logits.numpy(), expected.seq_relationship_logits.detach().numpy(),
                               rtol=1e-9, atol=1e-10)
    assert loss.item() == pytest.approx(expected.loss.item(), rel=1e-9)
