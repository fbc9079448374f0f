"""Shared test setup: the hypothesis profiles and the backend fixture.

Profiles: "ci" (derandomized, no deadline) is chosen automatically when the CI environment
variable is set, so CI runs are reproducible; "dev" (the default) draws fresh examples each run.
Pick one by hand with HYPOTHESIS_PROFILE=ci|dev|thorough.
"""

from __future__ import annotations

import os

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

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
