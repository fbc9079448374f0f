"""Every CUDA implementation (minitransformer/fast/cuda/) against the reference op on the
same device, output and every input gradient, and the kernels off unless opted in.

Marked ``gpu``. On a GPU they run the CUDA code; in CI they run on the emulated device
(MINITRANSFORMER_EMULATE_CUDA=1), where each kernel is a Python fallback that follows its
plan (testing/cuda_emulations.py), so what is checked there is everything around the CUDA
code: the registration's conditions, shapes, dtypes, contiguity, the kernels' scalar types and
launch sizes, and what forward saves for backward. ``CUDA_PARITY_CASES`` joins
tests/fast/test_parity.py's check that every registration has a case.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend, dispatch
from minitransformer.fast.cuda import OPT_IN, kernels_enabled

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not backend.cupy_available(),
                                                  reason="no CuPy or no CUDA GPU on this machine")]

FLOAT32 = st.floats(-30, 30, width=32)
FEW = settings(max_examples=12)  # each example runs both paths on the device: keep CI short


@pytest.fixture(autouse=True)
def _opted_in(monkeypatch):
    monkeypatch.setenv(OPT_IN, "1")


def rows_shapes(min_dims=1, max_side=40):
    return hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=max_side)


def run_both(op, *arrays, dtype=np.float32, grad_seed=0):
    """[(node type, output, input gradients)] of op on device tensors: reference, then fast."""
    results = []
    for choice in ("reference", "fast"):
        previous = mt.get_kernels()
        mt.set_kernels(choice)
        try:
            tensors = [mt.tensor(np.array(a, dtype=dtype), dtype=dtype, requires_grad=True, device="cuda")
                       for a in arrays]
            out = op(*tensors)
            assert backend.device_of(out.data) == "cuda"
            upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(dtype)
            out.backward(mt.tensor(upstream, device="cuda"))
            results.append((type(out._ctx), out.numpy(), [backend.to_numpy(t.grad) for t in tensors]))
        finally:
            mt.set_kernels(previous)
    return results


def assert_parity(op, *arrays, rtol, atol, expect_fast=True, dtype=np.float32):
    (reference_type, reference_out, reference_grads), (fast_type, fast_out, fast_grads) = run_both(
        op, *arrays, dtype=dtype)
    if expect_fast:
        assert fast_type is not reference_type and issubclass(fast_type, reference_type)
        assert fast_type.__module__.startswith("minitransformer.fast.cuda")
    else:
        assert fast_type is reference_type
    for fast_array, reference_array in zip([fast_out, *fast_grads], [reference_out, *reference_grads]):
        scale = max(1.0, float(np.abs(reference_array[np.isfinite(reference_array)]).max(initial=0)))
        np.testing.assert_allclose(fast_array, reference_array, rtol=rtol, atol=atol * scale)


def special_rows(width: int) -> np.ndarray:
    rows = np.random.default_rng(1).standard_normal((5, width)).astype(np.float32)
    rows[0, 0] = np.nan
    rows[1, -1] = np.inf
    rows[2, 0] = -np.inf
    rows[3, :] = -np.inf
    return rows


ROW_WIDTHS = [1, 255, 256, 257, 700]  # narrower and wider than a block of 256 threads


# --- the opt-in --------------------------------------------------------------------------------

def test_kernels_are_off_unless_opted_in(monkeypatch):
    x = mt.tensor(np.ones((2, 3), np.float32), device="cuda", requires_grad=True)
    monkeypatch.delenv(OPT_IN)
    assert not kernels_enabled()
    assert type(F.softmax(x)._ctx) is mt.ops.softmax.Softmax  # the reference, on CuPy
    monkeypatch.setenv(OPT_IN, "1")
    assert type(F.softmax(x)._ctx).__name__ == "CudaSoftmax"
    monkeypatch.setenv(OPT_IN, "yes")
    with pytest.raises(ValueError, match="MINITRANSFORMER_CUDA_KERNELS is 'yes'; expected 0 or 1"):
        kernels_enabled()


# --- softmax, log-softmax, cross-entropy ---------------------------------------------------------

SOFTMAX_TOLERANCE = dict(rtol=2e-5, atol=2e-6)
SOFTMAXES = {"softmax": F.softmax, "log_softmax": F.log_softmax}


@pytest.mark.parametrize("name", SOFTMAXES)
@FEW
@given(shape=rows_shapes(), data=st.data())
def test_softmaxes(name, shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32))
    assert_parity(SOFTMAXES[name], x, **SOFTMAX_TOLERANCE)


@pytest.mark.parametrize("name", SOFTMAXES)
@pytest.mark.parametrize("width", ROW_WIDTHS)
def test_softmaxes_special_values_and_wide_rows(name, width):
    with np.errstate(invalid="ignore"):
        assert_parity(SOFTMAXES[name], special_rows(width), **SOFTMAX_TOLERANCE)


@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmaxes_off_the_last_axis_empty_and_float64_take_the_reference(name):
    op = SOFTMAXES[name]
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    assert_parity(lambda t: op(t, axis=0), x, expect_fast=False, **SOFTMAX_TOLERANCE)
    assert_parity(op, np.zeros((0, 5)), expect_fast=False, **SOFTMAX_TOLERANCE)
    assert_parity(op, x, dtype=np.float64, expect_fast=False, rtol=1e-12, atol=1e-12)
    # a transposed (not contiguous) input is copied into rows first
    assert_parity(lambda t: op(t.T), x, **SOFTMAX_TOLERANCE)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@FEW
@given(n=st.integers(1, 30), c=st.integers(1, 300), data=st.data())
def test_cross_entropy(reduction, n, c, data):
    logits = data.draw(hnp.arrays(np.float32, (n, c), elements=FLOAT32))
    targets = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-1, c - 1)))
    device_targets = backend.to_device(targets, "cuda")
    assert_parity(lambda z: F.cross_entropy(z, device_targets, ignore_index=-1, reduction=reduction),
                  logits, **SOFTMAX_TOLERANCE)


def test_cross_entropy_special_values_and_3d():
    targets = backend.to_device(np.array([3, 2, 5, 1, 0]), "cuda")
    with np.errstate(invalid="ignore"):
        assert_parity(lambda z: F.cross_entropy(z, targets, reduction="none"), special_rows(20),
                      **SOFTMAX_TOLERANCE)
    logits = np.random.default_rng(3).standard_normal((2, 7, 65)).astype(np.float32)
    targets = backend.to_device(np.random.default_rng(4).integers(0, 65, (2, 7)), "cuda")
    assert_parity(lambda z: F.cross_entropy(z, targets), logits, **SOFTMAX_TOLERANCE)


# --- layer norm ----------------------------------------------------------------------------------

LAYER_NORM_TOLERANCE = dict(rtol=2e-4, atol=2e-5)


@FEW
@given(shape=rows_shapes(max_side=300), data=st.data())
def test_layer_norm(shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=FLOAT32)) + np.arange(shape[-1], dtype=np.float32)
    weight, bias = (data.draw(hnp.arrays(np.float32, shape[-1:], elements=FLOAT32)) for _ in range(2))
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), x, weight, bias, **LAYER_NORM_TOLERANCE)
    assert_parity(lambda x, w: F.layer_norm(x, w), x, weight, **LAYER_NORM_TOLERANCE)


@pytest.mark.parametrize("width", ROW_WIDTHS)
def test_layer_norm_special_values_wide_and_constant_rows(width):
    with np.errstate(invalid="ignore"):
        assert_parity(lambda x, w, b: F.layer_norm(x, w, b), special_rows(width), np.ones(width),
                      np.zeros(width), **LAYER_NORM_TOLERANCE)
    x = np.full((4, width), 13.0)  # var 0: x - mean's rounding times 1/sqrt(eps), as on the CPU
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), x, np.ones(width), np.zeros(width),
                  rtol=0, atol=13 * 1.2e-7 / np.sqrt(1e-5))


def test_layer_norm_empty_takes_the_reference():
    assert_parity(lambda x, w, b: F.layer_norm(x, w, b), np.zeros((0, 8)), np.ones(8), np.zeros(8),
                  expect_fast=False, **LAYER_NORM_TOLERANCE)


# --- GELU ----------------------------------------------------------------------------------------

GELU_TOLERANCE = dict(rtol=2e-6, atol=5e-7)  # CUDA's erff within 2 ulp


@FEW
@given(shape=rows_shapes(min_dims=0), data=st.data())
def test_gelu(shape, data):
    x = data.draw(hnp.arrays(np.float32, shape, elements=st.floats(-12, 12, width=32)))
    assert_parity(F.gelu, x, **GELU_TOLERANCE)
    assert_parity(lambda t: F.gelu(t, approximate="tanh"), x, expect_fast=False, **GELU_TOLERANCE)


def test_gelu_special_values_and_strided_input():
    x = np.array([np.inf, -np.inf, 0.0, -0.0, 1e-30, 5.0, -5.0], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        (_, reference, _), (_, fast, _) = run_both(F.gelu, x)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    np.testing.assert_allclose(fast[2:], reference[2:], **GELU_TOLERANCE)
    assert fast[0] == np.inf
    y = np.random.default_rng(5).standard_normal((6, 8)).astype(np.float32)
    assert_parity(lambda t: F.gelu(t.T[::2]), y, **GELU_TOLERANCE)


# --- attention, flash-style -------------------------------------------------------------------

# backward's D = rowsum(dO O) is rowsum(dP P) by another route, and dS = P (dP - D) cancels when
# the scores are alike: a few ulp of |dP| (sums over up to 150 keys of numbers up to ~30)
ATTENTION_TOLERANCE = dict(rtol=2e-5, atol=1e-4)


@pytest.mark.parametrize("is_causal", [False, True])
@FEW
@given(leading=st.sampled_from([(), (2,), (2, 3)]), t=st.integers(1, 150), d=st.integers(1, 64), data=st.data())
def test_attention(is_causal, leading, t, d, data):
    q, k, v = (data.draw(hnp.arrays(np.float32, leading + (t, d), elements=st.floats(-3, 3, width=32)))
               for _ in range(3))
    assert_parity(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=is_causal), q, k, v,
                  **ATTENTION_TOLERANCE)


def test_attention_other_lengths_scale_and_what_takes_the_reference():
    rng = np.random.default_rng(6)
    q = rng.standard_normal((2, 2, 70, 16)).astype(np.float32)  # 70 queries: two blocks of 64
    k, v = (rng.standard_normal((2, 2, 130, 16)).astype(np.float32) for _ in range(2))
    for causal in (False, True):
        assert_parity(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=causal, scale=0.3),
                      q, k, v, **ATTENTION_TOLERANCE)
    wide = rng.standard_normal((1, 5, 80)).astype(np.float32)  # heads wider than 64
    assert_parity(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), wide, wide, wide,
                  expect_fast=False, **ATTENTION_TOLERANCE)
    allowed = backend.to_device(rng.random((70, 130)) < 0.7, "cuda")
    assert_parity(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, mask=allowed), q, k, v,
                  expect_fast=False, **ATTENTION_TOLERANCE)


# --- the plain hot spots: Adam's update, the embedding's scatter-add ------------------------------

def both_choices(run):
    previous = mt.get_kernels()
    try:
        return [(mt.set_kernels(choice), run())[1] for choice in ("reference", "fast")]
    finally:
        mt.set_kernels(previous)


@pytest.mark.parametrize("optimizer", ["Adam", "Adam + L2", "AdamW"])
def test_adam_update(optimizer):
    from minitransformer import optim
    from minitransformer.fast.cuda.adam import cuda_adam_update
    from minitransformer.optim.adam import adam_update

    def run():
        rng = np.random.default_rng(0)
        params = [mt.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True, device="cuda")
                  for shape in [(30, 20), (7,), (), (0, 3)]]
        cls, decay = {"Adam": (optim.Adam, 0.0), "Adam + L2": (optim.Adam, 0.1),
                      "AdamW": (optim.AdamW, 0.1)}[optimizer]
        opt = cls(params, lr=1e-2, weight_decay=decay)
        for step in range(3):
            for p in params:
                grad = rng.standard_normal(p.shape).astype(np.float32)
                if step == 1 and p.size > 2:
                    grad.flat[:2] = [np.inf, np.nan]
                p.grad = backend.to_device(grad, "cuda")
            opt.step()
        return [backend.to_numpy(a) for p in params
                for a in (p.data, opt.state[id(p)]["exp_avg"], opt.state[id(p)]["exp_avg_sq"])]

    p = mt.tensor(np.ones(3, np.float32), device="cuda")
    assert dispatch.implementation_for(adam_update, (p.data, p.data, p.data, p.data), {}) is cuda_adam_update
    with np.errstate(invalid="ignore"):
        reference, fast = both_choices(run)
    for a, b in zip(reference, fast):
        np.testing.assert_allclose(b, a, rtol=2e-6, atol=1e-7)
        np.testing.assert_array_equal(np.isnan(b), np.isnan(a))


@FEW
@given(ids=hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, 5)), width=st.integers(1, 30))
def test_add_rows_at(ids, width):
    from minitransformer.fast.cuda.embedding import cuda_add_rows_at
    from minitransformer.ops.embedding import add_rows_at

    values = np.random.default_rng(len(ids)).standard_normal((len(ids), width)).astype(np.float32)
    device_ids, device_values = backend.to_device(ids, "cuda"), backend.to_device(values, "cuda")

    def run():
        table = backend.to_device(np.zeros((6, width), np.float32), "cuda")
        add_rows_at(table, device_ids, device_values)
        return backend.to_numpy(table)

    expected = cuda_add_rows_at if len(ids) else None  # no ids: the reference
    assert dispatch.implementation_for(
        add_rows_at, (backend.to_device(np.zeros((6, width), np.float32), "cuda"), device_ids, device_values),
        {}) is expected
    reference, fast = both_choices(run)
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-6)  # atomics: any order


def test_add_rows_at_outside_the_table_takes_the_reference():
    from minitransformer.ops.embedding import add_rows_at

    table = backend.to_device(np.zeros((3, 2), np.float32), "cuda")
    ids, rows = (backend.to_device(a, "cuda") for a in (np.array([0, 3]), np.ones((2, 2), np.float32)))
    with pytest.raises(IndexError):
        add_rows_at(table, ids, rows)


def test_a_gpt_forward_and_backward_with_every_kernel_equals_the_reference(monkeypatch):
    """Loss and every gradient of a tiny GPT (layer norm, GELU, attention, cross-entropy and
    the embedding's gradient through the kernels), then one AdamW step."""
    from minitransformer import nn, optim
    from minitransformer.fast.cuda import kernels

    launched = set()
    for name in ("launch_rows", "row_kernel", "gelu_forward", "gelu_backward", "adam_update"):
        def recording(*args, _name=name, _original=getattr(kernels, name), **kwargs):
            launched.add(args[0] if _name in ("launch_rows", "row_kernel") else _name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(kernels, name, recording)

    def step():
        mt.manual_seed(0)
        model = nn.GPT(nn.GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16)).to("cuda")
        rng = np.random.default_rng(0)
        x, y = (backend.to_device(rng.integers(0, 11, (2, 8)), "cuda") for _ in range(2))
        _, loss = model(x, y)
        loss.backward()
        grads = [backend.to_numpy(p.grad) for p in model.parameters()]
        optim.AdamW(model.parameters(), lr=1e-2).step()
        return loss.item(), grads, model.parameters()

    (reference_loss, reference_grads, _), (fast_loss, fast_grads, fast_params) = both_choices(step)
    np.testing.assert_allclose(fast_loss, reference_loss, rtol=1e-6)
    for a, b in zip(reference_grads, fast_grads):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(a).max()))
    assert all(backend.device_of(p.data) == "cuda" for p in fast_params)
    assert launched >= {"softmax_rows", "flash_attention_forward", "layer_norm_rows", "layer_norm_backward_rows",
                        "add_rows_at", "gelu_forward", "gelu_backward", "adam_update"}, launched


CUDA_PARITY_CASES = {
    "cuda.softmax": (test_softmaxes, test_softmaxes_special_values_and_wide_rows),
    "cuda.log_softmax": (test_softmaxes, test_softmaxes_special_values_and_wide_rows),
    "cuda.cross_entropy": (test_cross_entropy, test_cross_entropy_special_values_and_3d),
    "cuda.layer_norm": (test_layer_norm, test_layer_norm_special_values_wide_and_constant_rows),
    "cuda.attention": (test_attention, test_attention_other_lengths_scale_and_what_takes_the_reference),
    "cuda.gelu": (test_gelu, test_gelu_special_values_and_strided_input),
    "cuda.adam_update": (test_adam_update,),
    "cuda.add_rows_at": (test_add_rows_at, test_add_rows_at_outside_the_table_takes_the_reference),
}
