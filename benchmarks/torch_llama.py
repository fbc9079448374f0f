"""The reference model for the Llama step: a Llama-style decoder in PyTorch, written the way
Hugging Face's ``modeling_llama`` computes it, trimmed to what a training step runs (no cache,
no generation, no padding masks).

Same architecture and parameter names as ``minitransformer.nn.Llama`` (``model.layers.0.
self_attn.q_proj.weight``, ...), so ``load_state_dict`` takes our weights unchanged:
- RMSNorm: weight * (x * rsqrt(mean(x^2) + eps)), as LlamaRMSNorm (PyTorch's fused
  ``F.rms_norm`` where it exists, the same formula);
- rotary embeddings in the rotate-half form, x cos + rotate_half(x) sin, the angles m theta_i
  formed in float32 from inv_freq as LlamaRotaryEmbedding does;
- grouped-query attention through ``F.scaled_dot_product_attention(..., enable_gqa=True)``:
  what transformers' sdpa_attention_forward calls on PyTorch >= 2.5 when there is no mask
  (``use_gqa_in_sdpa``); older PyTorch repeats the key/value heads first (``repeat_kv``);
- the SwiGLU MLP down_proj(silu(gate_proj(x)) * up_proj(x)), no biases anywhere.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

HAS_GQA_SDPA = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 5)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        if hasattr(F, "rms_norm"):  # PyTorch >= 2.4: one fused op
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, groups: int):
    """(B, n_kv, T, hs) -> (B, n_kv * groups, T, hs), each head repeated ``groups`` times."""
    if groups == 1:
        return x
    B, n_kv, T, hs = x.shape
    return x[:, :, None].expand(B, n_kv, groups, T, hs).reshape(B, n_kv * groups, T, hs)


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        nh, n_kv, hs, C = config.n_head, config.n_kv_head, config.head_dim, config.n_embd
        self.q_proj = nn.Linear(C, nh * hs, bias=False)
        self.k_proj = nn.Linear(C, n_kv * hs, bias=False)
        self.v_proj = nn.Linear(C, n_kv * hs, bias=False)
        self.o_proj = nn.Linear(nh * hs, C, bias=False)
        self.n_head, self.n_kv_head, self.head_dim = nh, n_kv, hs

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, n_kv, T, hs)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if HAS_GQA_SDPA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               enable_gqa=self.n_kv_head != self.n_head)
        else:
            groups = self.n_head // self.n_kv_head
            y = F.scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.n_embd, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """``config`` is a ``minitransformer.nn.LlamaConfig`` without rope scaling, q/k norms or
    tied embeddings (the benchmark's configs)."""

    def __init__(self, config):
        super().__init__()
        if config.rope_scaling or config.qk_norm or config.tie_word_embeddings or config.rope_interleaved:
            raise ValueError("torch_llama.Llama: the benchmark's model has no rope scaling, q/k norms, "
                             "tied embeddings or interleaved rotary pairs")
        self.config = config
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.model.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_layer))
        self.model.norm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        hs = config.head_dim
        inv_freq = 1.0 / config.rope_theta ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs)
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (hs/2,)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        angles = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq  # (T, hs/2)
        angles = torch.cat((angles, angles), dim=-1)  # (T, hs): each pair's angle on both members
        cos, sin = angles.cos(), angles.sin()
        x = self.model.embed_tokens(idx)  # (B, T, C)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        logits = self.lm_head(self.model.norm(x))  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        """AdamW, decay on >= 2-D weights only, as for the GPT (nanoGPT's two groups)."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)
