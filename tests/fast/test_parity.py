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
from minitransformer import dispatch, kernels

pytestmark = pytest.mark.skipif(not kernels.compiled_available(), reason="numba is not installed")

FLOAT32 = st.floats(-30, 30, width=32)


def rows_shapes(min_dims=1):
    return hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=40)


def run_both(op, *arrays, grad_seed=0):
    """[(output, input gradients), ...] of op on float32 tensors, reference first, then fast,
    and which implementation ran each time (the type of the graph node)."""
    results = []
    for choice in ("reference", "fast"):
        previous = mt.get_kernels()
        mt.set_kernels(choice)
        try:
            tensors = [mt.tensor(np.array(a, dtype=np.float32), requires_grad=True) for a in arrays]
            out = op(*tensors)
            upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(np.float32)
            out.backward(mt.tensor(upstream))
            results.append((type(out._ctx), out.numpy(), [t.grad for t in tensors]))
        finally:
            mt.set_kernels(previous)
    return results


def assert_parity(op, *arrays, rtol, atol, expect_fast=True):
    (reference_type, reference_out, reference_grads), (fast_type, fast_out, fast_grads) = run_both(op, *arrays)
    if expect_fast:  # the case really reached the fast implementation
        assert fast_type is not reference_type and issubclass(fast_type, reference_type)
    np.testing.assert_allclose(fast_out, reference_out, rtol=rtol, atol=atol)
    for fast_grad, reference_grad in zip(fast_grads, reference_grads):
        np.testing.assert_allclose(fast_grad, reference_grad, rtol=rtol, atol=atol)


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


# --- every registration has its case -----------------------------------------------------------

PARITY_CASES = {
    "cpu.layer_norm": (test_layer_norm, test_layer_norm_special_values, test_layer_norm_constant_rows,
                       test_layer_norm_empty_and_one_feature),
    "cpu.softmax": (test_softmaxes, test_softmaxes_special_values),
    "cpu.log_softmax": (test_softmaxes, test_softmaxes_special_values),
    "cpu.cross_entropy": (test_cross_entropy, test_cross_entropy_special_values_and_empty),
}


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
