"""F7's errata, document 001 section 4.1: L_pre = -sum_i log P(x_i | M(x_<i)) is introduced as
the masked-language-model objective, but it conditions each token on the tokens before it: the
causal LM loss that GPT trains (tests/formulas/test_F7_causal_lm_loss.py). A masked LM predicts
hidden positions from the context on both sides, which this test shows for a BERT encoder.
Taught in lessons/12_gpt.md.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
from minitransformer.nn.bert import BertConfig, BertModel


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
