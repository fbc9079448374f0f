"""F7 (001 section 4.1): L_pre = -sum_{i=1}^{T} log P(x_i | M_theta(x_<i)).

The document introduces F7 as the masked-language-model objective, but the formula conditions
each token on the tokens before it only, x_<i: it is the causal (autoregressive) objective that
GPT trains with. A masked LM predicts hidden tokens from context on both sides (001's errata,
test_errata_masked_lm.py). GPT's loss is F7 divided by the number of predicted tokens (the
mean, so the learning rate does not depend on T); these tests compute F7 literally, one prefix
at a time, and compare."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer.functional as F
from minitransformer import nn

CONFIG = nn.GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16)


def log_p_next(model, prefix, token) -> float:
    """log P(token | M(prefix)): run the model on the prefix alone, softmax its last logits."""
    logits, _ = model(np.array([prefix]))
    return float(F.log_softmax(logits[0, -1]).numpy()[token])


def literal_F7(model, x) -> float:
    """-sum_{i=2}^{T} log P(x_i | x_<i) (x_1 has no prefix to condition on)."""
    return -sum(log_p_next(model, x[:i], x[i]) for i in range(1, len(x)))


def test_F7_gpt_loss_is_the_literal_sum_over_prefixes_divided_by_T():
    model = nn.GPT(CONFIG)
    x = np.random.default_rng(0).integers(0, 11, 9)  # T + 1 tokens: inputs x_1..8, targets x_2..9
    _, loss = model(x[None, :-1], x[None, 1:])
    assert loss.item() * 8 == pytest.approx(literal_F7(model, x), rel=1e-5)


def test_F7_term_i_is_blind_to_tokens_at_and_after_i():
    """What the formula computes: changing x_j for j >= i leaves log P(x_i | x_<i) alone, so
    changing the last token changes only the last term of the sum."""
    model = nn.GPT(CONFIG)
    x = np.random.default_rng(1).integers(0, 11, 9)
    changed = x.copy()
    changed[-1] = (x[-1] + 1) % 11
    terms = [log_p_next(model, x[:i], x[i]) for i in range(1, 9)]
    changed_terms = [log_p_next(model, changed[:i], changed[i]) for i in range(1, 9)]
    np.testing.assert_array_equal(terms[:-1], changed_terms[:-1])
    assert terms[-1] != changed_terms[-1]


def test_F7_batched_loss_averages_the_per_sequence_sums():
    model = nn.GPT(CONFIG)
    rng = np.random.default_rng(2)
    sequences = rng.integers(0, 11, (3, 6))
    _, loss = model(sequences[:, :-1], sequences[:, 1:])
    assert loss.item() == pytest.approx(sum(literal_F7(model, s) for s in sequences) / (3 * 5), rel=1e-5)
