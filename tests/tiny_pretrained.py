"""Tiny random-weight chat models in the Hugging Face folder layout, written without PyTorch:
config.json, model.safetensors (our writer), a byte-level tokenizer.json (ids 0-255 the bytes,
then the special tokens) and tokenizer_config.json with a ChatML template like SmolLM2's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import minitransformer as mt
from minitransformer import hf_decoders, nn
from minitransformer.data.bpe import bytes_to_unicode
from minitransformer.safetensors import save_file

SPECIALS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")  # ids 256, 257, 258
VOCAB = 256 + len(SPECIALS)
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": VOCAB,
                "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
                "rope_theta": 10000.0, "tie_word_embeddings": True, "eos_token_id": 258}


def byte_level_tokenizer() -> dict:
    vocab = {char: byte for byte, char in bytes_to_unicode().items()}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {"version": "1.0", "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None,
            "decoder": byte_level,
            "added_tokens": [{"id": 256 + i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for i, text in enumerate(SPECIALS)],
            "model": {"type": "BPE", "vocab": vocab, "merges": []}}


def write_tiny_chat_model(folder: Path, seed: int = 0, chat_template: str | None = CHATML) -> Path:
    """A tiny Llama-style chat model (SmolLM2's layout: tied embeddings, ChatML) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    mt.manual_seed(seed)
    model = nn.Llama(hf_decoders.model_config(LLAMA_CONFIG))
    state = {name: value for name, value in model.state_dict().items() if name != "lm_head.weight"}
    # larger weights than the 0.02 initialisation, so that the logits differ visibly between tokens
    state = {name: value if name.endswith("norm.weight") else value * 20 for name, value in state.items()}
    save_file(state, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (folder / "tokenizer.json").write_text(json.dumps(byte_level_tokenizer()))
    tokenizer_config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    if chat_template is not None:
        tokenizer_config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


def full_logits(lm, ids: list[int]) -> np.ndarray:
    """The last position's logits with the whole sequence read at once, no cache, (V,)."""
    with mt.no_grad():
        logits, _ = lm.model(np.array([ids]))
    return logits.numpy()[0, -1]
