"""A Llama-style decoder (Touvron et al. 2023; Llama 3, Qwen 2/3, Mistral and SmolLM share it), top
to bottom in the order data flows: config -> attention -> block -> the model.

What changed since GPT-2 (lessons/16): RMSNorm instead of LayerNorm, no biases, rotary position
embeddings on q and k instead of learned positions, grouped-query attention (fewer key/value
heads than query heads), a SwiGLU feed-forward network, optionally RMSNorm on q and k (Qwen 3).
The parameter names and shapes are those of Hugging Face's ``LlamaForCausalLM``
(``model.layers.0.self_attn.q_proj.weight``...), so its state dicts load one-to-one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from .attention import KVCache, LayerCache, causal_attention
from .generation import GenerationMixin
from .gpt import GPT
from .layers import Dropout, Embedding, Linear, RMSNorm, RotaryEmbedding, SwiGLU
from .module import Module, ModuleList, new_parameter


@dataclass
class LlamaConfig:
    block_size: int = 2048  # longest context, in tokens (max_position_embeddings)
    vocab_size: int = 32000
    n_layer: int = 12  # num_hidden_layers
    n_head: int = 12  # num_attention_heads
    n_kv_head: int | None = None  # num_key_value_heads: None = n_head (MHA); 1 = multi-query
    n_embd: int = 768  # hidden_size
    head_dim: int | None = None  # None = n_embd // n_head
    intermediate_size: int | None = None  # SwiGLU width; None = 8 n_embd / 3 rounded up to 8
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # Llama 3.1's, e.g. {"rope_type": "llama3", "factor": 8.0, ...}
    rope_interleaved: bool = False  # True: Meta's pairing of channels; False: Hugging Face's
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False  # lm_head shares the token embedding's matrix
    qk_norm: bool = False  # RMSNorm on every head's q and k before the rotation (Qwen 3)
    attention_bias: bool = False  # biases in q, k, v (Qwen 2 has them), never in o_proj
    dropout: float = 0.0

    def __post_init__(self):
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.head_dim is None and isinstance(self.n_embd, int) and isinstance(self.n_head, int) and self.n_head > 0:
            self.head_dim = self.n_embd // self.n_head
        if self.intermediate_size is None and isinstance(self.n_embd, int):
            self.intermediate_size = -(-8 * self.n_embd // 3 // 8) * 8
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd", "head_dim",
                     "intermediate_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"LlamaConfig: {name} must be a positive integer, got {value!r}")
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"LlamaConfig: n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head}): "
                "each key/value head serves a group of n_head / n_kv_head query heads"
            )
        if self.head_dim % 2:
            raise ValueError(f"LlamaConfig: head_dim must be even (rotary pairs), got {self.head_dim}")
        if not self.rms_norm_eps >= 0:
            raise ValueError(f"LlamaConfig: rms_norm_eps must be >= 0, got {self.rms_norm_eps}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LlamaConfig: dropout must be in [0, 1), got {self.dropout}")
        try:  # rope_theta and rope_scaling, checked as the rotary embedding will use them
            F.rotary_frequencies(self.head_dim, self.rope_theta, self.rope_scaling)
        except ValueError as error:
            raise ValueError(f"LlamaConfig: {error}") from None

    def to_dict(self) -> dict:
        return asdict(self)


class LlamaAttention(Module):
    """Causal self-attention with rotary positions and n_kv_head key/value heads.

    q_proj makes nh query heads, k_proj and v_proj only n_kv: a group of nh / n_kv query heads
    reads the same keys and values, which shrinks the KV cache by that factor (grouped-query
    attention; n_kv = 1 is multi-query, n_kv = nh the usual multi-head attention).
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        nh, n_kv, hs, C = config.n_head, config.n_kv_head, config.head_dim, config.n_embd
        self.q_proj = Linear(C, nh * hs, bias=config.attention_bias)
        self.k_proj = Linear(C, n_kv * hs, bias=config.attention_bias)
        self.v_proj = Linear(C, n_kv * hs, bias=config.attention_bias)
        self.o_proj = Linear(nh * hs, C, bias=False)
        if config.qk_norm:
            self.q_norm = RMSNorm(hs, config.rms_norm_eps)
            self.k_norm = RMSNorm(hs, config.rms_norm_eps)
        self.qk_norm = config.qk_norm
        self.n_head, self.n_kv_head, self.head_dim = nh, n_kv, hs
        self.attn_dropout = config.dropout
        self.resid_dropout = Dropout(config.dropout)

    def forward(self, x: Tensor, rotary: RotaryEmbedding, positions, cache: LayerCache | None = None) -> Tensor:
        B, T, _ = x.shape
        nh, n_kv, hs = self.n_head, self.n_kv_head, self.head_dim
        q = self.q_proj(x).reshape(B, T, nh, hs)
        k = self.k_proj(x).reshape(B, T, n_kv, hs)
        v = self.v_proj(x).reshape(B, T, n_kv, hs)
        if self.qk_norm:  # each head's q and k scaled to RMS 1 (times a gain): bounded scores
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))  # (B, heads, T, hs)
        q, k = rotary(q, positions), rotary(k, positions)  # position m turns q_m and k_m by m theta
        if cache is not None:
            k, v = cache.append(k, v)  # (B, n_kv, T_cached + T, hs): the rotated keys are kept
        dropout_p = self.attn_dropout if self.training else 0.0
        y = causal_attention(q, k, v, dropout_p=dropout_p, enable_gqa=n_kv != nh)  # (B, nh, T, hs)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
        return self.resid_dropout(self.o_proj(y))


class LlamaDecoderLayer(Module):
    """x + attn(rms_norm(x)), then x + swiglu(rms_norm(x))."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.mlp = SwiGLU(config.n_embd, config.intermediate_size)
        self.mlp_dropout = Dropout(config.dropout)

    def forward(self, x: Tensor, rotary: RotaryEmbedding, positions, cache: LayerCache | None = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rotary, positions, cache)
        return x + self.mlp_dropout(self.mlp(self.post_attention_layernorm(x)))


class LlamaModel(Module):
    """Token embeddings, n_layer decoder layers and a final RMSNorm (Hugging Face's ``model.``)."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.embed_tokens = Embedding(config.vocab_size, config.n_embd)
        self.layers = ModuleList(LlamaDecoderLayer(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta, config.rope_interleaved,
                                          config.rope_scaling)
        self.drop = Dropout(config.dropout)


class Llama(GenerationMixin, Module):
    """The Llama-style language model: ``model`` (LlamaModel) and the ``lm_head``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()
        if config.tie_word_embeddings:
            self.model.embed_tokens.weight = self.lm_head.weight

    def _init_weights(self) -> None:
        """Hugging Face's initialisation: every matrix N(0, 0.02), biases 0, norm gains 1."""
        for name, param in self.named_parameters():
            if name.endswith("norm.weight"):
                continue
            if name.endswith(".bias"):
                param.data = np.zeros(param.shape, dtype=param.dtype)
            else:
                param.data = new_parameter(param.shape, std=0.02).data

    def hidden_states(self, idx, cache: KVCache | None = None) -> Tensor:
        """idx (B, T) token ids -> the final norm's output (B, T, C); with a ``cache`` the tokens
        continue the ones it holds, at positions cache.length, cache.length + 1, ..."""
        ids = idx.data if isinstance(idx, Tensor) else idx
        if ids.ndim != 2:
            raise ValueError(f"Llama: idx must be (B, T) token ids, got shape {tuple(ids.shape)}")
        start = 0 if cache is None else cache.length
        T = ids.shape[1]
        if start + T > self.config.block_size:
            raise ValueError(
                f"Llama: cannot forward a sequence of length {start + T}: block_size is only "
                f"{self.config.block_size} (crop the context, as generate() does)"
            )
        positions = backend.array_module(ids).arange(start, start + T)  # (T,)
        x = self.model.drop(self.model.embed_tokens(ids))  # (B, T, C)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, self.model.rotary_emb, positions, None if cache is None else cache.layers[i])
        return self.model.norm(x)

    # the same as GPT's: (logits, loss) from the hidden states; AdamW decaying matrices only
    forward = GPT.forward
    configure_optimizers = GPT.configure_optimizers

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False) -> None:
        """As Module.load_state_dict. A tied checkpoint may leave out lm_head.weight (Hugging
        Face's safetensors files do): it is the embedding matrix then."""
        if self.config.tie_word_embeddings and "lm_head.weight" not in state and "model.embed_tokens.weight" in state:
            state = {**state, "lm_head.weight": state["model.embed_tokens.weight"]}
        super().load_state_dict(state, strict, assign)
