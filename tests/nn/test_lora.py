"""nn/lora.py: LoRALinear's formula and gradients, its zero start, merge/unmerge, wrapping a
model's layers by name, freezing, and saving and reloading adapters (PEFT's names)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer import nn, optim
from minitransformer.safetensors import load_file, save_file
from tests.nn.module_gradcheck import module_gradcheck
from tests.strategies import arrays


def tiny_gpt() -> nn.GPT:
    mt.manual_seed(0)
    return nn.GPT(nn.GPTConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=8))


def tiny_llama() -> nn.Llama:
    mt.manual_seed(0)
    return nn.Llama(nn.LlamaConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_kv_head=1, n_embd=8,
                                   intermediate_size=16))


def random_ids(shape=(2, 8), vocab=13, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=shape)


def with_random_b(layer: nn.LoRALinear, seed: int = 1) -> nn.LoRALinear:
    """B is zero at the start; a random B makes every term of the formula count."""
    layer.lora_B.weight.data = np.random.default_rng(seed).normal(size=layer.lora_B.weight.shape).astype(
        layer.lora_B.weight.dtype)
    return layer


@given(data=st.data(), in_features=st.integers(1, 4), out_features=st.integers(1, 4), rank=st.integers(1, 3),
       alpha=st.floats(0.5, 32), bias=st.booleans())
def test_lora_linear_is_base_plus_scaled_low_rank_update(data, in_features, out_features, rank, alpha, bias):
    layer = with_random_b(nn.LoRALinear(nn.Linear(in_features, out_features, bias=bias), rank, alpha))
    x = data.draw(arrays(st.just((3, in_features))))
    W, A, B = (p.data.astype(np.float64) for p in (layer.base_layer.weight, layer.lora_A.weight, layer.lora_B.weight))
    expected = x @ W.T + (alpha / rank) * (x @ A.T @ B.T)
    if bias:
        expected = expected + layer.base_layer.bias.data
    np.testing.assert_allclose(layer(mt.tensor(x, dtype=np.float64)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_lora_linear_passes_gradcheck():
    mt.manual_seed(3)
    layer = with_random_b(nn.LoRALinear(nn.Linear(4, 3), rank=2, alpha=4.0))
    x = mt.tensor(np.random.default_rng(0).normal(size=(2, 5, 4)), dtype=np.float64)
    assert module_gradcheck(layer, x)


def test_lora_init_kaiming_uniform_a_and_zero_b():
    layer = nn.LoRALinear(nn.Linear(400, 30), rank=16)
    assert layer.lora_A.weight.shape == (16, 400) and layer.lora_B.weight.shape == (30, 16)
    a = layer.lora_A.weight.numpy()
    assert np.abs(a).max() <= 1 / math.sqrt(400) and a.std() > 0.5 / math.sqrt(3 * 400)  # U(-b, b) has std b/sqrt(3)
    assert not layer.lora_B.weight.numpy().any()


def test_wrapped_model_starts_equal_to_the_base():
    model, ids = tiny_llama(), random_ids()
    before, _ = model(ids, ids)
    nn.apply_lora(model, ("q_proj", "v_proj"), rank=4, alpha=8)
    after, _ = model(ids, ids)
    np.testing.assert_array_equal(after.numpy(), before.numpy())


def test_merge_gives_the_same_output_and_unmerge_restores_the_weight():
    mt.manual_seed(1)
    layer = with_random_b(nn.LoRALinear(nn.Linear(6, 5), rank=3, alpha=6))
    base_weight = layer.base_layer.weight.numpy().copy()
    x = mt.tensor(np.random.default_rng(2).normal(size=(4, 6)))
    unmerged = layer(x).numpy()
    layer.merge()
    assert layer.merged
    np.testing.assert_allclose(layer.base_layer.weight.numpy(),
                               base_weight + 2.0 * layer.lora_B.weight.numpy() @ layer.lora_A.weight.numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer(x).numpy(), unmerged, rtol=1e-5, atol=1e-5)
    layer.merge()  # a second merge must not add the update twice
    np.testing.assert_allclose(layer(x).numpy(), unmerged, rtol=1e-5, atol=1e-5)
    layer.unmerge()
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), base_weight, rtol=0, atol=1e-6)
    np.testing.assert_allclose(layer(x).numpy(), unmerged, rtol=1e-5, atol=1e-5)


def test_apply_lora_wraps_matching_layers_freezes_the_rest_and_counts():
    model = tiny_gpt()
    total_before = model.num_parameters(non_embedding=False)
    wrapped = nn.apply_lora(model, ("c_attn",), rank=2)
    assert wrapped == ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"]
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"transformer.h.{i}.attn.c_attn.lora_{m}.weight" for i in (0, 1) for m in "AB"}
    adapter_size = 2 * (2 * 8 + 24 * 2)  # per layer: A (2, 8) and B (24, 2)
    assert nn.count_parameters(model) == (adapter_size, total_before + adapter_size)
    assert "transformer.h.0.attn.c_attn.base_layer.weight" in model.state_dict()  # PEFT's name


def test_apply_lora_by_regular_expression_and_errors():
    model = tiny_gpt()
    assert nn.apply_lora(model, r"transformer\.h\.1\.mlp\.c_.*") == ["transformer.h.1.mlp.c_fc",
                                                                       "transformer.h.1.mlp.c_proj"]
    with pytest.raises(ValueError, match="already has LoRA"):
        nn.apply_lora(model, ("c_attn",))
    with pytest.raises(ValueError, match=r"match none.*'c_attn'"):
        nn.apply_lora(tiny_gpt(), ("q_proj",))
    with pytest.raises(ValueError, match="tied to"):
        nn.apply_lora(tiny_gpt(), ("lm_head",))
    with pytest.raises(ValueError, match="rank"):
        nn.LoRALinear(nn.Linear(3, 3), rank=0)


def test_only_the_adapters_get_gradients():
    model, ids = tiny_llama(), random_ids()
    nn.apply_lora(model, ("q_proj", "v_proj"), rank=2)
    for layer in nn.lora_layers(model).values():
        with_random_b(layer)
    _, loss = model(ids, ids)
    loss.backward()
    for name, param in model.named_parameters():
        if "lora_" in name:
            assert param.grad is not None and np.abs(param.grad).sum() > 0, name
        else:
            assert param.grad is None, name


def test_optimizers_skip_frozen_parameters():
    model, ids = tiny_gpt(), random_ids()
    nn.apply_lora(model, ("c_attn",), rank=2)
    frozen = {name: p.numpy().copy() for name, p in model.named_parameters() if not p.requires_grad}
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)  # the adapters only
    assert sum(len(group["params"]) for group in optimizer.param_groups) == 4
    for _ in range(3):
        _, loss = model(ids, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, param in model.named_parameters():
        if name in frozen:
            np.testing.assert_array_equal(param.numpy(), frozen[name], err_msg=name)
    assert any(np.abs(layer.lora_B.weight.numpy()).sum() > 0 for layer in nn.lora_layers(model).values())
    with pytest.raises(TypeError, match="requires_grad"):
        optim.AdamW(model.parameters())


def test_adapters_save_alone_and_reload_to_the_same_outputs(tmp_path):
    model, ids = tiny_gpt(), random_ids()
    nn.apply_lora(model, ("c_attn", "c_fc"), rank=2, alpha=4)
    for i, layer in enumerate(nn.lora_layers(model).values()):
        with_random_b(layer, seed=i)
    expected, _ = model(ids, ids)
    save_file(nn.lora_state_dict(model), tmp_path / "adapter_model.safetensors")
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert set(saved) == {f"base_model.model.transformer.h.{i}.{m}.lora_{x}.weight"
                          for i in (0, 1) for m in ("attn.c_attn", "mlp.c_fc") for x in "AB"}

    fresh = tiny_gpt()  # the same base weights (same seed), fresh adapters
    nn.apply_lora(fresh, ("c_attn", "c_fc"), rank=2, alpha=4)
    nn.load_lora_state_dict(fresh, saved)
    np.testing.assert_array_equal(fresh(ids, ids)[0].numpy(), expected.numpy())
    with pytest.raises(ValueError, match="missing"):
        nn.load_lora_state_dict(fresh, {k: v for k, v in saved.items() if "c_fc" not in k})


def test_merge_and_unload_restores_the_original_structure():
    model, ids = tiny_gpt(), random_ids()
    names = set(model.state_dict())
    nn.apply_lora(model, ("c_attn", "c_proj"), rank=2)
    for layer in nn.lora_layers(model).values():
        with_random_b(layer)
    expected, _ = model(ids, ids)
    merged = nn.merged_state_dict(model)
    assert set(merged) == names
    assert len(nn.merge_and_unload(model)) == 6  # attn.c_attn, attn.c_proj, mlp.c_proj
    assert set(model.state_dict()) == names and not nn.lora_layers(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, merged[name], err_msg=name)
    np.testing.assert_allclose(model(ids, ids)[0].numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_adapters_live_and_train_where_the_base_lives(xp):
    device = "cpu" if xp is np else "cuda"
    ids = random_ids()
    reference, model = tiny_gpt(), tiny_gpt().to(device)
    for each in (reference, model):
        mt.manual_seed(5)
        nn.apply_lora(each, ("c_attn",), rank=2)
        for layer in nn.lora_layers(each).values():
            with_random_b(layer)
    model.to(device)  # with_random_b put B on the host
    assert all(mt.backend.device_of(p.data) == device for p in model.parameters())
    expected, _ = reference(ids, ids)
    logits, loss = model(xp.asarray(ids), xp.asarray(ids))
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    loss.backward()
    assert all((p.grad is not None) == p.requires_grad for p in model.parameters())
    merged = nn.merged_state_dict(model)
    assert all(mt.backend.device_of(value) == device for value in merged.values())
