"""F9 (001_ba140d4ad4b671ba.txt, section 4.2): P(y | x) = exp(M(x) . w_y) / sum_k exp(M(x) . w_k),
w_k the output vector of token k."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays


def output_distribution_formula(hidden, output_vectors):
    """P[y] = exp(h . w_y) / sum_k exp(h . w_k), for every y, written literally."""
    scores = np.array([hidden @ w for w in output_vectors])
    return np.exp(scores) / np.sum(np.exp(scores))


@given(data=st.data())
def test_F9_softmax_output_equals_formula(data):
    d, vocab = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    hidden, output_vectors = data.draw(arrays((d,), -3, 3)), data.draw(arrays((vocab, d), -3, 3))
    logits = F.linear(mt.tensor(hidden, dtype=np.float64), mt.tensor(output_vectors, dtype=np.float64))
    probabilities = F.softmax(logits)
    expected = output_distribution_formula(hidden, output_vectors)
    np.testing.assert_allclose(probabilities.numpy(), expected, rtol=1e-12)
    # its negative log at the true token is the training loss (F7 per position)
    target = data.draw(st.integers(0, vocab - 1))
    loss = F.cross_entropy(logits.reshape(1, vocab), np.array([target]))
    np.testing.assert_allclose(loss.item(), -np.log(expected[target]), rtol=1e-10, atol=1e-14)


def test_F9_softmax_output_large_scores():
    # Written literally, exp(h . w) overflows once a score passes ~709 and F9 gives inf / inf =
    # NaN; subtracting the largest score first (same value, F9 is shift-invariant) avoids it.
    hidden, output_vectors = np.array([30.0, 30.0]), np.array([[20.0, 20.0], [19.0, 20.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(output_distribution_formula(hidden, output_vectors)).any()
    scores = output_vectors @ hidden
    p = F.softmax(mt.tensor(scores, dtype=np.float64)).numpy()
    shifted = np.exp(scores - scores.max())
    np.testing.assert_allclose(p, shifted / shifted.sum(), rtol=1e-12)
