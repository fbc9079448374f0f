"""F16 and its errata, document 004 section 4.1: FFN(x) = ReLU(W_2 ReLU(W_1 x + b_1)) + b_2. The
outer ReLU is not in the transformer (Vaswani et al. 2017: max(0, x W_1 + b_1) W_2 + b_2) nor in
GPT (W_2 GELU(W_1 x + b_1) + b_2): with it the FFN can never write below b_2 into the residual
stream. nn.MLP keeps both: variant "document" (F16 as written) and "paper" (the default).
Taught in lessons/11_transformer_block.md.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

import minitransformer as mt
from minitransformer import nn


def _mlps():
    mt.manual_seed(0)
    config = nn.GPTConfig(block_size=8, vocab_size=8, n_layer=1, n_head=2, n_embd=16)
    paper = nn.MLP(config, variant="paper")
    document = nn.MLP(config, variant="document")
    document.load_state_dict(paper.state_dict())
    weights = {name: p.numpy().astype(np.float64) for name, p in paper.named_parameters()}
    return paper, document, weights


def test_F16_document_variant_is_the_formula_as_written():
    _, document, w = _mlps()
    x = np.random.default_rng(0).standard_normal((5, 16))
    hidden = np.maximum(0, x @ w["c_fc.weight"].T + w["c_fc.bias"])  # ReLU(W_1 x + b_1)
    expected = np.maximum(0, hidden @ w["c_proj.weight"].T) + w["c_proj.bias"]  # ReLU(W_2 .) + b_2
    np.testing.assert_allclose(document(mt.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_F16_paper_variant_is_the_transformer_ffn_with_gelu():
    paper, _, w = _mlps()
    x = np.random.default_rng(1).standard_normal((5, 16))
    pre = x @ w["c_fc.weight"].T + w["c_fc.bias"]
    gelu = 0.5 * pre * (1 + erf(pre / np.sqrt(2)))
    expected = gelu @ w["c_proj.weight"].T + w["c_proj.bias"]  # W_2 GELU(W_1 x + b_1) + b_2
    np.testing.assert_allclose(paper(mt.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_errata_ffn_document_form_never_writes_below_b2():
    paper, document, w = _mlps()
    x = mt.tensor(50 * np.random.default_rng(2).standard_normal((64, 16)))
    b2 = w["c_proj.bias"]
    assert (document(x).numpy() >= b2 - 1e-5).all()  # every input: FFN(x) >= b_2
    assert (paper(x).numpy() < b2).mean() > 0.25  # the transformer's FFN writes both signs
