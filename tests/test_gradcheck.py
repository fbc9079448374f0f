"""gradcheck.py: passes correct gradients, catches a wrong backward and says where."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from tests.helpers import tensor


class WrongSquare(mt.Function):
    """z = a^2 with a deliberately wrong backward: a instead of 2a."""

    def forward(self, a):
        self.save_for_backward(a)
        return a * a

    def backward(self, grad):
        (a,) = self.saved
        return grad * a


class WrongSecondInput(mt.Function):
    """z = a * b, whose backward forgets the gradient of b."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        return grad * b, grad * 0


def test_gradcheck_passes_correct_ops(xp):
    x = tensor(xp, [[0.5, -1.0], [2.0, 0.3]])
    assert mt.gradcheck(lambda t: (t * t).exp().sum(axis=0), [x]) is True


def test_gradcheck_catches_a_wrong_backward_and_reports_it(xp):
    x = tensor(xp, [1.0, -2.0, 3.0])
    with pytest.raises(mt.GradcheckError) as error:
        mt.gradcheck(lambda t: WrongSquare.apply(t), [x])
    report = str(error.value)
    assert "autograd disagrees with finite differences" in report
    assert "input 0 (shape (3,))" in report and "autograd" in report and "numeric" in report


def test_gradcheck_names_the_wrong_input(xp):
    a, b = tensor(xp, [1.0, 2.0]), tensor(xp, [3.0, 4.0])
    with pytest.raises(mt.GradcheckError, match=r"input 1 \(shape \(2,\)\)") as error:
        mt.gradcheck(lambda x, y: WrongSecondInput.apply(x, y), [a, b])
    assert "input 0" not in str(error.value)


def test_gradcheck_works_in_float64_for_float32_inputs():
    x = mt.tensor([0.1, 0.2, 0.3])  # float32: differences of 1e-6 would drown in rounding
    assert mt.gradcheck(lambda t: (t.exp() * t).sum(), [x])


def test_gradcheck_on_a_transposed_input():
    x = mt.tensor(np.arange(6.0).reshape(2, 3).T, dtype=np.float64)  # Fortran-ordered data
    assert mt.gradcheck(lambda t: (t * t * t).sum(axis=1), [x])
    with pytest.raises(mt.GradcheckError):
        mt.gradcheck(lambda t: WrongSquare.apply(t), [x])


def test_gradcheck_passes_integer_inputs_through():
    ids = mt.tensor([2, 0, 2])
    weight = mt.tensor(np.arange(6.0).reshape(3, 2), dtype=np.float64)
    assert mt.gradcheck(lambda i, w: w[i.data] * 2, [ids, weight])


def test_gradcheck_rejects_non_tensors():
    with pytest.raises(TypeError, match="gradcheck: inputs must be tensors, got ndarray"):
        mt.gradcheck(lambda t: t, [np.ones(2)])
