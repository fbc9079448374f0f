"""Every primitive differentiable op, one ``Function`` subclass each, grouped by family.

- ``elementwise``: arithmetic, exp/log/sqrt, activations (tanh, sigmoid, ReLU, GELU, SiLU), maximum, where
- ``reduce``: sum, mean, max, var over any axes
- ``matmul``: matrix products of any rank, and the fused linear layer
- ``shape``: reshape, transpose, indexing, concat, stack, split, broadcast_to, cast
- fused neural-net ops, each with a hand-derived backward: ``softmax`` (softmax, log-softmax),
  ``normalization`` (layer norm, RMS norm), ``loss`` (cross-entropy), ``embedding``, ``dropout``,
  ``attention`` (scaled dot-product attention), ``rotary`` (rotary position embeddings),
  ``conv`` (2-D convolution and max-pooling over images)
"""

from . import (  # noqa: F401
    attention,
    conv,
    dropout,
    elementwise,
    embedding,
    loss,
    matmul,
    normalization,
    reduce,
    rotary,
    shape,
    softmax,
)
