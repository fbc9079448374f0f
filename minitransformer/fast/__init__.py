"""The fast layer: faster implementations of the reference ops, beside the stack.

Each module here registers its implementations with ``minitransformer.dispatch.register`` for
the op and the conditions it handles; ``Function.apply`` picks them. ``cpu/`` holds the
numba-compiled, thread-parallel CPU implementations; ``cuda/`` the CuPy kernels for a GPU
(off by default until they have passed on a real GPU: MINITRANSFORMER_CUDA_KERNELS=1 turns them on).
Nothing in the stack imports this package: ``minitransformer/__init__.py`` loads it.
``mt.set_kernels("reference")`` turns it off; tests/fast/test_parity.py proves every
registration equal to its reference.
"""

from . import cpu, cuda  # noqa: F401
