"""Assignment a1, the backward engine (autograd.backward and its reverse topological order),
tested with Functions defined here only, so that these tests exercise the engine and nothing
of the ops (whose backward methods are assignment a2)."""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest

import minitransformer as mt
from tests.helpers import assert_close, tensor


@contextlib.contextmanager
def raises(kind):
    """pytest.raises(kind), except that NotImplementedError, itself a RuntimeError, still means
    "not written yet" and fails the test."""
    try:
        yield
    except NotImplementedError:
        raise
    except kind:
        return
    pytest.fail(f"DID NOT RAISE {kind.__name__}")


class Square(mt.Function):
    """z = a^2;   dz/da = 2a"""

    def forward(self, a):
        self.save_for_backward(a)
        return a * a

    def backward(self, grad):
        (a,) = self.saved
        return grad * 2 * a


class Scale(mt.Function):
    """z = c a;   dz/da = c"""

    def forward(self, a, c=2.0):
        self.c = c
        return a * c

    def backward(self, grad):
        return grad * self.c


class Plus(mt.Function):
    """z = a + b (same shapes);   dz/da = dz/db = 1, the same array for both"""

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Times(mt.Function):
    """z = a b (same shapes)"""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        return grad * b, grad * a


class Total(mt.Function):
    """z = sum(a);   dz/da = 1 everywhere"""

    def forward(self, a):
        self.shape = a.shape
        return a.sum()

    def backward(self, grad):
        return grad * mt.backend.array_module(grad).ones(self.shape, dtype=grad.dtype)


class Logged(mt.Function):
    """z = a, recording the order in which backward runs (in ``log``)."""

    log: list[str] = []

    def forward(self, a, name=""):
        self.name = name
        return a.copy()

    def backward(self, grad):
        Logged.log.append(self.name)
        return grad


def test_chain_rule_through_a_chain(xp):
    x = tensor(xp, [1.0, -2.0, 3.0], requires_grad=True)
    Total.apply(Scale.apply(Square.apply(x), c=3.0)).backward()  # d/dx sum(3 x^2) = 6x
    assert_close(x.grad, [6.0, -12.0, 18.0])


def test_gradient_accumulates_when_a_tensor_is_used_twice(xp):
    x = tensor(xp, [1.0, -2.0], requires_grad=True)
    Total.apply(Plus.apply(Times.apply(x, x), x)).backward()  # d/dx (x^2 + x) = 2x + 1
    assert_close(x.grad, [3.0, -3.0])


def test_diamond_sums_both_paths(xp):
    x = tensor(xp, 3.0, requires_grad=True)
    y = Square.apply(x)
    z = Plus.apply(Scale.apply(y, c=2.0), Square.apply(y))  # z = 2y + y^2: dz/dx = (2 + 2y) 2x
    z.backward()
    assert_close(x.grad, (2 + 2 * 9.0) * 2 * 3.0)


def test_each_backward_runs_once_after_every_consumer_of_its_output(xp):
    Logged.log = []
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    a = Logged.apply(x, name="a")
    b = Logged.apply(a, name="b")
    c = Logged.apply(a, name="c")
    d = Logged.apply(Plus.apply(b, Logged.apply(c, name="c2")), name="d")
    Total.apply(Plus.apply(d, b)).backward()
    assert sorted(Logged.log) == ["a", "b", "c", "c2", "d"]  # once each
    order = {name: i for i, name in enumerate(Logged.log)}
    assert order["d"] < order["b"] and order["c2"] < order["c"]
    assert order["a"] == len(order) - 1  # a waits for everything that reads it
    assert_close(x.grad, [3.0, 3.0])  # paths x-a-b-d, x-a-c-c2-d and x-a-b


def test_backward_twice_accumulates_into_leaves(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    Total.apply(Scale.apply(x, c=3.0)).backward()
    Total.apply(Scale.apply(x, c=3.0)).backward()
    assert_close(x.grad, [6.0, 6.0])


def test_deep_graph_does_not_hit_the_recursion_limit(xp):
    depth = sys.getrecursionlimit() + 1000
    x = tensor(xp, 1.0, requires_grad=True)
    y = x
    for _ in range(depth):
        y = Scale.apply(y, c=1.0001)
    y.backward()
    assert_close(x.grad, 1.0001**depth, rtol=1e-9)


def test_leaf_gradients_are_never_shared(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True)
    b = tensor(xp, [3.0, 4.0], requires_grad=True)
    Total.apply(Plus.apply(a, b)).backward()  # Plus hands the same array to both inputs
    assert a.grad is not b.grad
    a.grad += 1
    assert_close(b.grad, [1.0, 1.0])
    c = tensor(xp, [1.0, 2.0], requires_grad=True)
    d = tensor(xp, [3.0, 4.0], requires_grad=True)
    seed = xp.asarray([1.0, 1.0], dtype=c.dtype)  # the caller's gradient array
    Plus.apply(c, d).backward(seed)
    c.grad += 1
    d.grad += 1
    assert_close(seed, [1.0, 1.0])  # still the caller's: no leaf holds it


def test_explicit_gradient_for_a_non_scalar_root(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    Square.apply(x).backward(xp.asarray([1.0, 10.0]))
    assert_close(x.grad, [2.0, 40.0])
    with raises(ValueError):
        Square.apply(x).backward()  # not a scalar, and no gradient given


def test_only_inputs_that_require_grad_get_one(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True)
    b = tensor(xp, [3.0, 4.0])
    Total.apply(Times.apply(a, b)).backward()
    assert b.grad is None
    assert_close(a.grad, [3.0, 4.0])


def test_gradient_dtype_follows_the_input(xp):
    a = tensor(xp, [1.0, 2.0], requires_grad=True, dtype=np.float32)
    Square.apply(a).backward(xp.asarray([1.0, 1.0]))  # a float64 gradient for a float32 root
    assert a.grad.dtype == np.float32
    b = tensor(xp, [1.0, 2.0], requires_grad=True, dtype=np.float32)
    b.backward(xp.asarray([1.0, 1.0]))  # the root is the leaf: the seed itself becomes its gradient
    assert b.grad.dtype == np.float32
    x = tensor(xp, [1.0, 2.0], requires_grad=True, dtype=np.float32)
    y = tensor(xp, [3.0, 4.0])  # float64: Times hands x a float64 gradient
    Total.apply(Times.apply(x, y)).backward()
    assert x.grad.dtype == np.float32


def test_graph_is_freed_unless_retained(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    y = Total.apply(Square.apply(x))
    y.backward(retain_graph=True)
    y.backward()  # the graph was kept for this second pass
    assert_close(x.grad, [4.0, 8.0])
    node = y._ctx
    assert node.inputs is None and node.saved == ()
    with raises(RuntimeError):
        y.backward()  # freed by the second pass


def test_retain_grad_keeps_an_intermediate_gradient(xp):
    x = tensor(xp, [1.0, 2.0], requires_grad=True)
    y = Scale.apply(x, c=3.0).retain_grad()
    w = Square.apply(y)
    Total.apply(w).backward()  # dL/dy = 2y
    assert_close(y.grad, [6.0, 12.0])
    assert w.grad is None
    assert_close(x.grad, [18.0, 36.0])


def test_backward_without_a_graph_is_an_error(xp):
    x = tensor(xp, [1.0, 2.0])
    with raises(RuntimeError):
        Total.apply(x).backward()
