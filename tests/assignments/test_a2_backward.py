"""Assignment a2, one backward at a time: each test calls one op's ``backward`` directly with an
explicit upstream gradient g and compares what it returns with the vector-Jacobian product
g . df/dx computed by central differences of that op's own forward (lesson 03).

No other op's backward and not the engine run here (a finite difference needs only forwards),
so a correct ``Mul.backward`` passes its tests even when every other backward is missing. The
inputs have equal shapes (no broadcasting): summing broadcast copies back is ``unbroadcast``'s
job, graded by its own test in tests/test_autograd.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.ops import elementwise as ew
from minitransformer.ops import matmul, reduce
from tests.helpers import check_backward

def draw(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from_zero(shape, seed):
    """Values in +-[0.3, 2]: kinks (abs, relu, max) and poles (log, 1/x) stay out of reach of
    the finite differences."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.3, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


SHAPES = [(3,), (2, 3), (2, 1, 4)]


@pytest.mark.parametrize("op", [ew.Add, ew.Sub, ew.Mul], ids=lambda op: op.__name__)
@pytest.mark.parametrize("seed", range(2))
def test_binary_backward(op, seed):
    shape = SHAPES[seed + 1]
    check_backward(op, [draw(shape, seed), draw(shape, seed + 10)], seed=seed)


@pytest.mark.parametrize("seed", range(2))
def test_div_backward(seed):
    shape = SHAPES[seed + 1]
    check_backward(ew.Div, [draw(shape, seed), away_from_zero(shape, seed + 10)], seed=seed)


@pytest.mark.parametrize("seed", range(2))
def test_neg_backward(seed):
    check_backward(ew.Neg, [draw(SHAPES[seed], seed)], seed=seed)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5])
def test_pow_constant_backward(exponent):
    base = np.abs(away_from_zero((2, 3), 4))  # a positive base: every exponent is defined
    check_backward(ew.PowConstant, [base], {"exponent": exponent})


def test_pow_constant_zero_exponent_backward_is_zero_not_nan():
    x = mt.tensor(np.array([0.0, 2.0]), requires_grad=True, dtype=np.float64)
    grad = x ** 0
    out = grad._ctx.backward(np.ones(2))
    out = out[0] if isinstance(out, tuple) else out
    np.testing.assert_array_equal(np.asarray(out), [0.0, 0.0], err_msg="d(x^0)/dx is 0 everywhere, also at x = 0")


UNARY = [
    (ew.Exp, draw), (ew.Log, lambda shape, seed: np.abs(away_from_zero(shape, seed))),
    (ew.Sqrt, lambda shape, seed: np.abs(away_from_zero(shape, seed))), (ew.Abs, away_from_zero),
    (ew.Tanh, draw), (ew.Sigmoid, draw), (ew.ReLU, away_from_zero),
]


@pytest.mark.parametrize("op, inputs", UNARY, ids=[op.__name__ for op, _ in UNARY])
@pytest.mark.parametrize("seed", range(2))
def test_unary_backward(op, inputs, seed):
    check_backward(op, [inputs(SHAPES[seed + 1], seed)], seed=seed)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward(approximate):
    check_backward(ew.GELU, [draw((3, 4), 5, -4, 4)], {"approximate": approximate})


def backward_of(op, arrays, grad, **params):
    """``op``'s backward for ``arrays`` (float64) and the upstream gradient ``grad``."""
    tensors = [mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True, dtype=np.float64) for a in arrays]
    grads = op.apply(*tensors, **params)._ctx.backward(np.asarray(grad, dtype=np.float64))
    return [np.asarray(g) for g in (grads if isinstance(grads, tuple) else (grads,))]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_maximum_backward(ties):
    a = draw((3, 4), 6)
    if not ties:
        b = a + away_from_zero((3, 4), 7)  # each element's gradient goes to one side
        check_backward(ew.Maximum, [a, b])
        return
    b = np.where(np.arange(12).reshape(3, 4) % 3 == 0, a, a + away_from_zero((3, 4), 7))  # every third equal
    g = draw((3, 4), 8)
    share_a = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))  # a tie splits the gradient in half
    grad_a, grad_b = backward_of(ew.Maximum, [a, b], g)
    np.testing.assert_allclose(grad_a, g * share_a, err_msg="Maximum.backward: gradient of a (ties get half)")
    np.testing.assert_allclose(grad_b, g * (1 - share_a), err_msg="Maximum.backward: gradient of b (ties get half)")


def test_where_backward():
    condition = np.random.default_rng(8).random((3, 4)) > 0.5
    check_backward(ew.Where, [draw((3, 4), 8), draw((3, 4), 9)], extra=(condition,))


REDUCTION_CASES = [dict(), dict(axis=1), dict(axis=(0, 2), keepdims=True), dict(axis=-1, keepdims=True)]


@pytest.mark.parametrize("op", [reduce.Sum, reduce.Mean, reduce.Var], ids=lambda op: op.__name__)
@pytest.mark.parametrize("case", range(len(REDUCTION_CASES)))
def test_reduction_backward(op, case):
    check_backward(op, [draw((2, 3, 4), case)], REDUCTION_CASES[case], seed=case)


@pytest.mark.parametrize("case", range(len(REDUCTION_CASES)))
def test_max_backward(case):
    x = np.random.default_rng(case).permutation(24).reshape(2, 3, 4) * 0.1  # distinct: no ties
    check_backward(reduce.Max, [x], REDUCTION_CASES[case], seed=case)


def test_max_backward_splits_ties_evenly():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0]])  # two and three entries tie for the max
    g = np.array([6.0, 9.0])
    (grad,) = backward_of(reduce.Max, [x], g, axis=1)
    np.testing.assert_allclose(grad, [[0, 3, 3, 0], [3, 3, 3, 0]],
                               err_msg="Max.backward: the k entries that tie for the max get 1/k of the gradient each")


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 3)), ((2, 3), (3,)), ((5,), (5,)),
                                    ((2, 3, 4), (2, 4, 2)), ((2, 3, 4), (4, 2))], ids=str)
def test_matmul_backward(shapes):
    check_backward(matmul.MatMul, [draw(s, i) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_backward(with_bias):
    x, weight, bias = draw((2, 3, 4), 1), draw((5, 4), 2), draw((5,), 3)
    check_backward(matmul.Linear, [x, weight, bias] if with_bias else [x, weight])
