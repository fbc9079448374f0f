"""The basic layers: linear, embedding, layer norm and RMS norm, dropout, the activations, the
SwiGLU feed-forward network and rotary position embeddings."""

from __future__ import annotations

import math

from .. import functional as F
from ..tensor import Tensor
from .module import Module, check_input, new_parameter


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features) (PyTorch's layout, so PyTorch
    state dicts load without transposes). Initialised U(-1/sqrt(in), 1/sqrt(in)) as PyTorch does."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = new_parameter((out_features, in_features), bound=bound)
        self.bias = new_parameter((out_features,), bound=bound) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of num_embeddings vectors; ids (any shape) -> their rows (F15). Init N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = new_parameter((num_embeddings, embedding_dim), std=1.0)

    def forward(self, ids) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise the last axis to mean 0, variance 1, then scale and shift (bias optional)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.normalized_shape, self.eps = normalized_shape, eps
        self.weight = new_parameter((normalized_shape,), fill=1.0)
        self.bias = new_parameter((normalized_shape,), fill=0.0) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.normalized_shape)
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(Module):
    """Scale the last axis to root-mean-square 1, then by a learned gain (no centring, no bias):
    the norm of Llama, Qwen, Mistral and Gemma."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6):
        super().__init__()
        self.normalized_shape, self.eps = normalized_shape, eps
        self.weight = new_parameter((normalized_shape,), fill=1.0)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.normalized_shape)
        return F.rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class SwiGLU(Module):
    """The gated feed-forward network of Llama (Shazeer 2020, "GLU variants improve transformer"):

        SwiGLU(x) = W_2 (silu(W_1 x) * W_3 x)
    named as in Hugging Face's Llama: W_1 = gate_proj, W_3 = up_proj, W_2 = down_proj. Three
    matrices of C x H: with H = 8C/3 it has the parameters of a GELU FFN with H = 4C.
    """

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False):
        super().__init__()
        self.gate_proj = Linear(dim, hidden_dim, bias=bias)
        self.up_proj = Linear(dim, hidden_dim, bias=bias)
        self.down_proj = Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.swiglu(self.gate_proj(x), self.up_proj(x)))  # (..., H) -> (..., C)


class RotaryEmbedding(Module):
    """Rotary position embeddings for heads of size ``head_dim`` (F.rotary_embedding): no
    weights, only the settings a checkpoint was trained with."""

    def __init__(self, head_dim: int, theta: float = 10000.0, interleaved: bool = False,
                 scaling: dict | None = None):
        super().__init__()
        if head_dim <= 0 or head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be a positive even number, got {head_dim}")
        F.rotary_frequencies(head_dim, theta, scaling)  # checks theta and scaling now, not at the first call
        self.head_dim, self.theta, self.interleaved, self.scaling = head_dim, theta, interleaved, scaling

    def forward(self, x: Tensor, positions=None) -> Tensor:
        """x (..., T, head_dim) -> the same, rotated; positions (T,) or (B, T), default 0..T-1."""
        check_input(self, x, self.head_dim)
        return F.rotary_embedding(x, positions, self.theta, self.interleaved, self.scaling)

    def extra_repr(self) -> str:
        return f"{self.head_dim}, theta={self.theta}, interleaved={self.interleaved}, scaling={self.scaling}"


class Dropout(Module):
    """Zero values with probability p while training (scaling the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)
