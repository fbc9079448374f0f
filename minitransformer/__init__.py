"""minitransformer: a from-scratch transformer framework you can read in an evening.

    import minitransformer as mt
    x = mt.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # array([[2., 4.]], dtype=float32)
"""

import os
import sys

# before NumPy loads OpenBLAS: idle BLAS threads spin ~1 ms (2^22 cycles), not ~100 ms, so
# they leave the cores to our elementwise threads (see minitransformer/fast/cpu/parallel.py). Once
# NumPy is loaded the variable is read already; don't leave it for child processes then.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")
# one of several ranks started by mpiexec (distributed.py): one thread each, unless asked
# otherwise, so N ranks on N cores do not fight over them
if any(os.environ.get(name, "1") not in ("", "1") for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")):
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                  "MINITRANSFORMER_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

# MINITRANSFORMER_EMULATE_CUDA=1: 'cuda' is the emulated device of the tests
# (testing/fake_cupy.py), installed as ``cupy`` before backend.py imports CuPy
from .testing import emulate_cuda_if_asked  # isort: skip

emulate_cuda_if_asked()

# tensor first: it pulls in autograd and the ops once Tensor exists (they all build on it)
from .tensor import Tensor, arange, ones, rand, randn, tensor, zeros  # isort: skip
from .autograd import Function, detect_anomaly, is_grad_enabled, no_grad
from .backend import cupy_available, manual_seed
from .gradcheck import GradcheckError, gradcheck
from .dispatch import get_kernels, set_kernels
from .ops.elementwise import maximum, where
from .ops.shape import concat, split, stack
from . import fast  # noqa: E402,F401  (registers the fast implementations; nothing in the stack imports it)
from .fast.cpu.parallel import get_num_threads, keep_freed_memory, set_num_threads

keep_freed_memory()

__version__ = "0.1.0"

__all__ = [
    "Function", "GradcheckError", "Tensor", "arange", "concat", "cupy_available", "detect_anomaly",
    "get_kernels", "get_num_threads", "gradcheck", "is_grad_enabled", "manual_seed", "maximum",
    "no_grad", "ones", "rand", "randn", "set_kernels", "set_num_threads", "split", "stack",
    "tensor", "where", "zeros",
]
