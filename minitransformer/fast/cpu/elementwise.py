"""The exact GELU, SiLU and SwiGLU's gate silu(a) * b as two compiled kernels each (one pass over memory each way, erf and
exp written out as polynomials: kernels.py, decoder_kernels.py), in row blocks on every core.

The references are ``GELU``, ``SiLU`` and ``SwiGLUGate`` in ops/elementwise.py. NumPy makes about twenty passes over the
array for the same formula, and SciPy's float32 erf alone costs ~12 ns a number. The kernels'
erf is within 1.8e-7 of the exact one, so outputs agree with the reference to float32
rounding. GPT-2's tanh form stays the reference's (a few NumPy passes, no erf).
"""

from __future__ import annotations

import numpy as np

from ...dispatch import register
from ...ops.elementwise import GELU, SiLU, SwiGLUGate, check_swiglu_inputs
from ...ops.validate import check_float
from . import decoder_kernels, kernels
from .parallel import parallel_rows


def exact_form(a, approximate="none") -> bool:
    return approximate == "none"


@register(GELU, "cpu.gelu", when=exact_form, available=kernels.compiled_available)
class CompiledGELU(GELU):
    def forward(self, a, approximate="none"):
        self.approximate = approximate
        flat_a = np.ascontiguousarray(a).reshape(-1)
        cdf, out = np.empty_like(flat_a), np.empty_like(flat_a)  # Phi(a) and z = a Phi(a)
        parallel_rows(lambda rows: kernels.gelu_forward(flat_a[rows], cdf[rows], out[rows]),
                      flat_a.size, 1)
        self.save_for_backward(flat_a, cdf)
        return out.reshape(a.shape)

    def backward(self, grad):
        flat_a, cdf = self.saved
        flat_grad = np.ascontiguousarray(grad, dtype=flat_a.dtype).reshape(-1)
        grad_a = np.empty_like(flat_a)
        parallel_rows(lambda rows: kernels.gelu_backward(flat_a[rows], cdf[rows], flat_grad[rows],
                                                         grad_a[rows]), flat_a.size, 1)
        return grad_a.reshape(grad.shape)


def elementwise(kernel, *arrays):
    """kernel(*flat row blocks of ``arrays``) on every core: the arrays as one flat row each."""
    parallel_rows(lambda rows: kernel(*(a[rows] for a in arrays)), arrays[0].size, 1)


@register(SiLU, "cpu.silu", available=kernels.compiled_available)
class CompiledSiLU(SiLU):
    """Saves x and sigmoid(x), as the reference does."""

    def forward(self, a):
        check_float("silu", "input", a)
        flat_a = np.ascontiguousarray(a).reshape(-1)
        sigmoid, out = np.empty_like(flat_a), np.empty_like(flat_a)
        elementwise(decoder_kernels.silu_forward, flat_a, sigmoid, out)
        self.save_for_backward(flat_a, sigmoid)
        return out.reshape(a.shape)

    def backward(self, grad):
        flat_a, sigmoid = self.saved
        flat_grad = np.ascontiguousarray(grad, dtype=flat_a.dtype).reshape(-1)
        grad_a = np.empty_like(flat_a)
        elementwise(decoder_kernels.silu_backward, flat_a, sigmoid, flat_grad, grad_a)
        return grad_a.reshape(grad.shape)


@register(SwiGLUGate, "cpu.swiglu", available=kernels.compiled_available)
class CompiledSwiGLUGate(SwiGLUGate):
    """Saves a, b and sigmoid(a), as the reference does."""

    def forward(self, a, b):
        check_swiglu_inputs(a, b)
        flat_a, flat_b = (np.ascontiguousarray(t).reshape(-1) for t in (a, b))
        sigmoid, out = np.empty_like(flat_a), np.empty_like(flat_a)
        elementwise(decoder_kernels.swiglu_forward, flat_a, flat_b, sigmoid, out)
        self.save_for_backward(flat_a, flat_b, sigmoid)
        return out.reshape(a.shape)

    def backward(self, grad):
        flat_a, flat_b, sigmoid = self.saved
        flat_grad = np.ascontiguousarray(grad, dtype=flat_a.dtype).reshape(-1)
        grad_a, grad_b = np.empty_like(flat_a), np.empty_like(flat_a)
        elementwise(decoder_kernels.swiglu_backward, flat_a, flat_b, sigmoid, flat_grad, grad_a, grad_b)
        need_a, need_b = self.needs_input_grad
        return (grad_a.reshape(grad.shape) if need_a else None), (grad_b.reshape(grad.shape) if need_b else None)
