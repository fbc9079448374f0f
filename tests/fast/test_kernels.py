"""fast/cpu/kernels.py: the compiled CPU kernels against the reference code they replace.

Every op keeps its NumPy code as the reference (gradchecked in float64 elsewhere). Here each op
runs on the same float32 inputs twice, with ``set_kernels("reference")`` and ``"fast"``: Adam
must agree bitwise, since it makes the same float32 operations in the same order, and the
embedding's scatter-add must equal ``np.add.at``; GELU (its own exp), layer norm, the
attention softmax, softmax, log-softmax and cross-entropy (sums in another order) agree to
float32 rounding, and GELU and exp are also
checked against float64. Inputs include NaN and inf, masked rows, rows shorter and longer than the
softmax's 16 lanes, and blocks split over several threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import dispatch
from minitransformer.fast.cpu import kernels, parallel
from minitransformer.ops.embedding import add_rows_at

pytestmark = pytest.mark.skipif(not kernels.compiled_available(), reason="numba is not installed")


def _both(run):
    """run() with the NumPy reference code, then with the compiled kernels."""
    previous = mt.get_kernels()
    try:
        mt.set_kernels("reference")
        reference = run()
        mt.set_kernels("fast")
        compiled = run()
    finally:
        mt.set_kernels(previous)
    return reference, compiled


def _forward_backward(op, *arrays, grad_seed=1):
    """Output and input gradients of op on float32 tensors made from ``arrays``, for a random
    upstream gradient (all ones with ``grad_seed=None``: then the gradients are derivatives)."""
    tensors = [mt.tensor(a, requires_grad=True) for a in arrays]
    out = op(*tensors)
    grad = (np.ones(out.shape, np.float32) if grad_seed is None
            else np.random.default_rng(grad_seed).standard_normal(out.shape).astype(np.float32))
    out.backward(grad)
    return [out.data] + [t.grad for t in tensors]


def _assert_close(reference, compiled, rtol=2e-6, atol=2e-6):
    for i, (a, b) in enumerate(zip(reference, compiled)):
        assert a.dtype == b.dtype == np.float32
        scale = max(1.0, float(np.abs(a[np.isfinite(a)]).max(initial=0)))
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol * scale, err_msg=f"result {i}")


def _float32(draw_shape, seed, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(draw_shape) * scale).astype(np.float32)


@given(shape=st.tuples(st.integers(1, 40), st.integers(1, 70)), seed=st.integers(0, 2**16))
def test_gelu_compiled_matches_numpy(shape, seed, blocks):
    x = _float32(shape, seed)
    x.flat[::7] = np.float32(5.0)  # beyond the clamp of erf's approximation
    reference, compiled = _both(lambda: _forward_backward(F.gelu, x))
    _assert_close(reference, compiled, rtol=1e-6, atol=2e-7)


def test_gelu_compiled_is_as_accurate_as_the_numpy_code():
    """Against the exact GELU and its derivative in float64 (SciPy's erf), over [-12, 12]."""
    from scipy.special import erf

    x = np.concatenate([np.linspace(-12, 12, 48001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    exact_cdf = 0.5 * (1 + erf(x.astype(np.float64) / np.sqrt(2)))
    exact = x * exact_cdf
    exact_grad = exact_cdf + x * np.exp(-(x.astype(np.float64) ** 2) / 2) / np.sqrt(2 * np.pi)
    for choice, (out, grad) in zip(("reference", "fast"), _both(lambda: _forward_backward(
            F.gelu, x, grad_seed=None))):
        # erf's approximation is within 1.8e-7 of erf, so Phi within ~1e-7 and x Phi within
        # ~1e-7 |x|; the float32 products and exp add a few ulp
        assert np.all(np.abs(out - exact) <= 2e-7 * np.maximum(np.abs(x), 1) + 4 * np.spacing(np.abs(out))), choice
        assert np.all(np.abs(grad - exact_grad) <= 3e-7), choice


def test_gelu_of_nan_and_inf_is_not_finite_and_of_tiny_values_exact():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30], dtype=np.float32)
    out = F.gelu(mt.tensor(x)).data  # the compiled kernels, the default
    assert np.isnan(out[0]) and out[1] == np.inf and not np.isfinite(out[2])  # NumPy: NaN
    np.testing.assert_array_equal(out[3:], x[3:] / 2)  # x Phi(0) = x / 2


@given(x=st.lists(st.floats(-87, 88, width=32), min_size=1, max_size=50))
def test_exp_float32_is_within_about_an_ulp(x):
    x = np.asarray(x, dtype=np.float32)
    exact = np.exp(x.astype(np.float64))
    got = np.array([kernels.exp_float32(value) for value in x], dtype=np.float32)
    ulps = np.abs(got - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.5


def test_exp_float32_underflows_to_zero_and_overflows_to_inf_as_numpy_does():
    for x, expected in [(-87.5, 0.0), (-1e4, 0.0), (-np.inf, 0.0), (88.73, np.inf), (np.inf, np.inf)]:
        assert kernels.exp_float32(np.float32(x)) == expected, x
    assert np.isnan(kernels.exp_float32(np.float32(np.nan)))
    x = np.array([[0.0, 1e4], [0.0, -200.0]], dtype=np.float32)  # weights below e^-87 are 0
    reference, compiled = _both(lambda: F.softmax(mt.tensor(x)).data)
    np.testing.assert_array_equal(compiled, reference)


@given(rows=st.integers(1, 30), width=st.integers(1, 50), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_layer_norm_compiled_matches_numpy(rows, width, bias, seed, blocks):
    x = _float32((rows, width), seed) + np.float32(2.0)
    x[0] = np.float32(1.5)  # a constant row: variance 0, so x_hat = 0 and rstd = 1/sqrt(eps)
    weight, shift = _float32(width, seed + 1), _float32(width, seed + 2)

    def run():
        if bias:
            return _forward_backward(lambda a, w, b: F.layer_norm(a, w, b), x, weight, shift)
        return _forward_backward(lambda a, w: F.layer_norm(a, w, None), x, weight)

    reference, compiled = _both(run)
    _assert_close(reference, compiled, rtol=1e-5, atol=1e-5)


ATTENTION_MASKS = {
    "causal": dict(is_causal=True),
    "none": {},
    "boolean (T, T)": "bool",
    "a row with every key hidden": "hidden row",
}


@pytest.mark.parametrize("mask_kind", ATTENTION_MASKS)
@given(t=st.sampled_from([1, 3, 15, 16, 17, 33, 64]), seed=st.integers(0, 2**16),
       leading=st.sampled_from([(2, 3), (2,), (2, 2, 2)]))  # (B, nh), one head, or more axes
def test_attention_compiled_matches_numpy(mask_kind, t, seed, leading, blocks):
    q, k, v = (_float32(leading + (t, 8), seed + i, scale=1.5) for i in range(3))
    options = ATTENTION_MASKS[mask_kind]
    if options in ("bool", "hidden row"):
        mask = np.random.default_rng(seed).random((t, t)) < 0.7
        mask[:, 0] = True
        if options == "hidden row":
            mask[t // 2] = False
        options = dict(mask=mask)
    reference, compiled = _both(lambda: _forward_backward(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **options), q, k, v))
    _assert_close(reference, compiled, rtol=1e-5, atol=1e-5)
    if mask_kind == "a row with every key hidden":  # weight 0 for every key: output 0, not NaN
        assert np.all(compiled[0][..., t // 2, :] == 0) and np.isfinite(compiled[0]).all()


def test_compiled_attention_keeps_no_t_by_t_weights_for_backward():
    q, k, v = (mt.tensor(_float32((2, 3, 64, 8), i), requires_grad=True) for i in range(3))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    saved = [a for a in out._ctx.saved if a is not None]
    assert max(a.size for a in saved) == 2 * 3 * 64 * 8  # q, k, v and a logsumexp per row
    assert not any(a.shape[-2:] == (64, 64) for a in saved)


@given(rows=st.integers(1, 20), width=st.integers(1, 80), seed=st.integers(0, 2**16))
def test_softmax_rows_and_again_from_logsumexp_against_float64(rows, width, seed):
    scores = _float32((rows, width), seed, scale=10.0)
    mask = np.where(np.random.default_rng(seed).random((3, width)) < 0.8, 0, -np.inf).astype(np.float32)
    mask[1] = -np.inf  # every third row entirely hidden: weight 0, not NaN
    masked = scores.astype(np.float64) + mask[np.arange(rows) % 3]
    row_max = masked.max(axis=1, keepdims=True)
    weights = np.exp(masked - np.where(np.isfinite(row_max), row_max, 0))
    totals = weights.sum(axis=1, keepdims=True)
    expected = weights / np.where(totals > 0, totals, 1)
    logsumexp = np.empty(rows, np.float32)
    again = scores.copy()
    kernels.softmax_rows(scores, mask, logsumexp)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-7)
    hidden = np.all(np.isneginf(mask[np.arange(rows) % 3]), axis=1)  # every third row, at least
    assert np.all(scores[hidden] == 0) and np.all(logsumexp[hidden] == np.inf)
    with np.errstate(divide="ignore"):
        expected_logsumexp = np.log(np.exp(masked).sum(axis=1))
    np.testing.assert_allclose(logsumexp[~hidden], expected_logsumexp[~hidden], rtol=1e-6)
    kernels.softmax_from_logsumexp(again, mask, logsumexp)  # what backward computes again
    np.testing.assert_allclose(again, expected, rtol=2e-6, atol=1e-7)
    assert np.all(again[hidden] == 0)


SOFTMAX_OPS = {
    "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, -1),
}


@pytest.mark.parametrize("op", SOFTMAX_OPS)
@given(shape=st.tuples(st.integers(1, 12), st.integers(1, 70)), seed=st.integers(0, 2**16))
def test_softmax_and_log_softmax_compiled_match_numpy(op, shape, seed, blocks):
    x = _float32((2,) + shape, seed, scale=10.0)  # (2, rows, C): rows of the last axis
    x[0, 0, 1::3] = -np.inf  # a key hidden by a mask gets weight exactly 0 (log: -inf)
    reference, compiled = _both(lambda: _forward_backward(SOFTMAX_OPS[op], x))
    # log-softmax's gradient g - softmax sum(g) cancels: its error scales with sum(|g|)
    _assert_close(reference, compiled, rtol=1e-5, atol=1e-6 * (1 + shape[1]))
    assert np.all(compiled[0][0, 0, 1::3] == (0 if op == "softmax" else -np.inf))


@pytest.mark.parametrize("op", SOFTMAX_OPS)
def test_softmax_compiled_gives_numpys_nan_for_inf_nan_and_hidden_rows(op):
    x = np.array([[np.nan, 1, 2], [-np.inf, -np.inf, -np.inf], [np.inf, 0, 1], [-np.inf, 0, 1]],
                 dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference, compiled = _both(lambda: SOFTMAX_OPS[op](mt.tensor(x)).data)
    assert np.isnan(compiled[:3]).all() and np.isnan(reference[:3]).all()
    np.testing.assert_allclose(compiled[3], reference[3], rtol=1e-6)


def test_softmax_over_another_axis_or_an_empty_one_takes_the_numpy_code():
    x = _float32((3, 4, 5), 0)
    reference, compiled = _both(lambda: _forward_backward(lambda a: F.softmax(a, 1), x))
    for a, b in zip(reference, compiled):
        np.testing.assert_array_equal(b, a)
    with pytest.raises(ValueError):  # NumPy's max of an empty row: the same error either way
        F.softmax(mt.tensor(np.zeros((2, 0), np.float32)), -1)


@given(rows=st.integers(1, 40), classes=st.integers(1, 70), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_compiled_matches_numpy(rows, classes, seed, reduction, blocks):
    logits = _float32((rows, classes), seed, scale=8.0)
    targets = np.random.default_rng(seed).integers(0, classes, rows)
    targets[::4] = -100  # ignored rows: loss 0 and no gradient

    def run():
        z = mt.tensor(logits, requires_grad=True)
        loss = F.cross_entropy(z, mt.tensor(targets), reduction=reduction)
        loss.backward(np.ones(loss.shape, np.float32))
        return [np.asarray(loss.data, np.float32).reshape(-1), z.grad]

    reference, compiled = _both(run)
    _assert_close(reference, compiled, rtol=1e-5, atol=1e-6)


def test_scatter_past_the_end_raises_instead_of_writing_outside_the_array():
    with pytest.raises(IndexError):  # the compiled loop checks no bounds: such ids go to np.add.at
        add_rows_at(np.zeros((3, 2), np.float32), np.asarray([0, 3]), np.ones((2, 2), np.float32))


def test_first_calls_from_several_threads_compile_once(monkeypatch):
    x = _float32((40, 50), 0)
    reference = _both(lambda: _forward_backward(F.gelu, x))[0]
    monkeypatch.setattr(kernels, "_compiled", {})  # as in a fresh process
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 0)
    previous = mt.get_num_threads()
    mt.set_num_threads(3)
    try:
        compiled = _forward_backward(F.gelu, x)  # 32 blocks: three threads start compiling at once
    finally:
        mt.set_num_threads(previous)
    assert set(kernels._compiled) == {kernels.gelu_forward.python, kernels.gelu_backward.python}
    _assert_close(reference, compiled, rtol=1e-6, atol=2e-7)


def test_use_compiled_only_for_float32_numpy_arrays():
    previous = mt.get_kernels()
    try:
        mt.set_kernels("fast")
        assert kernels.use_compiled(np.zeros(3, np.float32), None)
        assert not kernels.use_compiled(np.zeros(3, np.float64))  # gradcheck takes the NumPy code
        mt.set_kernels("reference")
        assert not kernels.use_compiled(np.zeros(3, np.float32))
    finally:
        mt.set_kernels(previous)


def test_without_numba_every_op_takes_the_numpy_code(monkeypatch):
    monkeypatch.setattr(kernels, "_numba", False)
    monkeypatch.setattr(kernels, "_compiled", {})
    assert not kernels.use_compiled(np.zeros(3, np.float32))
    x = mt.tensor(np.linspace(-3, 3, 12, dtype=np.float32), requires_grad=True)
    F.gelu(x).sum().backward()
    assert np.isfinite(x.grad).all()
    with pytest.raises(RuntimeError, match="gelu_forward: compiled kernels need numba"):
        kernels.gelu_forward(*(np.zeros(3, np.float32) for _ in range(3)))


def test_kernel_choice_is_validated(monkeypatch):
    with pytest.raises(ValueError, match=r"set_kernels: expected one of fast, reference, got 'numpy'"):
        mt.set_kernels("numpy")
    monkeypatch.setenv("MINITRANSFORMER_KERNELS", "c")
    with pytest.raises(ValueError, match=r"MINITRANSFORMER_KERNELS is 'c'; expected one of fast, reference"):
        dispatch._default_choice()
    monkeypatch.setenv("MINITRANSFORMER_KERNELS", "reference")
    assert dispatch._default_choice() == "reference"
