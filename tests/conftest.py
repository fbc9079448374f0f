"""Shared test setup: the hypothesis profiles and the backend fixture.

Profiles: "ci" (derandomized, no deadline) is the default, so every run of the suite, in CI
or not, tries the same examples; "device" is "ci" with 10 examples, for CI's run of the `gpu`
tests on the emulated device; "dev" draws fresh examples each run and "thorough" ten times
as many: pick one with HYPOTHESIS_PROFILE=ci|device|dev|thorough.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minitransformer as mt
from minitransformer import backend

# function_scoped_fixture: the xp fixture below returns a module and holds no state, so sharing
# it across the examples of one @given test is safe.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.function_scoped_fixture])
settings.register_profile("ci", derandomize=True, max_examples=40, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
# CI's run of the `gpu` tests on the emulated device: the same derandomized examples, fewer of
# them (the NumPy run has checked the math on 40; this run is about the device path)
settings.register_profile("device", derandomize=True, max_examples=10, print_blob=True, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ["numpy", pytest.param("cupy", marks=pytest.mark.gpu)]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module under test: NumPy always, CuPy when a GPU is present (else skipped)."""
    if request.param == "cupy":
        if not backend.cupy_available():
            pytest.skip("CuPy backend: no CuPy or no CUDA GPU on this machine")
        import cupy

        return cupy
    return np


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same framework RNG state."""
    mt.manual_seed(0)


TESTS = Path(__file__).resolve().parent
# the property and formula tests check the ops as written (ops/, optim/, the engine): they run
# the reference code alone; tests/fast proves the fast layer equal to it, and the rest (models,
# the CLI, the PyTorch cross-checks) run what users run, the fast layer included
REFERENCE_ONLY = ("formulas", "ops", "optim", "test_autograd.py", "test_tensor.py",
                  "test_functional_losses.py", "test_gradcheck.py")


@pytest.fixture(autouse=True)
def _reference_ops_for_property_tests(request):
    relative = Path(str(request.node.path)).resolve().relative_to(TESTS)
    if relative.parts[0] not in REFERENCE_ONLY:
        yield
        return
    previous = mt.get_kernels()
    mt.set_kernels("reference")
    try:
        yield
    finally:
        mt.set_kernels(previous)
