"""A GPT language model, top to bottom in the order data flows (after nanoGPT's model.py).

config -> causal self-attention -> MLP -> block -> the model. The parameter names and shapes
are exactly nanoGPT's (GPT-2 naming), so its state dicts load here and ours load there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor, arange
from .attention import KVCache, LayerCache, causal_attention
from .generation import GenerationMixin
from .layers import Dropout, Embedding, LayerNorm, Linear
from .module import Module, ModuleDict, ModuleList, Parameter, new_parameter


@dataclass
class GPTConfig:
    block_size: int = 1024  # longest context, in tokens
    vocab_size: int = 50304  # GPT-2's 50257 rounded up to a multiple of 64
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers
    mlp: str = "paper"  # "paper": GELU FFN; "document": F16 as the source document writes it
    gelu_approximate: str = "none"  # "tanh": the tanh approximation GPT-2 was trained with ("gelu_new")

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.mlp not in ("paper", "document"):
            raise ValueError(f"GPTConfig: mlp must be 'paper' or 'document', got {self.mlp!r}")
        if self.gelu_approximate not in ("none", "tanh"):
            raise ValueError(f"GPTConfig: gelu_approximate must be 'none' or 'tanh', got {self.gelu_approximate!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(Module):
    """Multi-head self-attention where position t attends to positions 0..t only.

    One Linear makes queries, keys and values for all heads at once (c_attn), each head
    computes softmax(q k^T / sqrt(hs)) v (F14) on its own slice of the channels, and c_proj
    mixes the heads' outputs back together. With a ``cache`` (generation), x holds only the new
    tokens: their keys and values join those of the earlier ones kept there.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = config.dropout
        self.resid_dropout = Dropout(config.dropout)
        self.n_head, self.n_embd = config.n_head, config.n_embd

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        # BEGIN SOLUTION a4
        q, k, v = self.c_attn(x).split(3, axis=2)  # 3 x (B, T, C)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # 3 x (B, nh, T, hs)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, nh, T_cached + T, hs)
        dropout_p = self.attn_dropout if self.training else 0.0
        y = causal_attention(q, k, v, dropout_p=dropout_p)  # (B, nh, T, hs)
        return self.resid_dropout(self.c_proj(merge_heads(y)))  # (B, T, C)
        # END SOLUTION a4


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(B, T, C) -> (B, nh, T, hs), hs = C / nh: each head's slice of the channels becomes a
    sequence of its own, so one batched attention call serves every head."""
    # BEGIN SOLUTION a4
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)
    # END SOLUTION a4


def merge_heads(y: Tensor) -> Tensor:
    """(B, nh, T, hs) -> (B, T, nh * hs): the heads' outputs side by side again (the inverse of
    ``split_heads``)."""
    # BEGIN SOLUTION a4
    B, nh, T, hs = y.shape
    return y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
    # END SOLUTION a4


class MLP(Module):
    """The position-wise feed-forward network.

    variant "paper" (GPT-2, Vaswani et al.):   FFN(x) = W_2 GELU(W_1 x + b_1) + b_2
    variant "document" (F16 as 004 section 4.1 writes it): FFN(x) = ReLU(W_2 ReLU(W_1 x + b_1)) + b_2
    The document's outer ReLU clips every negative value before it reaches the residual
    stream, so a block can only ever add non-negative amounts to it (see lessons/11).
    """

    def __init__(self, config: GPTConfig, variant: str | None = None):
        super().__init__()
        self.variant = variant or config.mlp
        self.gelu_approximate = config.gelu_approximate
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.variant == "document":
            hidden = F.relu(self.c_fc(x))  # (B, T, 4C)
            out = F.relu(F.linear(hidden, self.c_proj.weight))
            out = out + self.c_proj.bias if self.c_proj.bias is not None else out
        else:
            out = self.c_proj(F.gelu(self.c_fc(x), self.gelu_approximate))
        return self.dropout(out)


class Block(Module):
    """A pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(GenerationMixin, Module):
    """Token + position embeddings, n_layer blocks, a final LayerNorm and a language-model
    head whose weight is the token embedding's (weight tying)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = ModuleDict(dict(
            wte=Embedding(config.vocab_size, config.n_embd),
            wpe=Embedding(config.block_size, config.n_embd),
            drop=Dropout(config.dropout),
            h=ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()
        self.transformer.wte.weight = self.lm_head.weight  # one (V, C) matrix reads and writes tokens

    def _init_weights(self) -> None:
        """GPT-2 initialisation: weights N(0, 0.02), biases 0, and the projections that write
        into the residual stream N(0, 0.02 / sqrt(2 n_layer)), so the stream's variance does
        not grow with depth (each block adds two such projections)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                param.data = new_parameter(param.shape, std=residual_std).data
            elif name.endswith(".bias") and "ln_" not in name:
                param.data = np.zeros(param.shape, dtype=param.dtype)
            elif name.endswith(".weight") and "ln_" not in name:
                param.data = new_parameter(param.shape, std=0.02).data

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embeddings (as nanoGPT reports)."""
        total = super().num_parameters()
        return total - self.transformer.wpe.weight.size if non_embedding else total

    def hidden_states(self, idx, cache: KVCache | None = None) -> Tensor:
        """idx (B, T) token ids -> the final LayerNorm's output (B, T, C): the features the
        language-model head reads (and a classification head can read too). With a ``cache``
        the tokens continue the ones it holds: their positions start at ``cache.length``."""
        ids = idx.data if isinstance(idx, Tensor) else idx
        if ids.ndim != 2:
            raise ValueError(f"GPT: idx must be (B, T) token ids, got shape {tuple(ids.shape)}")
        B, T = ids.shape
        start = 0 if cache is None else cache.length
        if start + T > self.config.block_size:
            raise ValueError(
                f"GPT: cannot forward a sequence of length {start + T}: block_size is only "
                f"{self.config.block_size} (crop the context, as generate() does)"
            )
        pos = arange(start, start + T, device=backend.device_of(ids)).data  # (T,)
        tok_emb = self.transformer.wte(ids)  # (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if cache is None else cache.layers[i])
        return self.transformer.ln_f(x)

    def forward(self, idx, targets=None, cache: KVCache | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) token ids -> (logits, loss). With targets (B, T): logits (B, T, V) and
        the mean cross-entropy of predicting each next token (F7, targets -1 ignored);
        without: logits (B, 1, V) for the last position only (all that sampling needs).
        ``cache``: a KVCache that idx continues (generation), filled with idx's keys and values."""
        x = self.hidden_states(idx, cache)  # (B, T, C)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None  # (B, 1, V)
        targets = targets.data if isinstance(targets, Tensor) else targets
        logits = self.lm_head(x)  # (B, T, V)
        return logits, F.cross_entropy(logits, targets, ignore_index=-1)

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False) -> None:
        """As Module.load_state_dict; nanoGPT's causal-mask buffers (``attn.bias``, present
        in checkpoints from PyTorch without flash attention) are not weights and are skipped."""
        weights = {name: value for name, value in state.items()
                   if not name.endswith((".attn.bias", ".attn.masked_bias"))}
        super().load_state_dict(weights, strict, assign)

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context length (e.g. to fine-tune a pretrained model on shorter text)."""
        if not 0 < block_size <= self.config.block_size:
            raise ValueError(
                f"crop_block_size: {block_size} must be in [1, {self.config.block_size}]"
            )
        self.config.block_size = block_size
        self.transformer.wpe.weight = Parameter(self.transformer.wpe.weight.data[:block_size].copy())

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.95),
                             device_type: str | None = None):
        """AdamW with nanoGPT's two parameter groups: weight decay on matrices (every >= 2-D
        weight: embeddings and Linear weights), none on biases and LayerNorm gains. Frozen
        parameters (``requires_grad`` False, e.g. the base of a LoRA model) are left out.

        ``device_type`` is accepted so that nanoGPT's call ``configure_optimizers(wd, lr, betas,
        device_type)`` works unchanged; nanoGPT uses it to pick a fused CUDA AdamW, which has
        no counterpart here."""
        from ..optim import AdamW  # optim sits beside nn; imported here to keep nn free of it

        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return AdamW(groups, lr=learning_rate, betas=betas)
