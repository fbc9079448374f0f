"""The emulated CUDA device (minitransformer/testing/fake_cupy.py) behaves as CuPy where the
framework could go wrong: no implicit host copies, no host/device mixing, 0-d results,
checked kernel launches. These run without installing it as ``cupy`` (no GPU lane needed)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from minitransformer.testing import fake_cupy as cp


def test_device_arrays_refuse_every_implicit_conversion_to_numpy():
    x = cp.asarray(np.arange(6.0).reshape(2, 3))
    for convert in (np.asarray, np.array, np.exp, np.sum, lambda a: np.concatenate([a, a]),
                    lambda a: np.add.at(a, [0], 1.0), lambda a: np.where(a > 1, a, 0), float, int):
        with pytest.raises(TypeError):
            convert(x)
    with pytest.raises(TypeError, match="unsupported type <class 'numpy.ndarray'>"):
        x + np.ones(3)
    with pytest.raises(TypeError, match="unsupported type"):
        cp.maximum(x, np.ones(3))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 0)


def test_copies_back_are_explicit_and_results_stay_on_the_device():
    host = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = cp.asarray(host)
    assert cp.asarray(x) is x and isinstance(x, cp.ndarray) and not isinstance(x, np.ndarray)
    host[0, 0] = 99  # asarray copied
    np.testing.assert_array_equal(x.get(), np.arange(6.0).reshape(2, 3))
    assert type(cp.asnumpy(x)) is np.ndarray and cp.get_array_module(x) is cp
    assert cp.get_array_module(host) is np
    total = x.sum()  # a 0-d device array, as in CuPy, not a number
    assert isinstance(total, cp.ndarray) and total.shape == () and float(total) == 15.0
    assert isinstance(x[0, 1], cp.ndarray) and x[0, 1].item() == 1.0
    exps = cp.calls["cupy.exp"]
    assert isinstance(cp.exp(x), cp.ndarray) and isinstance(x @ x.T, cp.ndarray)
    assert cp.calls["cupy.exp"] == exps + 1  # the record of what ran on the device
    assert isinstance(2.0 * x + np.float32(1), cp.ndarray)
    x[0] = np.array([7.0, 8.0, 9.0])  # host to device in an assignment is allowed
    np.testing.assert_array_equal(cp.asnumpy(x[0]), [7, 8, 9])
    restored = pickle.loads(pickle.dumps(x))
    assert isinstance(restored, cp.ndarray)
    np.testing.assert_array_equal(restored.get(), x.get())


def test_runtime_random_and_cupyx():
    assert cp.cuda.runtime.getDeviceCount() == 1
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        cp.cuda.Device(1)
    a, b = cp.random.default_rng(3).random(4, dtype=np.float32), cp.random.default_rng(3).random(4, dtype=np.float32)
    assert isinstance(a, cp.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a.get(), b.get())
    target = cp.zeros(3)
    cp.cupyx.scatter_add(target, cp.asarray([0, 0, 2]), cp.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target.get(), [3, 0, 3])
    np.testing.assert_allclose(cp.cupyx.scipy.special.erf(cp.asarray([0.0, 1.0])).get(), [0, 0.8427007929])
    with pytest.raises(TypeError):
        cp.cupyx.scipy.special.erf(np.zeros(2))


SOURCE = r'''
extern "C" __global__ void scale(const float* x, float* y, const int n, const float factor) { }
'''


def test_raw_kernels_check_every_launch_against_the_cuda_signature():
    calls = []
    cp.emulates("scale")(lambda grid, block, x, y, n, factor, shared_mem: calls.append((grid, block)) or
                         y.__setitem__(slice(None), x * factor))
    kernel = cp.RawKernel(SOURCE, "scale")
    x, y = cp.asarray(np.ones(4, np.float32)), cp.zeros(4, dtype=np.float32)
    kernel((1,), (4,), (x, y, np.int32(4), np.float32(2)))
    np.testing.assert_array_equal(y.get(), [2, 2, 2, 2])
    assert calls == [((1, 1, 1), (4, 1, 1))]
    bad_launches = {
        "Python number": (x, y, 4, np.float32(2)),  # CuPy would pass a 64-bit value
        "float64 scalar": (x, y, np.int32(4), np.float64(2)),
        "host array": (np.ones(4, np.float32), y, np.int32(4), np.float32(2)),
        "float64 array": (cp.ones(4), y, np.int32(4), np.float32(2)),
        "too few": (x, y, np.int32(4)),
    }
    for why, args in bad_launches.items():
        with pytest.raises(TypeError):
            kernel((1,), (4,), args)
    with pytest.raises(ValueError, match="not C-contiguous"):
        kernel((1,), (2,), (cp.ones((2, 4), dtype=np.float32).T, y, np.int32(4), np.float32(2)))
    with pytest.raises(ValueError, match="at most 1024"):
        kernel((1,), (2048,), (x, y, np.int32(4), np.float32(2)))
    with pytest.raises(NotImplementedError, match="no Python fallback for kernel 'missing'"):
        cp.RawKernel('extern "C" __global__ void missing(float* x) {}', "missing")((1,), (1,), (y,))


def test_elementwise_kernels_check_types_and_write_outputs_in_place():
    cp.emulates("axpy")(lambda a, x, y, out: out.__setitem__(Ellipsis, a * x + y))
    kernel = cp.ElementwiseKernel("float32 a, T x, T y", "T out", "out = a * x + y", "axpy")
    x, y = cp.ones((2, 3), dtype=np.float32), cp.ones(3, dtype=np.float32)
    out = kernel(np.float32(2), x, y)
    assert isinstance(out, cp.ndarray) and out.shape == (2, 3)
    np.testing.assert_array_equal(out.get(), np.full((2, 3), 3.0))
    in_place = cp.zeros((2, 3), dtype=np.float32)
    kernel(np.float32(1), x, y, in_place)
    np.testing.assert_array_equal(in_place.get(), np.full((2, 3), 2.0))
    with pytest.raises(TypeError, match="T was float32"):
        kernel(np.float32(1), x, cp.ones(3))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        kernel(np.float32(1), np.ones(3, np.float32), y)


def test_the_switch_installs_it_as_cupy_before_the_backend_imports():
    code = ("import minitransformer as mt, cupy, numpy as np; from minitransformer import backend; "
            "assert cupy.EMULATED and backend.cupy_available(); "
            "x = mt.randn(2, 3, device='cuda'); assert x.device == 'cuda' and type(x.numpy()) is np.ndarray; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MINITRANSFORMER_EMULATE_CUDA": "1"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-c", "import minitransformer"], capture_output=True, text=True,
                         env={**os.environ, "MINITRANSFORMER_EMULATE_CUDA": "yes"})
    assert bad.returncode != 0 and "MINITRANSFORMER_EMULATE_CUDA is 'yes'; expected 0 or 1" in bad.stderr
