"""Every fast implementation (minitransformer/fast/) against the reference op it replaces.

Each registration in ``dispatch.registrations()`` has a case here; ``test_every_registration_has
_a_parity_case`` fails for one that has not. A case runs the op on the same float32 inputs with
``set_kernels("reference")`` and ``"fast"`` and compares the output and every input gradient:
over hypothesis shapes, and over NaN, +-inf, rows of all -inf, empty and 0-d inputs. The fast
kernels add a row in another order (SIMD lanes) and write exp out as a polynomial, so they
agree to float32 rounding, within the tolerance each case states.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import dispatch
from minitransformer.fast.cpu import kernels

from .test_cuda_parity import CUDA_PARITY_CASES

pytestmark = pytest.mark.skipif(not kernels.compiled_available(), reason="numba is not installed")

FLOAT32 = st.floats(-30, 30, width=32)


def rows_shapes(min_dims=1):
    return hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=40)


def run_both(op, *arrays, grad_seed=0, dtype=np.float32):
    """[(output, input gradients), ...] of op on float32 tensors, reference first, then fast,
    and which implementation ran each time (the type of the graph node)."""
    results = []
    for choice in ("reference", "fast"):
        previous = mt.get_kernels()
        mt.set_kernels(choice)
        try:
            tensors = [mt.tensor(np.array(a, dtype=dtype), dtype=dtype, requires_grad=True) for a in arrays]
            out = op(*tensors)
            upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(dtype)
            out.backward(mt.tensor(upstream))
            results.append((type(out._ctx), out.numpy(), [t.grad for t in tensors]))
        finally:
            mt.set_kernels(previous)
    return results


def assert_parity(op, *arrays, rtol, atol, expect_fast=True, dtype=np.float32):
    (reference_type, reference_out, reference_grads), (fast_type, fast_out, fast_grads) = run_both(
        op, *arrays, dtype=dtype)
    if expect_fast:  # the case really reached the fast implementation
        assert fast_type is not reference_type and issubclass(fast_type, reference_type)
    for fast_array, reference_array in zip([fast_out, *fast_grads], [reference_out, *reference_grads]):
        # atol is relative to the array's scale: a sum in another order rounds by a few ulp of
        # its largest terms, not of the (maybe tiny) result
        scale = max(1.0, float(np.abs(reference_array[np.isfinite(reference_array)]).max(initial=0)))
        np.testing.assert_allclose(fast_array, reference_array, rtol=rtol, atol=atol * scale)


def special_rows(width: int) -> np.ndarray:
    """Rows with NaN, +inf, -inf, all -inf and ordinary values, (5, width)."""
    rows = np.random.default_rng(1).standard_normal((5, width)).astype(np.float32)
    rows[0, 0] = np.nan
    rows[1, -1] = np.inf
    rows[2, 0] = -np.inf
    rows[3, :] = -np.inf
    return rows


# --- layer norm: cpu.layer_norm ----------------------------------------------------------------

LAYER_NORM_TOLERANCE = dict(rtol=2e-4, atol=2e-5)  # two row sums in another order, each way


@given(shape=rows_shapes(), data=st.data())
def test_layer_norm(shape, data):
    # a ramp keeps rows from being constant: see test_layer_norm_constant_rows
    x = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32)) + np.arange(shape[-1], dtype=np.float32)
    weight, bias = (data.draw(hnp.arrays(np.float32, shape[-1:], elements=FLOAT32)) for _ in range(2))
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), x, weight, bias, **LAYER_NORM_TOLERANCE)
    assert_parity(lambda x, w: F.layer_norm(x, w), x, weight, **LAYER_NORM_TOLERANCE)


def test_layer_norm_special_values():
    x = special_rows(24)
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), x, np.ones(24), np.zeros(24), **LAYER_NORM_TOLERANCE)


def test_layer_norm_constant_rows():
    """A constant row has var 0, so x - mean is multiplied by 1/sqrt(eps) = 316: the mean's
    rounding in another summation order (one ulp of the value, 13 * 6e-8 here) comes out
    316 times larger. The tolerance says so."""
    x = np.full((4, 20), 13.0)
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), x, np.ones(20), np.zeros(20),
                  rtol=0, atol=13 * 1.2e-7 / np.sqrt(1e-5))


def test_layer_norm_empty_and_one_feature():
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), np.zeros((0, 8)), np.ones(8), np.zeros(8),
                  **LAYER_NORM_TOLERANCE)
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), np.full((3, 1), 2.0), np.ones(1), np.ones(1),
                  **LAYER_NORM_TOLERANCE)
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), np.zeros((3, 0)), np.ones(0), np.zeros(0),
                  **LAYER_NORM_TOLERANCE)  # rows of no features: empty outputs, as the reference


# --- softmax and log-softmax over the last axis: cpu.softmax, cpu.log_softmax ------------------

SOFTMAX_TOLERANCE = dict(rtol=2e-5, atol=2e-6)  # exp_float32 within 1.1 ulp; sums in lanes
SOFTMAXES = {"softmax": F.softmax, "log_softmax": F.log_softmax}


@pytest.mark.parametrize("name", SOFTMAXES)
@given(shape=rows_shapes(), data=st.data())
def test_softmaxes(name, shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32))
    assert_parity(SOFTMAXES[name], x, **SOFTMAX_TOLERANCE)


@pytest.mark.parametrize("name", SOFTMAXES)
@pytest.mark.parametrize("width", [1, 15, 16, 17, 100])  # shorter and longer than the 16 lanes
def test_softmaxes_special_values(name, width):
    assert_parity(SOFTMAXES[name], special_rows(width), **SOFTMAX_TOLERANCE)


@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmaxes_off_the_last_axis_empty_and_0d_take_the_reference(name):
    op = SOFTMAXES[name]
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    assert_parity(lambda t: op(t, axis=0), x, expect_fast=False, **SOFTMAX_TOLERANCE)
    with pytest.raises(ValueError):  # NumPy's max of an empty row raises, on both paths
        run_both(op, np.zeros((3, 0)))
    assert_parity(op, np.zeros((0, 5)), expect_fast=False, **SOFTMAX_TOLERANCE)
    assert_parity(lambda t: op(t, axis=0), np.float32(1.5), expect_fast=False, **SOFTMAX_TOLERANCE)


# --- cross-entropy: cpu.cross_entropy ----------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(n=st.integers(1, 30), c=st.integers(1, 40), data=st.data())
def test_cross_entropy(reduction, n, c, data):
    logits = data.draw(hnp.arrays(np.float32, (n, c), elements=FLOAT32))
    targets = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-1, c - 1)))  # -1: ignored
    assert_parity(lambda z: F.cross_entropy(z, targets, ignore_index=-1, reduction=reduction), logits,
                  **SOFTMAX_TOLERANCE)


def test_cross_entropy_special_values_and_empty():
    logits = special_rows(20)
    targets = np.array([3, 2, 5, 1, 0])
    assert_parity(lambda z: F.cross_entropy(z, targets, reduction="none"), logits, **SOFTMAX_TOLERANCE)
    assert_parity(lambda z: F.cross_entropy(z, np.zeros((2, 0), dtype=np.int64)), np.zeros((2, 0, 4)),
                  expect_fast=False, **SOFTMAX_TOLERANCE)


# --- GELU: cpu.gelu ----------------------------------------------------------------------------

GELU_TOLERANCE = dict(rtol=1e-6, atol=3e-7)  # the kernels' erf is within 1.8e-7 of SciPy's


@given(shape=rows_shapes(min_dims=0), data=st.data())
def test_gelu(shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=st.floats(-12, 12, width=32)))
    assert_parity(F.gelu, x, expect_fast=x.ndim > 0, **GELU_TOLERANCE)  # 0-d: also the kernels
    assert_parity(lambda t: F.gelu(t, approximate="tanh"), x, expect_fast=False, **GELU_TOLERANCE)


def test_gelu_special_values_empty_and_0d():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 5.0, -5.0], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        (_, reference, reference_grads), (_, fast, fast_grads) = run_both(F.gelu, x)
    assert np.isnan(fast[0]) and np.isnan(reference[0]) and fast[1] == reference[1] == np.inf
    np.testing.assert_allclose(fast[3:], reference[3:], **GELU_TOLERANCE)
    np.testing.assert_allclose(fast_grads[0][3:], reference_grads[0][3:], **GELU_TOLERANCE)
    assert_parity(F.gelu, np.zeros((0, 3)), **GELU_TOLERANCE)
    assert_parity(F.gelu, np.float32(0.7), **GELU_TOLERANCE)


# --- attention: cpu.attention --------------------------------------------------------------------

ATTENTION_TOLERANCE = dict(rtol=5e-5, atol=5e-5)  # softmax in lanes, exp as a polynomial, products in other blocks


def attention_case(draw, leading, t_query, t_key, d):
    q = draw(hnp.arrays(np.float32, leading + (t_query, d), elements=st.floats(-3, 3, width=32)))
    k, v = (draw(hnp.arrays(np.float32, leading + (t_key, d), elements=st.floats(-3, 3, width=32)))
            for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("mask", ["none", "causal", "boolean (Tq, Tk)", "boolean (B, 1, Tq, Tk)",
                                  "additive (Tq, Tk)"])
@given(leading=st.sampled_from([(), (2,), (2, 3)]), t=st.integers(1, 20), d=st.integers(1, 9),
       data=st.data())
def test_attention(mask, leading, t, d, data):
    q, k, v = attention_case(data.draw, leading, t, t, d)
    rng = np.random.default_rng(t)
    options = {"none": {}, "causal": dict(is_causal=True)}.get(mask)
    if options is None:
        per_batch = leading[:1] + (1,) * (len(leading) - 1) + (t, t)  # (B, 1, Tq, Tk) for 4-d
        shape = (t, t) if "(Tq, Tk)" in mask else per_batch
        allowed = rng.random(shape) < 0.7
        allowed[..., 0] = True
        options = dict(mask=allowed if "boolean" in mask else np.where(allowed, 0, -3).astype(np.float32))
    assert_parity(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **options), q, k, v,
                  **ATTENTION_TOLERANCE)


def test_attention_hidden_rows_nan_and_dropout():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 2, 9, 4)).astype(np.float32) for _ in range(3))
    allowed = rng.random((9, 9)) < 0.7
    allowed[4] = False  # every key hidden for query 4: weight 0, output 0
    op = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, mask=allowed)
    (_, reference, _), (_, fast, _) = run_both(op, q, k, v)
    assert np.all(fast[..., 4, :] == 0) and np.all(reference[..., 4, :] == 0)
    assert_parity(op, q, k, v, **ATTENTION_TOLERANCE)
    q_nan = q.copy()
    q_nan[0, 0, 0, 0] = np.nan  # a NaN query poisons its own row only, on both paths
    with np.errstate(invalid="ignore"):
        (_, reference, _), (_, fast, _) = run_both(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), q_nan, k, v)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    assert np.isnan(fast[0, 0, 0]).all() and not np.isnan(fast[0, 0, 1:]).any()

    def with_dropout(a, b, c):  # the same seed: the same keep mask on both paths
        mt.manual_seed(5)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3, is_causal=True)

    assert_parity(with_dropout, q, k, v, **ATTENTION_TOLERANCE)


def test_attention_float64_and_long_sequences():
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((1, 2, 300, 8)) for _ in range(3))
    op = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True)
    assert_parity(op, q, k, v, **ATTENTION_TOLERANCE)  # float32, compiled: in query chunks
    assert_parity(op, q, k, v, dtype=np.float64, rtol=1e-12, atol=1e-12)  # NumPy in blocks


# --- the linear layer: cpu.linear ----------------------------------------------------------------

@given(n=st.integers(1, 30), fan_in=st.integers(1, 20), fan_out=st.integers(1, 20), data=st.data())
def test_linear(n, fan_in, fan_out, data):
    floats = st.floats(-5, 5, width=32)
    x = data.draw(hnp.arrays(np.float32, (2, n, fan_in), elements=floats))
    weight = data.draw(hnp.arrays(np.float32, (fan_out, fan_in), elements=floats))
    bias = data.draw(hnp.arrays(np.float32, (fan_out,), elements=floats))
    assert_parity(F.linear, x, weight, bias, rtol=1e-5, atol=1e-5)
    assert_parity(F.linear, x, weight, rtol=1e-5, atol=1e-5)


def test_linear_special_values_and_empty():
    x = special_rows(6)
    weight = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        (_, reference, reference_grads), (_, fast, fast_grads) = run_both(F.linear, x, weight, np.ones(3))
    np.testing.assert_array_equal(fast, reference)  # the same product, then the same one addition
    for a, b in zip(fast_grads, reference_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert_parity(F.linear, np.zeros((0, 4)), np.ones((3, 4)), np.ones(3), rtol=0, atol=0)


# --- the Llama-style decoder's ops: cpu.silu, cpu.rms_norm, cpu.rotary_embedding -------------

SILU_TOLERANCE = dict(rtol=1e-6, atol=5e-7)  # exp_float32 within 1.1 ulp; 1 - s then scales it by x


@given(shape=rows_shapes(min_dims=0), data=st.data())
def test_silu(shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=st.floats(-100, 100, width=32)))
    assert_parity(F.silu, x, **SILU_TOLERANCE)  # 0-d too: the kernels take any shape


def test_silu_special_values_empty_and_0d():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 90.0, -90.0, -200.0], dtype=np.float32)
    with np.errstate(invalid="ignore"):  # silu(-inf) = -inf * 0 is NaN, on both paths
        (_, reference, reference_grads), (_, fast, fast_grads) = run_both(F.silu, x)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    np.testing.assert_array_equal(np.isnan(fast_grads[0]), np.isnan(reference_grads[0]))
    assert fast[1] == reference[1] == np.inf
    np.testing.assert_allclose(fast[3:], reference[3:], **SILU_TOLERANCE)
    np.testing.assert_allclose(fast_grads[0][3:], reference_grads[0][3:], **SILU_TOLERANCE)
    assert_parity(F.silu, np.zeros((0, 3)), **SILU_TOLERANCE)
    assert_parity(F.silu, np.float32(-0.7), **SILU_TOLERANCE)


@given(shape=rows_shapes(min_dims=0), data=st.data())
def test_swiglu(shape, data):
    gate = data.draw(hnp.arrays(np.float32, shape, elements=st.floats(-100, 100, width=32)))
    up = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32))
    assert_parity(F.swiglu, gate, up, **SILU_TOLERANCE)


def test_swiglu_special_values_one_gradient_empty_and_0d():
    gate = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 90.0, -90.0, -200.0], dtype=np.float32)
    up = np.array([1.0, 2.0, 3.0, np.inf, 1.0, np.nan, -1.0, 2.0, 0.5], dtype=np.float32)
    with np.errstate(invalid="ignore"):  # -inf * 0 and 0 * inf are NaN, on both paths
        (_, reference, reference_grads), (_, fast, fast_grads) = run_both(F.swiglu, gate, up)
    for fast_array, reference_array in zip([fast, *fast_grads], [reference, *reference_grads]):
        np.testing.assert_array_equal(np.isnan(fast_array), np.isnan(reference_array))
        finite = np.isfinite(reference_array)
        np.testing.assert_array_equal(fast_array[~finite], reference_array[~finite])
        np.testing.assert_allclose(fast_array[finite], reference_array[finite], **SILU_TOLERANCE)
    up_constant = lambda a: F.swiglu(a, mt.tensor(np.full((2, 5), 3.0, np.float32)))  # no dL/db wanted
    assert_parity(up_constant, np.linspace(-4, 4, 10).reshape(2, 5), **SILU_TOLERANCE)
    assert_parity(F.swiglu, np.zeros((0, 3)), np.zeros((0, 3)), **SILU_TOLERANCE)
    assert_parity(F.swiglu, np.float32(-0.7), np.float32(2.0), **SILU_TOLERANCE)


RMS_NORM_TOLERANCE = dict(rtol=2e-4, atol=2e-5)  # a row's sums in another order (SIMD lanes)


@given(shape=rows_shapes(), eps=st.sampled_from([1e-6, 1e-5, 0.1]), data=st.data())
def test_rms_norm(shape, eps, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32)) + 1  # + 1: no all-zero rows
    weight = data.draw(hnp.arrays(np.float32, shape[-1:], elements=FLOAT32))
    assert_parity(lambda x, w: F.rms_norm(x, w, eps=eps), x, weight, **RMS_NORM_TOLERANCE)
    assert_parity(lambda x: F.rms_norm(x, eps=eps), x, **RMS_NORM_TOLERANCE)  # weight of ones


def test_rms_norm_special_values_zero_rows_empty_and_0d():
    with np.errstate(invalid="ignore"):  # inf / inf in a row with an inf: NaN on both paths
        assert_parity(lambda x, w: F.rms_norm(x, w), special_rows(24), np.ones(24), **RMS_NORM_TOLERANCE)
    zeros = np.zeros((3, 7))  # rms 0: x_hat = 0 * 1/sqrt(eps), a finite 0
    assert_parity(lambda x, w: F.rms_norm(x, w), zeros, np.ones(7), **RMS_NORM_TOLERANCE)
    assert_parity(lambda x, w: F.rms_norm(x, w), np.zeros((0, 8)), np.ones(8), **RMS_NORM_TOLERANCE)
    assert_parity(lambda x, w: F.rms_norm(x, w), np.full((3, 1), -2.0), np.ones(1), **RMS_NORM_TOLERANCE)
    for choice in ("reference", "fast"):  # 0-d has no axis to normalise: the same error on both
        mt.set_kernels(choice)
        try:
            with pytest.raises(ValueError, match="rms_norm: .* at least one axis"):
                F.rms_norm(mt.tensor(np.float32(2.0)), mt.tensor(np.ones(1, np.float32)))
        finally:
            mt.set_kernels("fast")


ROTARY_EXACT = dict(rtol=0, atol=0)  # the reference's float32 operations, in its order


@pytest.mark.parametrize("interleaved", [False, True])
@given(leading=st.sampled_from([(), (2,), (2, 3), (2, 2, 3)]), t=st.integers(1, 12),
       half=st.integers(1, 8), start=st.integers(0, 5000), data=st.data())
def test_rotary_embedding(interleaved, leading, t, half, start, data):
    x = data.draw(hnp.arrays(np.float32, leading + (t, 2 * half), elements=FLOAT32))
    positions = np.arange(start, start + t)  # a cache's offset: positions need not start at 0
    assert_parity(lambda a: F.rotary_embedding(a, positions, interleaved=interleaved), x, **ROTARY_EXACT)


def test_rotary_embedding_strided_batched_positions_special_values_and_empty():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 3, 8)).astype(np.float32)  # (B, T, nh, hs), as the model's q
    heads_first = lambda a: F.rotary_embedding(a.transpose(0, 2, 1, 3))  # a strided (B, nh, T, hs) view
    assert_parity(heads_first, x, **ROTARY_EXACT)
    per_sequence = np.array([np.arange(5), np.arange(7, 12)])  # (B, T): the reference takes it
    assert_parity(lambda a: F.rotary_embedding(a, per_sequence), x.transpose(0, 2, 1, 3),
                  expect_fast=False, **ROTARY_EXACT)
    special = special_rows(8).reshape(1, 5, 8)  # NaN, +-inf: inf * 0 = NaN where the reference has it
    with np.errstate(invalid="ignore"):
        assert_parity(lambda a: F.rotary_embedding(a, interleaved=True), special, **ROTARY_EXACT)
        assert_parity(F.rotary_embedding, special, **ROTARY_EXACT)
    assert_parity(F.rotary_embedding, np.zeros((0, 3, 4)), **ROTARY_EXACT)  # no sequences
    assert_parity(F.rotary_embedding, np.zeros((2, 0, 4)), **ROTARY_EXACT)  # no positions


# --- the plain hot spots: cpu.add_gradients, cpu.adam_update, cpu.add_rows_at, cpu.squared_norm ----

def both_choices(run):
    """run() with the reference, then with the fast layer."""
    previous = mt.get_kernels()
    try:
        return [(mt.set_kernels(choice), run())[1] for choice in ("reference", "fast")]
    finally:
        mt.set_kernels(previous)


def test_add_gradients_is_bitwise_a_plus_b(tiny_blocks):  # small arrays, still in blocks
    from minitransformer.autograd import add_gradients

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a, b = (rng.standard_normal((50, 33)).astype(dtype) for _ in range(2))
        a[0, 0], b[1, 1] = np.nan, np.inf
        reference, fast = both_choices(lambda: add_gradients(a, b))
        np.testing.assert_array_equal(fast, reference)
        assert fast.dtype == dtype
    # a tensor used twice: the engine sums its two gradients through add_gradients
    x = rng.standard_normal((40, 40)).astype(np.float32)
    assert_parity(lambda t: t * t + t, x, expect_fast=False, rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", ["Adam", "Adam + L2", "AdamW"])
def test_adam_update_is_bitwise_the_reference(optimizer, blocks):
    from minitransformer import optim

    def run():
        rng = np.random.default_rng(0)
        params = [mt.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
                  for shape in [(30, 20), (7,), (), (0, 3), (40, 16)]]
        params[-1].data = np.asfortranarray(params[-1].data)  # not C-contiguous: the reference
        cls, decay = {"Adam": (optim.Adam, 0.0), "Adam + L2": (optim.Adam, 0.1),
                      "AdamW": (optim.AdamW, 0.1)}[optimizer]
        opt = cls(params, lr=1e-2, weight_decay=decay)
        for step in range(3):
            for p in params:
                p.grad = rng.standard_normal(p.shape).astype(np.float32)
                if step == 1 and p.size > 2:
                    p.grad.flat[:2] = [np.inf, np.nan]
            opt.step()
        return [p.data for p in params] + [opt.state[id(p)]["exp_avg_sq"] for p in params]

    with np.errstate(invalid="ignore"):
        reference, fast = both_choices(run)
    for a, b in zip(reference, fast):
        np.testing.assert_array_equal(b, a)


@given(ids=hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, 5)), width=st.integers(1, 30))
def test_add_rows_at_is_bitwise_add_at(ids, width):
    from minitransformer.ops.embedding import add_rows_at

    values = np.random.default_rng(len(ids)).standard_normal((len(ids), width)).astype(np.float32)
    values[::5, 0] = np.nan

    def run():
        table = np.zeros((6, width), np.float32)
        add_rows_at(table, ids, values)
        return table

    reference, fast = both_choices(run)
    np.testing.assert_array_equal(fast, reference)


def test_squared_norm():
    from minitransformer.optim.clip import squared_norm

    rng = np.random.default_rng(0)
    for g in (rng.standard_normal((30, 7)).astype(np.float32), rng.standard_normal(5),
              np.zeros((0, 4), np.float32), np.float32(3.0), np.array([np.inf, 1], np.float32)):
        reference, fast = both_choices(lambda: squared_norm(g))
        np.testing.assert_allclose(fast, reference, rtol=1e-5)


# --- every registration has its case -----------------------------------------------------------

PARITY_CASES = {
    "cpu.layer_norm": (test_layer_norm, test_layer_norm_special_values, test_layer_norm_constant_rows,
                       test_layer_norm_empty_and_one_feature),
    "cpu.softmax": (test_softmaxes, test_softmaxes_special_values),
    "cpu.log_softmax": (test_softmaxes, test_softmaxes_special_values),
    "cpu.cross_entropy": (test_cross_entropy, test_cross_entropy_special_values_and_empty),
    "cpu.gelu": (test_gelu, test_gelu_special_values_empty_and_0d),
    "cpu.attention": (test_attention, test_attention_hidden_rows_nan_and_dropout,
                      test_attention_float64_and_long_sequences),
    "cpu.linear": (test_linear, test_linear_special_values_and_empty),
    "cpu.silu": (test_silu, test_silu_special_values_empty_and_0d),
    "cpu.swiglu": (test_swiglu, test_swiglu_special_values_one_gradient_empty_and_0d),
    "cpu.rms_norm": (test_rms_norm, test_rms_norm_special_values_zero_rows_empty_and_0d),
    "cpu.rotary_embedding": (test_rotary_embedding,
                             test_rotary_embedding_strided_batched_positions_special_values_and_empty),
    "cpu.add_gradients": (test_add_gradients_is_bitwise_a_plus_b,),
    "cpu.adam_update": (test_adam_update_is_bitwise_the_reference,),
    "cpu.add_rows_at": (test_add_rows_at_is_bitwise_add_at,),
    "cpu.squared_norm": (test_squared_norm,),
}


PARITY_CASES.update(CUDA_PARITY_CASES)  # tests/fast/test_cuda_parity.py, marked gpu


def test_every_registration_has_a_parity_case():
    registered = {entry.name for entry in dispatch.registrations()}
    assert registered - set(PARITY_CASES) == set(), "fast implementations without a parity case"
    assert set(PARITY_CASES) - registered == set(), "parity cases for implementations no longer registered"


def test_reference_choice_turns_every_registration_off():
    x = mt.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    previous = mt.get_kernels()
    try:
        mt.set_kernels("reference")
        assert type(F.softmax(x)._ctx) is mt.ops.softmax.Softmax
        mt.set_kernels("fast")
        assert type(F.softmax(x)._ctx) is not mt.ops.softmax.Softmax
    finally:
        mt.set_kernels(previous)
