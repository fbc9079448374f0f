"""nn/llama.py: Hugging Face's names and shapes, grouped-query attention against multi-head
attention with the key/value heads copied, the two rotary conventions against each other,
causality, gradients, learning. The comparison with a PyTorch implementation of Hugging Face's
Llama is in tests/crosscheck/test_llama_torch.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from tests.nn.module_gradcheck import module_gradcheck

TINY = dict(block_size=8, vocab_size=13, n_layer=2, n_head=4, n_kv_head=2, n_embd=16)


def tiny_llama(**changes) -> nn.Llama:
    return nn.Llama(nn.LlamaConfig(**{**TINY, **changes}))


def to_float64(model):
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def all_logits(model, idx) -> np.ndarray:
    return model(idx, np.zeros_like(idx))[0].numpy()


def test_state_dict_has_hugging_faces_names_and_shapes():
    model = tiny_llama(n_layer=1, intermediate_size=24)
    C, V, hs = 16, 13, 4
    expected = {
        "model.embed_tokens.weight": (V, C),
        "model.layers.0.input_layernorm.weight": (C,),
        "model.layers.0.self_attn.q_proj.weight": (4 * hs, C),
        "model.layers.0.self_attn.k_proj.weight": (2 * hs, C),
        "model.layers.0.self_attn.v_proj.weight": (2 * hs, C),
        "model.layers.0.self_attn.o_proj.weight": (C, 4 * hs),
        "model.layers.0.post_attention_layernorm.weight": (C,),
        "model.layers.0.mlp.gate_proj.weight": (24, C),
        "model.layers.0.mlp.up_proj.weight": (24, C),
        "model.layers.0.mlp.down_proj.weight": (C, 24),
        "model.norm.weight": (C,),
        "lm_head.weight": (V, C),
    }
    assert {name: tuple(v.shape) for name, v in model.state_dict().items()} == expected
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    qwen3 = tiny_llama(n_layer=1, qk_norm=True, attention_bias=True).state_dict()
    assert qwen3["model.layers.0.self_attn.q_norm.weight"].shape == (hs,)
    assert qwen3["model.layers.0.self_attn.k_norm.weight"].shape == (hs,)
    assert qwen3["model.layers.0.self_attn.k_proj.bias"].shape == (2 * hs,)
    assert "model.layers.0.self_attn.o_proj.bias" not in qwen3


def test_default_swiglu_width_matches_a_4c_gelu_ffn_in_parameters():
    config = nn.LlamaConfig(n_embd=768, n_head=12)
    assert config.intermediate_size % 8 == 0 and abs(3 * config.intermediate_size - 8 * 768) < 3 * 8
    assert config.head_dim == 64 and config.n_kv_head == 12


def test_tied_embeddings_share_one_matrix_and_load_a_checkpoint_without_lm_head():
    model = tiny_llama(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    state = {k: v * 0 + 0.5 for k, v in model.state_dict().items() if k != "lm_head.weight"}
    model.load_state_dict(state)
    assert (model.lm_head.weight.numpy() == 0.5).all()


def copy_kv_heads(gqa: nn.Llama) -> nn.Llama:
    """The multi-head model (n_kv_head = n_head) whose key/value head h is the GQA model's head
    h // group: the same function, computed with the heads copied."""
    config = gqa.config
    mha = nn.Llama(nn.LlamaConfig(**{**config.to_dict(), "n_kv_head": config.n_head}))
    group, hs = config.n_head // config.n_kv_head, config.head_dim
    state = {}
    for name, value in gqa.state_dict().items():
        if name.endswith(("k_proj.weight", "v_proj.weight")):
            heads = value.reshape(config.n_kv_head, hs, -1)
            value = np.repeat(heads, group, axis=0).reshape(config.n_head * hs, -1)
        state[name] = value
    mha.load_state_dict(state)
    return mha


@pytest.mark.parametrize("n_kv_head", [1, 2])  # multi-query, grouped-query
def test_grouped_query_attention_is_multi_head_attention_with_shared_key_value_heads(n_kv_head):
    gqa = to_float64(tiny_llama(n_kv_head=n_kv_head))
    mha = to_float64(copy_kv_heads(gqa))
    idx = np.random.default_rng(0).integers(0, 13, (2, 8))
    np.testing.assert_allclose(all_logits(gqa, idx), all_logits(mha, idx), rtol=1e-12, atol=1e-12)


def test_gqa_with_n_kv_head_equal_to_n_head_is_plain_multi_head_attention():
    rng = np.random.default_rng(1)
    q, k, v = (mt.tensor(rng.standard_normal((2, 4, 5, 8)), dtype=np.float64) for _ in range(3))
    plain = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).numpy(), plain)
    # and by hand, head by head: softmax(q k^T / sqrt(hs) + causal mask) v
    scores = q.numpy() @ k.numpy().swapaxes(-1, -2) / math.sqrt(8)
    scores = np.where(np.tril(np.ones((5, 5), dtype=bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    np.testing.assert_allclose(plain, weights / weights.sum(-1, keepdims=True) @ v.numpy(), rtol=1e-12)


def test_gqa_gradient_of_a_shared_key_head_sums_over_its_group():
    rng = np.random.default_rng(2)
    q = mt.tensor(rng.standard_normal((1, 4, 3, 4)), dtype=np.float64, requires_grad=True)
    k, v = (mt.tensor(rng.standard_normal((1, 2, 3, 4)), dtype=np.float64, requires_grad=True) for _ in range(2))
    assert mt.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True, enable_gqa=True),
                        [q, k, v])
    with pytest.raises(ValueError, match="enable_gqa needs q .* with n_kv dividing nh"):
        F.scaled_dot_product_attention(q, mt.tensor(np.ones((1, 3, 3, 4))), mt.tensor(np.ones((1, 3, 3, 4))),
                                       enable_gqa=True)


def test_interleaved_rope_with_meta_weights_equals_rotate_half_with_permuted_weights():
    """Hugging Face's conversion of Meta's checkpoints permutes the rows of each q and k head
    (interleaved pairs -> halves); the two models then compute the same logits."""
    meta = to_float64(tiny_llama(rope_interleaved=True, qk_norm=True))
    hf = to_float64(tiny_llama(rope_interleaved=False, qk_norm=True))
    hs = meta.config.head_dim
    order = np.concatenate([np.arange(0, hs, 2), np.arange(1, hs, 2)])  # within a head
    state = {}
    for name, value in meta.state_dict().items():
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            value = value.reshape(-1, hs, value.shape[-1])[:, order].reshape(value.shape)
        elif name.endswith(("q_norm.weight", "k_norm.weight")):
            value = value[order]
        state[name] = value
    hf.load_state_dict(state)
    idx = np.random.default_rng(3).integers(0, 13, (2, 8))
    np.testing.assert_allclose(all_logits(hf, idx), all_logits(meta, idx), rtol=1e-11, atol=1e-12)


def test_logits_at_t_ignore_every_later_token():
    model = tiny_llama()
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 13, (2, 8))
    base = all_logits(model, idx)
    for t in range(7):
        changed = idx.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % 13
        logits = all_logits(model, changed)
        np.testing.assert_array_equal(logits[:, :t + 1], base[:, :t + 1])
        assert not np.allclose(logits[:, t + 1:], base[:, t + 1:])


def test_the_models_attention_scores_depend_on_the_distance_between_tokens_only():
    """The first layer's q.k of two tokens is the same at positions (3, 5) and (103, 105)."""
    model = to_float64(tiny_llama(n_layer=1))
    attention = model.model.layers[0].self_attn
    rng = np.random.default_rng(5)
    x = mt.tensor(rng.standard_normal((1, 2, 16)), dtype=np.float64)
    q = attention.q_proj(x).reshape(1, 2, 4, 4).transpose(0, 2, 1, 3)
    k = attention.k_proj(x).reshape(1, 2, 2, 4).transpose(0, 2, 1, 3)
    rotary = model.model.rotary_emb
    near = (rotary(q, [3, 5]).numpy()[..., 1, :] * rotary(k, [3, 5]).numpy()[..., 0:1, :].repeat(2, 1)).sum(-1)
    far = (rotary(q, [103, 105]).numpy()[..., 1, :] * rotary(k, [103, 105]).numpy()[..., 0:1, :].repeat(2, 1)).sum(-1)
    np.testing.assert_allclose(near, far, rtol=1e-9)


def test_gradients_of_every_parameter_match_finite_differences():
    model = to_float64(tiny_llama(block_size=4, vocab_size=5, n_layer=1, n_head=2, n_kv_head=1, n_embd=8,
                                  intermediate_size=8, qk_norm=True, tie_word_embeddings=True))
    idx = np.array([[1, 3, 0, 4]])
    assert module_gradcheck(model, forward=lambda m: m(idx, np.array([[3, 0, 4, 2]]))[1])


def test_llama_overfits_one_small_batch():
    model = tiny_llama(n_layer=1)
    rng = np.random.default_rng(6)
    idx, targets = rng.integers(0, 13, (2, 8)), rng.integers(0, 13, (2, 8))
    optimizer = model.configure_optimizers(0.0, 1e-2)
    for _ in range(150):
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model(idx, targets)[1].item() < 0.15  # from ln 13 = 2.56
    assert isinstance(optimizer, optim.AdamW)


def test_loss_at_initialisation_is_about_ln_vocab_size():
    model = tiny_llama(vocab_size=65, block_size=16)
    rng = np.random.default_rng(7)
    _, loss = model(rng.integers(0, 65, (8, 16)), rng.integers(0, 65, (8, 16)))
    assert abs(loss.item() - math.log(65)) < 0.1


def test_config_checks_its_values():
    with pytest.raises(ValueError, match=r"n_kv_head \(3\) must divide n_head \(4\)"):
        nn.LlamaConfig(n_head=4, n_kv_head=3, n_embd=16)
    with pytest.raises(ValueError, match="LlamaConfig: head_dim must be even"):
        nn.LlamaConfig(n_head=2, n_embd=6)
    with pytest.raises(ValueError, match="LlamaConfig: vocab_size must be a positive integer"):
        nn.LlamaConfig(vocab_size=0)
    with pytest.raises(ValueError, match="LlamaConfig: rotary_embedding: Llama 3 scaling is missing"):
        nn.LlamaConfig(rope_scaling={"factor": 8.0})
    with pytest.raises(ValueError, match=r"Llama: idx must be \(B, T\) token ids"):
        tiny_llama()(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="Llama: cannot forward a sequence of length 9: block_size is only 8"):
        tiny_llama()(np.zeros((1, 9), dtype=np.int64))
