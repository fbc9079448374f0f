"""Optional cross-check against PyTorch (skipped when it is not installed): SiLU, RMS norm,
rotary embeddings in Hugging Face's and Meta's forms, Llama 3.1's frequency scaling, attention
with masks and grouped-query attention, and the whole Llama-style model against a PyTorch
transcription of Hugging Face's ``modeling_llama``, forward and backward, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from tests.strategies import arrays, shapes

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def assert_matches_torch(mt_fn, torch_fn, *arrays_in):
    """Outputs and the gradients of sum(out * upstream) for every float input agree."""
    mine = [mt.tensor(a, dtype=np.float64, requires_grad=True) for a in arrays_in]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays_in]
    out, expected = mt_fn(*mine), torch_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    (out * mt.tensor(upstream, dtype=np.float64)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=RTOL, atol=ATOL)


# --- Hugging Face's and Meta's code, transcribed in PyTorch ------------------------------------

def hf_inverse_frequencies(dim, base, rope_scaling=None):
    """transformers' _compute_default_rope_parameters and _compute_llama3_parameters."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    if rope_scaling is None:
        return inv_freq
    factor = rope_scaling["factor"]
    low_freq_factor, high_freq_factor = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    old_context_len = rope_scaling["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context_len / low_freq_factor, old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def hf_rope(x, positions, base=10000.0, rope_scaling=None):
    """LlamaRotaryEmbedding + apply_rotary_pos_emb (x (B, nh, T, hs), positions (B, T))."""
    inv_freq = hf_inverse_frequencies(x.shape[-1], base, rope_scaling)
    freqs = positions[..., None].to(torch.float64) * inv_freq  # (B, T, hs/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # unsqueeze_dim=1
    return x * cos + rotate_half(x) * sin


def meta_rope(x, positions, base=10000.0):
    """Meta's llama/model.py: precompute_freqs_cis and apply_rotary_emb on (B, T, nh, hs)."""
    freqs = 1.0 / (base ** (torch.arange(0, x.shape[-1], 2, dtype=torch.float64) / x.shape[-1]))
    freqs_cis = torch.polar(torch.ones(len(positions), len(freqs), dtype=torch.float64),
                            torch.outer(positions.to(torch.float64), freqs))  # (T, hs/2)
    x_complex = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(x_complex * freqs_cis[:, None, :]).flatten(3)


def hf_rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def hf_llama_logits(state, config: nn.LlamaConfig, idx):
    """LlamaForCausalLM.forward (eager attention, no cache), weights from our state dict by name."""
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in state.items()}
    B, T = idx.shape
    nh, n_kv, hs = config.n_head, config.n_kv_head, config.head_dim
    positions = torch.arange(T)[None].expand(B, T)
    x = w["model.embed_tokens.weight"][torch.tensor(idx)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(config.n_layer):
        p = f"model.layers.{i}."
        h = hf_rms_norm(x, w[p + "input_layernorm.weight"], config.rms_norm_eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, nh, hs)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, n_kv, hs)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, n_kv, hs).transpose(1, 2)
        if config.qk_norm:  # Qwen3Attention: q_norm and k_norm over head_dim before the rotation
            q = hf_rms_norm(q, w[p + "self_attn.q_norm.weight"], config.rms_norm_eps)
            k = hf_rms_norm(k, w[p + "self_attn.k_norm.weight"], config.rms_norm_eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = hf_rope(q, positions, config.rope_theta, config.rope_scaling)
        k = hf_rope(k, positions, config.rope_theta, config.rope_scaling)
        k, v = (t.repeat_interleave(nh // n_kv, dim=1) for t in (k, v))  # repeat_kv
        scores = q @ k.transpose(2, 3) / math.sqrt(hs) + mask
        y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, nh * hs)
        x = x + y @ w[p + "self_attn.o_proj.weight"].T
        h = hf_rms_norm(x, w[p + "post_attention_layernorm.weight"], config.rms_norm_eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (TF.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = hf_rms_norm(x, w["model.norm.weight"], config.rms_norm_eps)
    return x @ w["lm_head.weight"].T, w


# --- ops -------------------------------------------------------------------------------------------

@given(x=arrays(shapes, -20, 20))
def test_silu(x):
    assert_matches_torch(F.silu, TF.silu, x)


@given(data=st.data())
@settings(max_examples=20)
def test_rms_norm(data):
    shape = data.draw(shapes)
    x, weight = data.draw(arrays(shape)), data.draw(arrays((shape[-1],)))
    assert_matches_torch(lambda a, b: F.rms_norm(a, b, eps=1e-6),
                         lambda a, b: TF.rms_norm(a, (shape[-1],), b, eps=1e-6), x, weight)
    assert_matches_torch(lambda a, b: F.rms_norm(a, b, eps=1e-5), lambda a, b: hf_rms_norm(a, b, 1e-5), x, weight)


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}


@pytest.mark.parametrize("scaling", [None, LLAMA3])
@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_rotate_half_rope_is_hugging_faces(theta, scaling):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 16))
    positions = np.array([np.arange(7), np.arange(100, 107)])  # the second sequence far along
    assert_matches_torch(lambda a: F.rotary_embedding(a, positions, theta, interleaved=False, scaling=scaling),
                         lambda a: hf_rope(a, torch.tensor(positions), theta, scaling), x)


def test_interleaved_rope_is_metas():
    x = np.random.default_rng(1).standard_normal((2, 7, 3, 16))  # Meta's layout: (B, T, nh, hs)
    positions = np.arange(5, 12)
    assert_matches_torch(
        lambda a: F.rotary_embedding(a.transpose(0, 2, 1, 3), positions, interleaved=True).transpose(0, 2, 1, 3),
        lambda a: meta_rope(a, torch.tensor(positions)), x)


def test_llama3_frequency_scaling_is_hugging_faces():
    from minitransformer.ops.rotary import inverse_frequencies

    real = {**LLAMA3, "original_max_position_embeddings": 8192}
    np.testing.assert_allclose(inverse_frequencies(128, 500000.0, real, np),
                               hf_inverse_frequencies(128, 500000.0, real).numpy(), rtol=1e-14)


@pytest.mark.parametrize("n_kv_head", [1, 2, 4])
@pytest.mark.parametrize("mask_kind", ["causal", "bool", "additive"])
def test_attention_with_masks_and_grouped_query_heads(n_kv_head, mask_kind):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((2, 4, 5, 8))
    k, v = rng.standard_normal((2, n_kv_head, 6, 8)), rng.standard_normal((2, n_kv_head, 6, 8))
    allowed = rng.random((2, 1, 5, 6)) < 0.7
    allowed[..., 0] = True  # every query may see one key at least
    additive = rng.standard_normal((5, 6))
    mine = dict(causal=dict(is_causal=True), bool=dict(mask=allowed), additive=dict(mask=additive))[mask_kind]
    theirs = dict(causal=dict(is_causal=True), bool=dict(attn_mask=torch.tensor(allowed)),
                  additive=dict(attn_mask=torch.tensor(additive)))[mask_kind]
    if mask_kind == "causal":  # PyTorch's causal mask is aligned at the top left, as ours
        k, v = k[:, :, :5], v[:, :, :5]
    assert_matches_torch(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, enable_gqa=True, **mine),
                         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, enable_gqa=True, **theirs),
                         q, k, v)


# --- the model -------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    dict(),  # Llama 2 style: multi-head attention
    dict(n_kv_head=2, rope_theta=500000.0, rope_scaling={**LLAMA3, "original_max_position_embeddings": 4}),
    dict(n_kv_head=1, qk_norm=True),  # multi-query, Qwen 3's q/k norms
])
def test_llama_logits_and_gradients_match_hugging_faces_model(changes):
    config = nn.LlamaConfig(block_size=16, vocab_size=23, n_layer=2, n_head=4, n_embd=32, **changes)
    model = nn.Llama(config)
    for p in model.parameters():
        p.data = p.data.astype(np.float64) * 5  # larger weights than at init: every part matters
    idx = np.random.default_rng(3).integers(0, 23, (2, 9))
    targets = np.random.default_rng(4).integers(0, 23, (2, 9))
    expected, weights = hf_llama_logits(model.state_dict(), config, idx)
    logits, loss = model(idx, targets)
    np.testing.assert_allclose(logits.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    torch_loss = TF.cross_entropy(expected.reshape(-1, 23), torch.tensor(targets).reshape(-1))
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12)
    loss.backward()
    torch_loss.backward()
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, weights[name].grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=name)
