"""Elementwise ops. Inputs broadcast as in NumPy; each backward returns gradients in the
broadcast shape and the engine sums them back to each input's shape (``unbroadcast``)."""

from __future__ import annotations

import math
import numbers
import operator

from ..autograd import Function
from ..backend import array_module, erf
from ..tensor import Tensor, describe, lift
from .validate import check_float


def broadcasting(op: str, combine, a, b):
    """combine(a, b) with NumPy broadcasting, or an error that names the op and both shapes."""
    try:
        return combine(a, b)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} don't broadcast; expected each pair of "
            "trailing dimensions to be equal or 1"
        ) from None


class Add(Function):
    """z = a + b;   dz/da = 1,  dz/db = 1"""

    def forward(self, a, b):
        return broadcasting("add", operator.add, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        return grad, grad
        # END SOLUTION a2


class Sub(Function):
    """z = a - b;   dz/da = 1,  dz/db = -1"""

    def forward(self, a, b):
        return broadcasting("sub", operator.sub, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        return grad, -grad
        # END SOLUTION a2


class Mul(Function):
    """z = a * b;   dz/da = b,  dz/db = a"""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return broadcasting("mul", operator.mul, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)
        # END SOLUTION a2


class Div(Function):
    """z = a / b;   dz/da = 1 / b,  dz/db = -a / b^2"""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return broadcasting("div", operator.truediv, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        grad_a = grad / b if need_a else None
        grad_b = -grad * a / (b * b) if need_b else None
        return grad_a, grad_b
        # END SOLUTION a2


class Neg(Function):
    """z = -a;   dz/da = -1"""

    def forward(self, a):
        return -a

    def backward(self, grad):
        # BEGIN SOLUTION a2
        return -grad
        # END SOLUTION a2


class PowConstant(Function):
    """z = a^p for a constant exponent p;   dz/da = p * a^(p-1)"""

    def forward(self, a, exponent):
        self.save_for_backward(a)
        self.exponent = exponent
        return a**exponent

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (a,) = self.saved
        p = self.exponent
        if p == 0:  # a^0 = 1 is constant; p * a^(p-1) would be 0 * inf = NaN at a = 0
            return array_module(a).zeros_like(a)
        if p == 2:
            return grad * 2 * a
        return grad * p * a ** (p - 1)
        # END SOLUTION a2


def pow(base: Tensor, exponent) -> Tensor:
    """base ** exponent. A tensor exponent goes through exp(exponent * log(base)), whose
    gradient with respect to the exponent, a^b log a, needs base > 0."""
    if isinstance(exponent, numbers.Number) and not isinstance(exponent, bool):
        return PowConstant.apply(base, exponent=exponent)
    exponent = lift(exponent, base)
    return Exp.apply(Mul.apply(exponent, Log.apply(base)))


class Exp(Function):
    """z = e^a;   dz/da = e^a = z   (saves the output, not the input)"""

    def forward(self, a):
        out = array_module(a).exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (out,) = self.saved
        return grad * out
        # END SOLUTION a2


class Log(Function):
    """z = ln a;   dz/da = 1 / a"""

    def forward(self, a):
        self.save_for_backward(a)
        return array_module(a).log(a)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (a,) = self.saved
        return grad / a
        # END SOLUTION a2


class Sqrt(Function):
    """z = sqrt(a);   dz/da = 1 / (2 sqrt(a)) = 1 / (2 z)"""

    def forward(self, a):
        out = array_module(a).sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (out,) = self.saved
        return grad / (2 * out)
        # END SOLUTION a2


class Abs(Function):
    """z = |a|;   dz/da = sign(a)  (0 at a = 0)"""

    def forward(self, a):
        self.save_for_backward(a)
        return abs(a)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (a,) = self.saved
        return grad * array_module(a).sign(a)
        # END SOLUTION a2


class Tanh(Function):
    """z = tanh(a);   dz/da = 1 - z^2"""

    def forward(self, a):
        out = array_module(a).tanh(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (out,) = self.saved
        return grad * (1 - out * out)
        # END SOLUTION a2


def stable_sigmoid(a):
    """1 / (1 + e^-a) on a raw array, as 1 / (1 + e^-|a|) or e^-|a| / (1 + e^-|a|) by the sign
    of a, so exp never overflows for large |a|."""
    xp = array_module(a)
    e = xp.exp(-abs(a))  # in (0, 1]
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    """z = 1 / (1 + e^-a)   (F5, computed by ``stable_sigmoid``);   dz/da = z (1 - z)"""

    def forward(self, a):
        out = stable_sigmoid(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (out,) = self.saved
        return grad * out * (1 - out)
        # END SOLUTION a2


class ReLU(Function):
    """z = max(0, a)   (F6);   dz/da = 1 where a > 0, else 0"""

    def forward(self, a):
        out = array_module(a).maximum(a, 0)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (out,) = self.saved
        return grad * (out > 0)
        # END SOLUTION a2


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    """Gaussian error linear unit, z = a * Phi(a), Phi the standard normal CDF.

    exact:  Phi(a) = (1 + erf(a / sqrt 2)) / 2;   dz/da = Phi(a) + a * phi(a),
            phi(a) = exp(-a^2 / 2) / sqrt(2 pi)
    tanh:   z = a/2 * (1 + tanh(u)),  u = sqrt(2/pi) (a + 0.044715 a^3)   (GPT-2's approximation)
            dz/da = (1 + t)/2 + a/2 * (1 - t^2) * sqrt(2/pi) (1 + 3 * 0.044715 a^2),  t = tanh(u)
    The exact form keeps Phi(a) for backward: erf costs more than all the rest together, and
    computing it again (as PyTorch does, to save memory) makes a small GPT's step ~7% slower.
    Fast version: fast/cpu/elementwise.py.
    """

    def forward(self, a, approximate="none"):
        self.approximate = approximate
        if approximate == "tanh":
            t = array_module(a).tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a**3))
            self.save_for_backward(a, t)
            return 0.5 * a * (1 + t)
        cdf = 0.5 * (1 + erf(a / _SQRT_2))  # Phi(a)
        self.save_for_backward(a, cdf)
        return a * cdf

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, saved = self.saved
        if self.approximate == "tanh":
            t, du_da = saved, _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return grad * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * du_da)
        # Phi(a) + a phi(a), with phi(a) = exp(-a^2 / 2) / sqrt(2 pi)
        return grad * (saved + a * array_module(a).exp(-0.5 * a * a) * _INV_SQRT_2PI)
        # END SOLUTION a2


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    check_float("gelu", "input", x.data)
    return GELU.apply(x, approximate=approximate)


class Maximum(Function):
    """z = max(a, b);   the gradient goes to the larger input, split in half on ties"""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return broadcasting("maximum", array_module(a, b).maximum, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        a, b = self.saved
        share_a = array_module(a, b).add(a > b, a >= b, dtype=grad.dtype) * 0.5  # 1, 1/2 or 0
        return grad * share_a, grad * (1 - share_a)
        # END SOLUTION a2


def maximum(a, b) -> Tensor:
    a = a if isinstance(a, Tensor) else lift(a, b)
    return Maximum.apply(a, lift(b, a))


class Where(Function):
    """z = a where condition else b;   dz/da = condition,  dz/db = not condition"""

    def forward(self, a, b, condition):
        self.save_for_backward(condition)
        return array_module(a, b).where(condition, a, b)

    def backward(self, grad):
        # BEGIN SOLUTION a2
        (condition,) = self.saved
        xp = array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        return xp.where(condition, grad, zero), xp.where(condition, zero, grad)
        # END SOLUTION a2


def where(condition, a, b) -> Tensor:
    """Elementwise choice: a where condition is true, else b (condition is not differentiated)."""
    condition = condition.data if isinstance(condition, Tensor) else condition
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got {describe(condition)}")
    a = a if isinstance(a, Tensor) else lift(a, b)
    return Where.apply(a, lift(b, a), condition=condition)


class SiLU(Function):
    """Sigmoid linear unit (swish, Ramachandran et al. 2017; Elfwing et al. 2018):

        z = a * sigmoid(a);   dz/da = s + a s (1 - s) = s (1 + a (1 - s)),  s = sigmoid(a)
    Saves s: its exp is the costly part, and the gradient needs it with a.
    """

    def forward(self, a):
        check_float("silu", "input", a)
        s = stable_sigmoid(a)
        self.save_for_backward(a, s)
        return a * s

    def backward(self, grad):
        a, s = self.saved
        return grad * (s * (1 + a * (1 - s)))


def check_swiglu_inputs(gate, up) -> None:
    check_float("swiglu", "gate", gate)
    check_float("swiglu", "up", up)
    if gate.shape != up.shape:
        raise ValueError(f"swiglu: gate is {describe(gate)} and up {describe(up)}; expected the same shape")


class SwiGLUGate(Function):
    """SwiGLU's gated product in one node (Shazeer 2020), with s = sigmoid(a):

        z = silu(a) * b = a s b;   dz/da = b s (1 + a (1 - s)),  dz/db = silu(a) = a s
    The same operations in the same order as silu(a) * b composed, so the same numbers; it keeps
    a, b and s for backward where the composition keeps a, s, silu(a) and b.
    """

    def forward(self, a, b):
        check_swiglu_inputs(a, b)
        s = stable_sigmoid(a)
        self.save_for_backward(a, b, s)
        return a * s * b

    def backward(self, grad):
        a, b, s = self.saved
        need_a, need_b = self.needs_input_grad
        grad_a = grad * b * (s * (1 + a * (1 - s))) if need_a else None
        grad_b = grad * (a * s) if need_b else None
        return grad_a, grad_b
