"""Optional cross-check against PyTorch: every op's forward and backward through the public API,
in float64, within a relative error of 1e-6 (skipped when PyTorch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from tests.strategies import arrays, broadcastable_pair, large_arrays, matmul_shapes, shapes

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the tensors here are tiny: a thread pool only adds overhead
TF = torch.nn.functional

RTOL, ATOL = 1e-6, 1e-12


def assert_matches_torch(mt_fn, torch_fn, *arrays_in, differentiable=None):
    """mt_fn(*tensors) and torch_fn(*torch tensors) agree, and so do the gradients of
    sum(out * upstream) with respect to every differentiable input."""
    differentiable = range(len(arrays_in)) if differentiable is None else differentiable
    mine = [mt.tensor(a, dtype=a.dtype, requires_grad=i in differentiable and a.dtype.kind == "f")
            for i, a in enumerate(arrays_in)]
    theirs = [torch.tensor(a, requires_grad=i in differentiable and a.dtype.kind == "f")
              for i, a in enumerate(arrays_in)]
    out, expected = mt_fn(*mine), torch_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    if not any(t.requires_grad for t in theirs):
        return
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    (out * mt.tensor(upstream, dtype=np.float64)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    for m, t in zip(mine, theirs):
        if t.requires_grad:
            np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=RTOL, atol=ATOL)


@given(shape_pair=matmul_shapes(), data=st.data())
def test_matmul_every_rank(shape_pair, data):
    a, b = (data.draw(arrays(s)) for s in shape_pair)
    assert_matches_torch(lambda x, y: x @ y, torch.matmul, a, b)


@pytest.mark.parametrize("symbol", ["+", "-", "*", "/"])
@given(pair=broadcastable_pair(), data=st.data())
@settings(max_examples=20)
def test_broadcasting_arithmetic(symbol, pair, data):
    a = data.draw(arrays(pair[0]))
    b = data.draw(arrays(pair[1], 0.5, 3.0)) if symbol == "/" else data.draw(arrays(pair[1]))
    assert_matches_torch(lambda x, y: eval(f"x {symbol} y"), lambda x, y: eval(f"x {symbol} y"), a, b)


@given(pair=broadcastable_pair(), data=st.data())
@settings(max_examples=20)
def test_maximum_and_pow(pair, data):
    a, b = data.draw(arrays(pair[0], 0.5, 3)), data.draw(arrays(pair[1], -2, 2))
    assert_matches_torch(lambda x, y: x**y, torch.pow, a, b)
    assert_matches_torch(mt.maximum, torch.maximum, a, b + 0.01)


# name: (ours, PyTorch's); PyTorch's amax/amin split ties evenly, as our max/min do
REDUCTIONS = {
    "sum": (lambda x, axis, keep: x.sum(axis=axis, keepdims=keep),
            lambda x, dim, keep: x.sum(dim=dim, keepdim=keep)),
    "mean": (lambda x, axis, keep: x.mean(axis=axis, keepdims=keep),
             lambda x, dim, keep: x.mean(dim=dim, keepdim=keep)),
    "max": (lambda x, axis, keep: x.max(axis=axis, keepdims=keep),
            lambda x, dim, keep: x.amax(dim=dim, keepdim=keep)),
    "min": (lambda x, axis, keep: x.min(axis=axis, keepdims=keep),
            lambda x, dim, keep: x.amin(dim=dim, keepdim=keep)),
    "var": (lambda x, axis, keep: x.var(axis=axis, keepdims=keep, ddof=1),
            lambda x, dim, keep: x.var(dim=dim, keepdim=keep, correction=1)),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
@settings(max_examples=20)
def test_reductions_with_axes(name, data):
    shape = data.draw(shapes.filter(lambda s: min(s) > 1) if name == "var" else shapes)
    ndim = len(shape)
    axis = data.draw(st.one_of(st.integers(-ndim, ndim - 1),
                               st.lists(st.integers(0, ndim - 1), min_size=1, unique=True).map(tuple)))
    keep = data.draw(st.booleans())
    x = np.round(data.draw(arrays(shape)), 1)  # rounded: ties happen, and must split as amax's do
    mine, theirs = REDUCTIONS[name]
    assert_matches_torch(lambda t: mine(t, axis, keep), lambda t: theirs(t, axis, keep), x)


ELEMENTWISE = {
    "exp": (lambda x: x.exp(), torch.exp, (-5, 5)),
    "log": (lambda x: x.log(), torch.log, (0.1, 5)),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, (0.1, 5)),
    "abs": (lambda x: x.abs(), torch.abs, (-5, 5)),
    "neg": (lambda x: -x, torch.neg, (-5, 5)),
    "tanh": (lambda x: x.tanh(), torch.tanh, (-5, 5)),
    "sigmoid": (F.sigmoid, torch.sigmoid, (-30, 30)),
    "relu": (F.relu, torch.relu, (-5, 5)),
    "gelu": (F.gelu, TF.gelu, (-5, 5)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), (-5, 5)),
    "pow3": (lambda x: x**3, lambda x: x**3, (-3, 3)),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5, (0.1, 3)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(data=st.data())
@settings(max_examples=15)
def test_elementwise_functions(name, data):
    mine, theirs, (low, high) = ELEMENTWISE[name]
    assert_matches_torch(mine, theirs, data.draw(arrays(shapes, low, high)))


@given(data=st.data())
def test_softmax_and_log_softmax(data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(arrays(shape, -10, 10))
    assert_matches_torch(lambda t: F.softmax(t, axis=axis), lambda t: torch.softmax(t, dim=axis), x)
    assert_matches_torch(lambda t: F.log_softmax(t, axis=axis), lambda t: torch.log_softmax(t, dim=axis), x)


@given(x=large_arrays(shapes, 1e4))
def test_log_softmax_large_logits(x):
    assert_matches_torch(F.log_softmax, lambda t: torch.log_softmax(t, dim=-1), x)
    assert_matches_torch(F.softmax, lambda t: torch.softmax(t, dim=-1), x)


@pytest.mark.parametrize("affine", [False, True])
@given(data=st.data())
@settings(max_examples=20)
def test_layer_norm(affine, data):
    shape = data.draw(shapes.filter(lambda s: s[-1] > 1))
    x = data.draw(arrays(shape))
    n = shape[-1]
    if affine:
        w, b = data.draw(arrays((n,))), data.draw(arrays((n,)))
        assert_matches_torch(F.layer_norm, lambda t, w, b: TF.layer_norm(t, (n,), w, b), x, w, b)
    else:
        assert_matches_torch(F.layer_norm, lambda t: TF.layer_norm(t, (n,)), x)


@pytest.mark.parametrize("bias", [False, True])
@given(data=st.data())
@settings(max_examples=20)
def test_linear(bias, data):
    leading = data.draw(st.sampled_from([(), (3,), (2, 3)]))
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x, w = data.draw(arrays(leading + (n_in,))), data.draw(arrays((n_out, n_in)))
    if bias:
        assert_matches_torch(F.linear, TF.linear, x, w, data.draw(arrays((n_out,))))
    else:
        assert_matches_torch(F.linear, TF.linear, x, w)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("leading", [(5,), (2, 4)])
@given(data=st.data())
@settings(max_examples=15)
def test_cross_entropy_with_ignore_index(reduction, leading, data):
    num_classes = data.draw(st.integers(1, 5))
    logits = data.draw(arrays(leading + (num_classes,), -20, 20))
    targets = np.array(data.draw(st.lists(st.sampled_from(list(range(num_classes)) + [-100]),
                                          min_size=int(np.prod(leading)), max_size=int(np.prod(leading)))))
    targets = targets.reshape(leading)
    if reduction == "mean" and np.all(targets == -100):
        targets.flat[0] = 0  # PyTorch's mean over no rows is NaN; ours is 0 (tested elsewhere)

    def theirs(z, y):
        z = z.reshape(-1, num_classes)  # PyTorch wants classes in dim 1: flatten (B, T, C)
        loss = TF.cross_entropy(z, y.reshape(-1), ignore_index=-100, reduction=reduction)
        return loss.reshape(leading) if reduction == "none" else loss

    assert_matches_torch(lambda z, y: F.cross_entropy(z, y, reduction=reduction), theirs,
                         logits, targets, differentiable=[0])


@given(data=st.data())
def test_embedding_with_repeated_ids(data):
    vocab, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    table = data.draw(arrays((vocab, dim)))
    ids = np.array(data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=5)))
    ids = np.stack([ids, ids[::-1]])  # (B, T) ids, every id at least twice
    assert_matches_torch(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w), ids, table,
                         differentiable=[1])


@pytest.mark.parametrize("is_causal", [False, True])
@given(data=st.data())
@settings(max_examples=20)
def test_attention(is_causal, data):
    batch = data.draw(st.sampled_from([(), (2,), (2, 3)]))
    t, t_key = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    t_key = t if is_causal else t_key
    d_k, d_v = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    q, k = data.draw(arrays(batch + (t, d_k))), data.draw(arrays(batch + (t_key, d_k)))
    v = data.draw(arrays(batch + (t_key, d_v)))
    assert_matches_torch(lambda *a: F.scaled_dot_product_attention(*a, is_causal=is_causal),
                         lambda *a: TF.scaled_dot_product_attention(*a, is_causal=is_causal), q, k, v)


@given(data=st.data())
@settings(max_examples=20)
def test_attention_with_masks(data):
    q, k, v = (data.draw(arrays((2, 4, 3))) for _ in range(3))
    bool_mask = data.draw(arrays((4, 4))) > -1
    bool_mask[:, 0] = True
    float_mask = data.draw(arrays((2, 4, 4)))
    for mask in (bool_mask, float_mask):
        assert_matches_torch(lambda *a: F.scaled_dot_product_attention(*a, mask=mask),
                             lambda *a: TF.scaled_dot_product_attention(*a, attn_mask=torch.tensor(mask)), q, k, v)


@given(data=st.data())
@settings(max_examples=20)
def test_losses(data):
    shape = data.draw(shapes)
    p, y = data.draw(arrays(shape, 0.01, 0.99)), data.draw(arrays(shape, 0, 1))
    z = data.draw(arrays(shape, -30, 30))
    assert_matches_torch(F.mse_loss, TF.mse_loss, z, y)
    assert_matches_torch(F.binary_cross_entropy, TF.binary_cross_entropy, p, y)
    assert_matches_torch(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, z, y)


@given(data=st.data())
@settings(max_examples=20)
def test_shape_ops(data):
    x = data.draw(arrays((3, 4, 2)))
    idx = np.array([2, 0, 2])
    assert_matches_torch(lambda t: t.transpose(2, 0, 1).reshape(4, 6)[idx, 1:],
                         lambda t: t.permute(2, 0, 1).reshape(4, 6)[torch.tensor(idx), 1:], x)
    assert_matches_torch(lambda t: mt.concat([t, t * 2], axis=1), lambda t: torch.cat([t, t * 2], dim=1), x)
    assert_matches_torch(lambda t: mt.stack([t, t], axis=-1), lambda t: torch.stack([t, t], dim=-1), x)
    positive = x > 0
    assert_matches_torch(lambda t: mt.where(positive, t, -t), lambda t: torch.where(t > 0, t, -t), x)
