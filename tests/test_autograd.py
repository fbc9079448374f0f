"""autograd.py: the backward engine (accumulation, deep graphs, freeing the graph,
retain_graph, retain_grad), no_grad, unbroadcast, detect_anomaly, custom Functions."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.autograd import unbroadcast
from tests.helpers import assert_close, host, tensor
from tests.strategies import arrays, broadcastable_pair


def test_gradient_accumulates_when_a_tensor_is_used_twice(xp):
    x = tensor(xp, [1.0, -2.0, 3.0], requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    assert_close(x.grad, [3.0, -3.0, 7.0])


def test_diamond_graph_sums_both_paths(xp):
    x = tensor(xp, 2.0, requires_grad=True)
    y = x.exp()
    z = y * y.log() + y  # uses y on two paths: d/dx = y log y + y + y = e^2 (2 + 2)
    z.backward()
    assert_close(x.grad, np.exp(2.0) * 4.0)


def test_backward_twice_accumulates_into_leaves(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert_close(x.grad, [6.0, 6.0])


def test_deep_graph_does_not_hit_the_recursion_limit(xp):
    depth = max(5000, sys.getrecursionlimit() + 1000)
    x = tensor(xp, 1.0, requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0001
    y.backward()
    assert_close(x.grad, 1.0001**depth, rtol=1e-9)
    del y
    gc.collect()  # releasing a deep graph must not overflow either


def test_no_grad_records_no_graph(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert mt.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None and y.is_leaf
    with pytest.raises(RuntimeError, match="backward: this tensor does not require grad"):
        y.backward()


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(KeyError):
        with mt.no_grad():
            raise KeyError
    assert mt.is_grad_enabled()


def test_graph_is_freed_after_backward(xp):
    x = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    variance = x.var()  # Var saves the centered input, an array nothing else holds
    node = variance._ctx
    saved = weakref.ref(node.saved[0])
    variance.backward()
    gc.collect()
    assert node.inputs is None and node.saved == ()
    assert saved() is None
    with pytest.raises(RuntimeError, match=r"backward: the graph through Var was already freed .* retain_graph=True"):
        variance.backward()



def test_graph_keeps_no_intermediate_that_backward_does_not_need(xp):
    x = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    hidden = x + 1  # Add saves nothing, so only the variable holds hidden's array
    data = weakref.ref(hidden.data)
    loss = ((hidden + 1) * x).sum()
    del hidden
    gc.collect()
    assert data() is None  # freed during the forward, as in PyTorch's graph
    loss.backward()
    assert_close(x.grad, 2 * host(x) + 2)  # d/dx ((x + 2) x) = 2x + 2


def test_retain_grad_reaches_a_tensor_used_twice_through_one_node(xp):
    x = tensor(xp, [1.0, -1.0], requires_grad=True)
    hidden = (x * 2).retain_grad()
    (hidden * hidden + hidden).sum().backward()  # dL/dhidden = 2 hidden + 1
    assert_close(hidden.grad, 2 * host(hidden) + 1)
    assert_close(x.grad, 2 * (2 * host(hidden) + 1))

def test_retain_graph_allows_a_second_backward(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert y._ctx.inputs is not None
    y.backward()
    assert_close(x.grad, [4.0, 8.0])


def test_shared_subgraph_freed_by_first_backward(xp):
    x = tensor(xp, 1.0, requires_grad=True)
    z = x.exp()
    (z * 2).backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (z * 3).backward()


def test_leaf_gradients_are_never_shared(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True)
    b = tensor(xp, [3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add hands the same gradient array to both inputs
    assert a.grad is not b.grad
    a.grad += 1  # writable, and b.grad is unaffected
    assert_close(b.grad, [1.0, 1.0])
    upstream = xp.ones(2)
    c = tensor(xp, [1.0, 2.0], requires_grad=True)
    (c + 0).backward(upstream)
    upstream[:] = 5
    assert_close(c.grad, [1.0, 1.0])  # the caller's grad array is not the leaf's .grad


def test_slices_add_their_gradients_into_one_array(xp):
    x = tensor(xp, np.arange(12.0).reshape(2, 6), requires_grad=True)
    q, k, v = x.split(3, axis=1)  # three GetItems of one tensor: backward_add fills one array
    (q * 1 + k * 2 + v * 3 + x[:, 1:3] * 10).sum().backward()
    assert_close(x.grad, [[1.0, 11.0, 12.0, 2.0, 3.0, 3.0]] * 2)
    picks = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    (picks[xp.asarray([0, 0, 2])] * tensor(xp, [1.0, 2.0, 4.0])).sum().backward()
    assert_close(picks.grad, [3.0, 0.0, 4.0])  # a repeated index: its gradients add up


def test_a_slice_gradient_never_writes_into_an_array_another_gradient_shares(xp):
    a = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    b = tensor(xp, [1.0, 1.0, 1.0], requires_grad=True)
    s = (a * 1) + (b * 1)  # Add hands one array to both sides as their gradient
    (s.sum() + (s[1:] * 5).sum()).backward()
    assert_close(a.grad, [1.0, 6.0, 6.0])
    assert_close(b.grad, [1.0, 6.0, 6.0])
    x = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    z = y + y  # y's gradient is the array Add returned twice, summed by the engine
    (z.sum() + y[0] * 7).backward()
    assert_close(x.grad, [9.0, 2.0, 2.0])


def test_backward_with_explicit_gradient(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True, dtype=np.float32)
    (x * x).backward(xp.asarray([1.0, 10.0]))  # a float64 grad for a float32 root
    assert x.grad.dtype == np.float32
    assert_close(x.grad, [2.0, 40.0])
    with pytest.raises(ValueError, match=r"backward: grad is shape \(3,\) float64; expected .* shape \(2,\)"):
        (x * x).backward(xp.ones(3))


def test_retain_grad_keeps_intermediate_gradients(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    y = (x * 3).retain_grad()
    w = y * 2
    (w * y).sum().backward()  # L = 2 y^2: dL/dy = 4 y
    assert_close(y.grad, 4 * host(y))
    assert w.grad is None  # not retained
    assert_close(x.grad, 3 * 4 * host(y))


def test_gradient_dtype_follows_the_input(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True, dtype=np.float32)
    b = tensor(xp, [3.0, 4.0], requires_grad=True, dtype=np.float64)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_only_inputs_that_require_grad_get_one(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True)
    b = tensor(xp, [3.0, 4.0])
    (a * b).sum().backward()
    assert b.grad is None
    assert_close(a.grad, [3.0, 4.0])


@given(pair=broadcastable_pair(), data=st.data())
def test_unbroadcast_sums_each_copy_back(xp, pair, data):
    shape_a, shape_b = pair
    full = np.broadcast_shapes(shape_a, shape_b)
    grad = data.draw(arrays(full))
    summed = host(unbroadcast(xp.asarray(grad), shape_a))
    assert summed.shape == shape_a
    # by definition: element i of a is copied to every output position it broadcasts to, so its
    # gradient is the sum of grad over the positions where broadcast_to(e_i, full) is 1
    expected = np.zeros(shape_a)
    for position in np.ndindex(shape_a):
        one_hot = np.zeros(shape_a)
        one_hot[position] = 1.0
        expected[position] = np.sum(grad * np.broadcast_to(one_hot, full))
    np.testing.assert_allclose(summed, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(summed.sum(), grad.sum() if grad.size else 0.0, rtol=1e-9, atol=1e-12)


def test_detect_anomaly_names_the_op_in_forward_and_backward(xp):
    with mt.detect_anomaly():
        with pytest.raises(ValueError, match=r"Log: produced NaN or infinity in its output"):
            tensor(xp, [-1.0]).log()
        x = tensor(xp, [0.0, 4.0], requires_grad=True)
        y = x.sqrt().sum()  # finite output, infinite gradient at 0
        with pytest.raises(ValueError, match=r"Sqrt: produced NaN or infinity in its gradient"):
            y.backward()
    tensor(xp, [-1.0]).log()  # outside the block NaN passes silently, as in NumPy


class Cube(mt.Function):
    """z = a^3;   dz/da = 3 a^2"""

    def forward(self, a):
        self.save_for_backward(a)
        return a**3

    def backward(self, grad):
        (a,) = self.saved
        return grad * 3 * a * a


class WrongShape(mt.Function):
    def forward(self, a):
        return a.sum()

    def backward(self, grad):
        return grad[None, None]  # (1, 1) for a (3,) input: no broadcasting explains it


def test_custom_function(xp):
    x = tensor(xp, [1.0, -2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    assert_close(x.grad, [3.0, 12.0])
    assert mt.gradcheck(lambda t: Cube.apply(t), [x])


def test_wrongly_shaped_gradient_is_reported_with_the_op(xp):
    x = tensor(xp, [1.0, 2.0, 3.0], requires_grad=True)
    message = r"WrongShape.backward returned a gradient of shape \(1, 1\) for an input of shape \(3,\)"
    with pytest.raises(RuntimeError, match=message):
        WrongShape.apply(x).backward()


def test_apply_rejects_non_tensor_inputs():
    with pytest.raises(TypeError, match="ReLU: inputs must be tensors, got ndarray"):
        F.relu(np.ones(3))
