"""Errata, document 004 sections 2.2 and 4.1: the pipeline embedding -> self-attention ->
feed-forward, with x_i = embedding(w_i) (F15) as attention's only input, has no notion of
position. Self-attention (F14) and a position-wise FFN (F16) are permutation equivariant, so the
model as drawn cannot tell word order; a position term x_i = embedding(w_i) + p_i fixes it.
Taught in lessons/10_multi_head_attention.md.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def _document_pipeline(config: nn.GPTConfig):
    """embedding (F15) -> bidirectional multi-head self-attention (F14) -> FFN (F16), no positions."""
    embed = nn.Embedding(config.vocab_size, config.n_embd)
    attention = nn.CausalSelfAttention(config)
    ffn = nn.MLP(config, variant="document")
    nh = config.n_head

    def run(tokens: np.ndarray) -> np.ndarray:
        x = embed(tokens)  # (B, T, C)
        B, T, C = x.shape
        q, k, v = attention.c_attn(x).split(3, axis=2)
        heads = [t.reshape(B, T, nh, C // nh).transpose(0, 2, 1, 3) for t in (q, k, v)]
        y = F.scaled_dot_product_attention(*heads).transpose(0, 2, 1, 3).reshape(B, T, C)
        return ffn(attention.c_proj(y)).numpy()  # (B, T, C)

    return run


def test_errata_positions_document_pipeline_is_order_blind():
    mt.manual_seed(0)
    config = nn.GPTConfig(block_size=16, vocab_size=20, n_layer=1, n_head=4, n_embd=32)
    run = _document_pipeline(config)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, config.vocab_size, size=(3, 9))
    perm = rng.permutation(9)
    # permuting the words only permutes the outputs: "dog bites man" == "man bites dog", reordered
    np.testing.assert_allclose(run(tokens[:, perm]), run(tokens)[:, perm], atol=1e-5)


def test_errata_positions_gpt_position_embeddings_make_order_matter():
    mt.manual_seed(0)
    config = nn.GPTConfig(block_size=16, vocab_size=20, n_layer=1, n_head=4, n_embd=32)
    model = nn.GPT(config).eval()
    rng = np.random.default_rng(1)
    context = rng.permutation(config.vocab_size)[:8][None, :]  # (1, 8), distinct tokens
    reordered = np.concatenate([context[:, :7][:, ::-1], context[:, 7:]], axis=1)  # same last token

    logits, _ = model(context)
    logits_reordered, _ = model(reordered)
    assert not np.allclose(logits.numpy(), logits_reordered.numpy(), atol=1e-4)

    # without the position table the same one-layer model is blind to the reordering
    model.transformer.wpe.weight.data[...] = 0
    logits, _ = model(context)
    logits_reordered, _ = model(reordered)
    np.testing.assert_allclose(logits.numpy(), logits_reordered.numpy(), atol=1e-5)


def test_errata_positions_two_causal_layers_see_order_without_positions():
    """A causal mask alone is order-blind in one layer but not in two (Haviv et al. 2022): the
    second layer's keys summarise prefixes, and reordering the past changes the prefixes.
    Taught in lessons/10_multi_head_attention.md."""
    rng = np.random.default_rng(1)
    context = rng.permutation(20)[:8][None, :]  # (1, 8), distinct tokens
    reordered = np.concatenate([context[:, :7][:, ::-1], context[:, 7:]], axis=1)  # same last token
    differences = {}
    for n_layer in (1, 2):
        mt.manual_seed(0)
        config = nn.GPTConfig(block_size=16, vocab_size=20, n_layer=n_layer, n_head=4, n_embd=32)
        model = nn.GPT(config).eval()
        model.transformer.wpe.weight.data[...] = 0
        with mt.no_grad():
            last, last_reordered = (model(c)[0].numpy()[0, -1] for c in (context, reordered))
        differences[n_layer] = float(np.abs(last - last_reordered).max())
    assert differences[1] < 1e-5
    assert differences[2] > 1e-3
