"""Testing aids that are not part of the framework's runtime: the emulated CUDA device
(``fake_cupy``, switched on with ``MINITRANSFORMER_EMULATE_CUDA=1``) and the Python fallbacks
of the CUDA kernels it runs (``cuda_emulations``)."""

import os

EMULATE_VARIABLE = "MINITRANSFORMER_EMULATE_CUDA"


def emulate_cuda_if_asked() -> bool:
    """With MINITRANSFORMER_EMULATE_CUDA=1, install the emulated device as ``cupy`` (the
    package's ``__init__`` calls this before backend.py imports CuPy); True if it did."""
    setting = os.environ.get(EMULATE_VARIABLE, "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(f"{EMULATE_VARIABLE} is {setting!r}; expected 0 or 1")
    if setting != "1":
        return False
    from . import fake_cupy

    fake_cupy.install()
    return True
