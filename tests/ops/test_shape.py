"""ops/shape.py: reshape, transpose, T, swapaxes, getitem (ints, slices, integer arrays with
repeats, boolean masks), concat, stack, split, broadcast_to, astype."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
from tests.helpers import assert_close, check_op, host, tensor
from tests.strategies import arrays, broadcastable_pair, shapes


@given(data=st.data())
def test_reshape(xp, data):
    shape = data.draw(shapes)
    x = data.draw(arrays(shape))
    target = data.draw(st.permutations(shape)).copy()
    target[data.draw(st.integers(0, len(shape) - 1))] = -1
    check_op(xp, lambda t: t.reshape(*target), lambda a: a.reshape(target), x)
    check_op(xp, lambda t: t.reshape(tuple(target)), lambda a: a.reshape(target), x)


@given(data=st.data())
def test_transpose_permutation(xp, data):
    shape = data.draw(shapes)
    axes = data.draw(st.permutations(range(len(shape))))
    negative = [a - len(shape) for a in axes]  # the same permutation, counted from the end
    x = data.draw(arrays(shape))
    check_op(xp, lambda t: t.transpose(*axes), lambda a: a.transpose(axes), x)
    check_op(xp, lambda t: t.transpose(negative), lambda a: a.transpose(axes), x)
    check_op(xp, lambda t: t.T, lambda a: a.T, x)


@given(data=st.data())
def test_swapaxes(xp, data):
    shape = data.draw(shapes)
    first, second = (data.draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    check_op(xp, lambda t: t.swapaxes(first, second), lambda a: a.swapaxes(first, second),
             data.draw(arrays(shape)))


@given(data=st.data())
def test_getitem_basic_indices(xp, data):
    shape = data.draw(shapes)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check_op(xp, lambda t: t[index], lambda a: np.asarray(a[index]), data.draw(arrays(shape)))


@given(data=st.data())
def test_getitem_integer_array_with_repeats_adds_gradients(xp, data):
    shape = data.draw(shapes)
    ids = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(-shape[0], shape[0] - 1)))
    x = data.draw(arrays(shape))
    check_op(xp, lambda t: t[xp.asarray(ids)], lambda a: a[ids], x)
    t = tensor(xp, x, requires_grad=True)
    t[mt.tensor(ids)].sum().backward()
    counts = np.bincount(ids % shape[0], minlength=shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    assert_close(t.grad, np.broadcast_to(counts, shape))  # each row once per time it is picked


@given(data=st.data())
def test_getitem_boolean_mask(xp, data):
    shape = data.draw(shapes)
    x = data.draw(arrays(shape))
    mask = x > 0
    check_op(xp, lambda t: t[xp.asarray(mask)], lambda a: a[mask], x)
    row_mask = mask.reshape(shape[0], -1)[:, 0]
    check_op(xp, lambda t: t[mt.tensor(row_mask)], lambda a: a[row_mask], x)


def test_getitem_mixed_index_with_repeats(xp):
    x = np.arange(12.0).reshape(3, 4)
    check_op(xp, lambda t: t[[2, 0, 2], 1:], lambda a: a[[2, 0, 2], 1:], x)
    check_op(xp, lambda t: t[:, [3, 3]], lambda a: a[:, [3, 3]], x)
    check_op(xp, lambda t: t[1, ::-2], lambda a: a[1, ::-2], x)


@given(data=st.data())
def test_concat(xp, data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    count = data.draw(st.integers(1, 3))
    parts = []
    for _ in range(count):
        part_shape = list(shape)
        part_shape[axis] = data.draw(st.integers(0, 3))  # empty parts allowed
        parts.append(data.draw(arrays(tuple(part_shape))))
    check_op(xp, lambda *ts: mt.concat(ts, axis=axis), lambda *a: np.concatenate(a, axis=axis), *parts)


@given(data=st.data())
def test_stack(xp, data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    check_op(xp, lambda *ts: mt.stack(ts, axis=axis), lambda *a: np.stack(a, axis=axis), *parts)


@given(data=st.data())
def test_split_equal_parts_and_sizes(xp, data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(arrays(shape))
    length = shape[axis]
    sections = data.draw(st.sampled_from([d for d in range(1, length + 1) if length % d == 0]))
    check_op(xp, lambda t: mt.concat([p * (i + 1) for i, p in enumerate(t.split(sections, axis))], axis),
             lambda a: np.concatenate([p * (i + 1) for i, p in enumerate(np.split(a, sections, axis))], axis), x)
    cut = data.draw(st.integers(0, length))
    parts = mt.split(tensor(xp, x), [cut, length - cut], axis=axis)
    expected = np.split(x, [cut], axis=axis)
    assert [p.shape for p in parts] == [e.shape for e in expected]
    for part, want in zip(parts, expected):
        assert_close(part, want)


@given(data=st.data())
def test_broadcast_to(xp, data):
    small, big = data.draw(broadcastable_pair())
    target = np.broadcast_shapes(small, big)
    check_op(xp, lambda t: t.broadcast_to(target), lambda a: np.broadcast_to(a, target),
             data.draw(arrays(small)))


def test_astype_between_floats_keeps_gradient_dtype(xp):
    x = tensor(xp, [1.5, -2.0], requires_grad=True, dtype=np.float32)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and x.astype(np.float32) is x
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    assert_close(x.grad, [3.0, -4.0])


def test_astype_to_integer_leaves_the_graph(xp):
    x = tensor(xp, [1.7, -2.2], requires_grad=True)
    y = x.astype(np.int64)
    assert y.dtype == np.int64 and not y.requires_grad
    np.testing.assert_array_equal(host(y), [1, -2])
