"""minitransformer's benchmark suites: ``python -m benchmarks --help``."""

# minitransformer before NumPy: it tunes OpenBLAS's idle threads, which only works before NumPy
# loads OpenBLAS (see minitransformer/fast/cpu/parallel.py); every user of the framework gets the same
import minitransformer  # noqa: F401  # isort: skip
