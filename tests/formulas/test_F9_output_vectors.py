"""F9 (001 section 4.2): P(y | x) = exp(M(x) . w_y) / sum_k exp(M(x) . w_k), w_k the output
vector of token k. In minitransformer the w_k are the rows of a bias-free Linear's weight (the
layer computes every M(x) . w_k at once) and, in GPT, those rows are the token embeddings
(weight tying: lm_head.weight is transformer.wte.weight)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from tests.strategies import arrays


def literal_F9(m, output_vectors):
    scores = [np.exp(np.dot(m, w_k)) for w_k in output_vectors]
    return np.array(scores) / sum(scores)


@given(data=st.data())
def test_F9_softmax_of_a_bias_free_linear_is_the_formula(data):
    C, K = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 6))
    m = data.draw(arrays((C,), -2, 2))
    head = nn.Linear(C, K, bias=False)
    probabilities = F.softmax(head(mt.tensor(m, dtype=np.float64))).numpy()
    np.testing.assert_allclose(probabilities, literal_F9(m, head.weight.numpy().astype(np.float64)), rtol=1e-10)
    assert abs(probabilities.sum() - 1) < 1e-12


def test_F9_gpt_next_token_distribution_uses_the_token_embeddings_as_output_vectors():
    model = nn.GPT(nn.GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16))
    idx = np.array([[3, 1, 4, 1, 5]])
    # M(x): the final hidden state at the last position, computed through the model's parts
    x = model.transformer.wte(idx) + model.transformer.wpe(np.arange(5))
    for block in model.transformer.h:
        x = block(x)
    m = model.transformer.ln_f(x).numpy()[0, -1].astype(np.float64)
    output_vectors = model.transformer.wte.weight.numpy().astype(np.float64)  # w_k = embedding of k
    logits, _ = model(idx)
    np.testing.assert_allclose(F.softmax(logits[0, -1]).numpy(), literal_F9(m, output_vectors), rtol=1e-5, atol=1e-7)


def test_F9_the_most_likely_token_is_the_output_vector_best_aligned_with_M():
    head = nn.Linear(3, 4, bias=False)
    head.weight.data = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0]], dtype=np.float32)
    probabilities = F.softmax(head(mt.tensor([0.2, 2.0, -1.0]))).numpy()
    assert probabilities.argmax() == 1
