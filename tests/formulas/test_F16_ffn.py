"""F16 (004 section 4.1), as the document writes it: FFN(x) = ReLU(W_2 ReLU(W_1 x + b_1)) + b_2,
nn.MLP(config, variant="document"), against the paper's FFN(x) = W_2 GELU(W_1 x + b_1) + b_2
(GPT-2; Vaswani et al. use ReLU inside), variant "paper". The document's outer ReLU clips
W_2 h to >= 0 before b_2 is added, so its output is >= b_2 in every coordinate: a block can
never push the residual stream below the bias, whatever the input."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import erf

import minitransformer as mt
from minitransformer import nn
from tests.strategies import arrays

CONFIG = nn.GPTConfig(block_size=4, vocab_size=8, n_layer=1, n_head=1, n_embd=4)


def relu(z):
    return np.maximum(z, 0)


def weights(mlp):
    W1, b1 = mlp.c_fc.weight.numpy().astype(np.float64), mlp.c_fc.bias.numpy().astype(np.float64)
    W2, b2 = mlp.c_proj.weight.numpy().astype(np.float64), mlp.c_proj.bias.numpy().astype(np.float64)
    return W1, b1, W2, b2


def randomised(variant):
    mlp = nn.MLP(CONFIG, variant=variant)
    rng = np.random.default_rng(0)
    mlp.c_proj.bias.data = rng.standard_normal(4).astype(np.float32)
    return mlp


@given(x=arrays((3, 4)))
def test_F16_document_variant_is_the_formula_as_written(x):
    mlp = randomised("document")
    W1, b1, W2, b2 = weights(mlp)
    expected = np.array([relu(W2 @ relu(W1 @ row + b1)) + b2 for row in x])
    np.testing.assert_allclose(mlp(mt.tensor(x, dtype=np.float64)).numpy(), expected, rtol=1e-6, atol=1e-6)


@given(x=arrays((3, 4)))
def test_F16_paper_variant_is_the_gelu_ffn(x):
    mlp = randomised("paper")
    W1, b1, W2, b2 = weights(mlp)

    def gelu(z):
        return 0.5 * z * (1 + erf(z / np.sqrt(2)))

    expected = np.array([W2 @ gelu(W1 @ row + b1) + b2 for row in x])
    np.testing.assert_allclose(mlp(mt.tensor(x, dtype=np.float64)).numpy(), expected, rtol=1e-6, atol=1e-6)


@given(x=arrays((5, 4), -10, 10), seed=st.integers(0, 1000))
def test_F16_document_output_never_goes_below_b2(x, seed):
    mlp = nn.MLP(CONFIG, variant="document")
    rng = np.random.default_rng(seed)
    for param in mlp.parameters():
        param.data = rng.standard_normal(param.shape).astype(np.float32)
    out = mlp(mt.tensor(x, dtype=np.float64)).numpy()
    assert np.all(out >= mlp.c_proj.bias.numpy() - 1e-6)


def test_F16_paper_output_can_go_below_b2_and_the_variant_follows_the_config():
    mlp = randomised("paper")
    x = np.random.default_rng(1).standard_normal((64, 4)) * 3
    out = mlp(mt.tensor(x)).numpy()
    assert (out < mlp.c_proj.bias.numpy()).any()  # it can subtract from the residual stream
    document = nn.GPT(nn.GPTConfig(**{**CONFIG.to_dict(), "mlp": "document"}))
    assert document.transformer.h[0].mlp.variant == "document"
    assert nn.GPT(CONFIG).transformer.h[0].mlp.variant == "paper"
