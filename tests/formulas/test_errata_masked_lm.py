"""F7 and its errata, document 001 section 4.1: L_pre = -sum_i log P(x_i | M(x_<i)) is
introduced as the masked-language-model objective, but it conditions each token on the tokens
before it and sums over every position: the causal (autoregressive) LM loss that GPT trains.
A masked LM predicts hidden positions from the context on both sides. Taught in
lessons/12_gpt.md.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.nn.bert import BertConfig, BertModel


def _gpt():
    mt.manual_seed(0)
    return nn.GPT(nn.GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16)).eval()


def test_F7_gpt_loss_is_the_causal_lm_loss():
    model = _gpt()
    rng = np.random.default_rng(0)
    sequence = rng.integers(0, 11, size=(3, 13))  # x_1 .. x_13 for 3 sequences
    x, y = sequence[:, :-1], sequence[:, 1:]      # predict x_{i+1} from x_<=i
    logits, loss = model(x, y)
    log_probs = F.log_softmax(logits.astype(np.float64), axis=-1).numpy()
    # F7 as written, per sequence: -sum_i log P(x_i | x_<i), over every position i
    L_pre = -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0].sum(axis=1)
    np.testing.assert_allclose(loss.item(), L_pre.sum() / y.size, rtol=1e-5)


def test_F7_prediction_at_i_conditions_only_on_tokens_before_it():
    model = _gpt()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 11, size=(2, 12))
    changed = x.copy()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11  # change every token from position 6 on
    logits, _ = model(x, x)
    logits_changed, _ = model(changed, changed)
    # P(x_{i+1} | x_<=i) for i < 6 is untouched: the GPT objective never looks ahead
    np.testing.assert_allclose(logits.numpy()[:, :6], logits_changed.numpy()[:, :6], atol=1e-6)


def test_errata_masked_lm_encoder_conditions_on_both_sides():
    """What a masked LM conditions on: a BERT encoder's output at a masked position depends on
    the tokens after it, so its loss is not -log P(x_i | x_<i)."""
    mt.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=11, hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32,
                                   max_position_embeddings=16)).eval()
    rng = np.random.default_rng(2)
    x = rng.integers(1, 11, size=(1, 12))
    x[0, 4] = 0  # the masked position
    changed = x.copy()
    changed[0, 9] = 1 + changed[0, 9] % 10  # a token *after* the masked one
    hidden, hidden_changed = encoder(x).numpy(), encoder(changed).numpy()
    assert not np.allclose(hidden[0, 4], hidden_changed[0, 4], atol=1e-4)
