"""Hugging Face decoder folders without transformers: config.json fields mapped or refused by
name, GPT-2's Conv1D transposes, shards, dtypes, and memory-mapped weights (written here with
our own safetensors writer; tests/crosscheck/ compares with files transformers writes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import hf_decoders, nn, safetensors
from minitransformer.safetensors import load_as, save_file

LLAMA = {"model_type": "llama", "vocab_size": 50, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
GPT2 = {"model_type": "gpt2", "vocab_size": 50, "n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 4,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}


def write_folder(folder, config: dict, tensors: dict):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors, folder / "model.safetensors")
    return folder


def gpt2_files(model: nn.GPT) -> dict:
    """Our GPT's weights as GPT-2's checkpoint holds them: Conv1D matrices (in, out), no lm_head,
    no ``transformer.`` prefix (as the hub's gpt2 file)."""
    files = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        if name.endswith(hf_decoders.GPT2_CONV1D_WEIGHTS):
            value = value.T
        files[name.removeprefix("transformer.")] = np.ascontiguousarray(value)
    return files


def relabel_as_bf16(path):
    """Mark a file's U16 tensors as BF16 (the same bytes): a bf16 checkpoint without PyTorch."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    for entry in header.values():
        entry["dtype"] = "BF16"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length:])


def test_gpt2_folder_round_trip_transposes_conv1d(tmp_path):
    mt.manual_seed(0)
    config = nn.GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=4, n_embd=16, gelu_approximate="tanh")
    original = nn.GPT(config).eval()
    loaded = hf_decoders.load_model(write_folder(tmp_path, GPT2, gpt2_files(original)))
    assert loaded.config == config
    ids = np.arange(20)[None]
    with mt.no_grad():
        np.testing.assert_allclose(loaded.lm_head(loaded.hidden_states(ids)).numpy(),
                                   original.lm_head(original.hidden_states(ids)).numpy(), rtol=1e-5, atol=1e-6)


def test_llama_folder_round_trip_with_shards_and_bf16(tmp_path):
    mt.manual_seed(0)
    original = nn.Llama(hf_decoders.model_config(LLAMA)).eval()
    state = original.state_dict()
    names = sorted(state)
    # two shards, stored as bf16 (the top 16 bits of each float32: values with 8 mantissa bits)
    bf16_words = {name: (np.ascontiguousarray(state[name]).view(np.uint32) >> 16).astype(np.uint16) for name in names}
    for shard, part in (("a.safetensors", names[::2]), ("b.safetensors", names[1::2])):
        save_file({name: bf16_words[name] for name in part}, tmp_path / shard)
    weight_map = {}
    for shard, part in (("a.safetensors", names[::2]), ("b.safetensors", names[1::2])):
        relabel_as_bf16(tmp_path / shard)
        weight_map.update({name: shard for name in part})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    loaded = hf_decoders.load_model(tmp_path)
    for name, value in loaded.state_dict().items():
        expected = (bf16_words[name].astype(np.uint32) << 16).view(np.float32)
        np.testing.assert_array_equal(value, expected)
        assert value.dtype == np.float32


def test_float32_weights_are_memory_mapped_not_copied(tmp_path):
    write_folder(tmp_path, LLAMA, nn.Llama(hf_decoders.model_config(LLAMA)).state_dict())
    model = hf_decoders.load_model(tmp_path)
    weight = model.model.layers[0].self_attn.q_proj.weight.data
    assert not weight.flags.owndata and weight.flags.writeable  # copy-on-write view of the file
    before = (tmp_path / "model.safetensors").read_bytes()
    weight[...] = 0  # changes the model, never the file
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_load_as_converts_half_precision_and_refuses_integers(tmp_path, monkeypatch):
    save_file({"w": np.array([1.5, -2.25], dtype=np.float16)}, tmp_path / "h.safetensors")
    widened = load_as(tmp_path / "h.safetensors", np.float32)["w"]
    assert widened.dtype == np.float32 and widened.tolist() == [1.5, -2.25]
    monkeypatch.setattr(safetensors, "CONVERT_CHUNK", 3)  # a tensor converted in chunks of 3 numbers
    values = np.linspace(-4, 4, 20, dtype=np.float16).reshape(4, 5)
    save_file({"a": values, "b": values[::-1].copy()}, tmp_path / "c.safetensors")
    loaded = load_as(tmp_path / "c.safetensors", np.float32)
    np.testing.assert_array_equal(loaded["a"], values.astype(np.float32))
    np.testing.assert_array_equal(loaded["b"], values[::-1].astype(np.float32))
    save_file({"ids": np.arange(3)}, tmp_path / "i.safetensors")
    with pytest.raises(ValueError, match="tensor 'ids' has dtype I64; expected floating-point"):
        load_as(tmp_path / "i.safetensors", np.float32)


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gemma"}, "model_type 'gemma' is not supported"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling.rope_type = 'yarn' is not supported"),
    ({"rope_parameters": {"rope_type": "linear", "factor": 2.0}}, "rope_parameters.rope_type = 'linear'"),
    ({"hidden_act": "gelu"}, "hidden_act = 'gelu' is not supported"),
    ({"attention_bias": True}, "attention_bias = True is not supported"),
    ({"mlp_bias": True}, "mlp_bias = True"),
    ({"num_key_value_heads": 3}, "n_kv_head \\(3\\) must divide n_head \\(4\\)"),
])
def test_unsupported_llama_fields_are_named(tmp_path, change, message):
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA, **change}))
    with pytest.raises(ValueError, match=message):
        hf_decoders.load_model(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"activation_function": "relu"}, "activation_function = 'relu' is not supported"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"n_inner": 20}, "n_inner = 20"),
])
def test_unsupported_gpt2_fields_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        hf_decoders.model_config({**GPT2, **change})


def test_sliding_window_bounds_the_context():
    mistral = {**LLAMA, "model_type": "mistral", "max_position_embeddings": 64, "sliding_window": 16}
    assert hf_decoders.model_config(mistral).block_size == 16  # exact up to the window
    assert hf_decoders.model_config({**mistral, "sliding_window": None}).block_size == 64
    with pytest.raises(ValueError, match="sliding_window = 16 is shorter than the context asked for \\(32\\)"):
        hf_decoders.model_config(mistral, block_size=32)
    qwen = {**LLAMA, "model_type": "qwen2", "sliding_window": 16, "use_sliding_window": False}
    assert hf_decoders.model_config(qwen).block_size == 32  # the window is off
    assert hf_decoders.model_config(qwen).attention_bias and not hf_decoders.model_config(qwen).qk_norm
    assert hf_decoders.model_config({**qwen, "model_type": "qwen3", "head_dim": 8}).qk_norm


def test_missing_weights_and_bad_shards_are_one_line_errors(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    with pytest.raises(FileNotFoundError, match="no model.safetensors or model.safetensors.index.json"):
        hf_decoders.load_model(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../x.safetensors"}}))
    with pytest.raises(ValueError, match="must be a file name in the model folder"):
        hf_decoders.load_model(tmp_path)
    save_file({"lm_head.weight": np.zeros((50, 16), np.float32)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="missing keys"):
        hf_decoders.load_model(tmp_path)
