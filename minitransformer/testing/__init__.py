"""Testing aids that are not part of the framework's runtime: the emulated CUDA device
(``fake_cupy``, switched on with ``MINITRANSFORMER_EMULATE_CUDA=1``) and the Python fallbacks
of the CUDA kernels it runs (``cuda_emulations``)."""
