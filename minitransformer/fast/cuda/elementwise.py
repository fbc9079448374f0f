"""The exact GELU on a GPU as two elementwise CUDA kernels (kernels.gelu_forward/backward):
one pass each way where CuPy's formula makes about ten. CUDA's erff is within 2 ulp.

The reference is ``GELU`` in ops/elementwise.py; the tanh form stays the reference's. Off
unless MINITRANSFORMER_CUDA_KERNELS=1.
"""

from __future__ import annotations

from . import kernels, kernels_enabled
from ...dispatch import register
from ...ops.elementwise import GELU


def exact_form(a, approximate="none") -> bool:
    return approximate == "none"


@register(GELU, "cuda.gelu", device="cuda", when=exact_form, available=kernels_enabled)
class CudaGELU(GELU):
    def forward(self, a, approximate="none"):
        self.approximate = approximate
        cdf, out = kernels.gelu_forward()(a)  # Phi(a) and z = a Phi(a)
        self.save_for_backward(a, cdf)
        return out

    def backward(self, grad):
        a, cdf = self.saved
        return kernels.gelu_backward()(a, cdf, grad.astype(a.dtype, copy=False))
