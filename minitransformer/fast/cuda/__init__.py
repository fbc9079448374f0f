"""CUDA implementations: CuPy kernels (kernels.py) for the ops that a training step spends its
time in on a GPU, registered with ``device="cuda"`` as the CPU ones are with ``"cpu"``.

**Off by default.** No line of this CUDA code has run on a real GPU yet: until the prepared
check (benchmarks/gpu_check.sh) has passed on one, every registration here is available only
when ``MINITRANSFORMER_CUDA_KERNELS=1`` is set, and 'cuda' runs the reference ops on CuPy.
Their parity tests (tests/fast/test_cuda_parity.py, marked ``gpu``) run the launch code
against Python fallbacks of the kernels on the emulated device in CI, and the CUDA code itself
on a GPU.
"""

import importlib
import importlib.util
import os

OPT_IN = "MINITRANSFORMER_CUDA_KERNELS"


def kernels_enabled() -> bool:
    """Whether the CUDA kernels may run: only on the explicit opt-in ``MINITRANSFORMER_CUDA_KERNELS=1``
    (read on every call, so a test or a benchmark can turn them on and off)."""
    setting = os.environ.get(OPT_IN, "0").strip() or "0"
    if setting not in ("0", "1"):
        raise ValueError(f"{OPT_IN} is {setting!r}; expected 0 or 1")
    return setting == "1"


MODULES = ("adam", "attention", "elementwise", "embedding", "normalization", "softmax")

for _name in MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")
