"""Hugging Face decoder checkpoints (GPT-2, Llama 2/3, Qwen2, Qwen3, Mistral, SmolLM2) as our
``nn.GPT`` and ``nn.Llama``.

A Hugging Face model folder holds ``config.json`` (the architecture, in the field names of its
``transformers`` class) and the weights: ``model.safetensors``, or shards listed by
``model.safetensors.index.json`` (a ``weight_map`` from tensor name to shard file). Loading is
two translations:

- config.json -> ``GPTConfig`` or ``LlamaConfig``. Every field that changes what the model
  computes is either mapped or checked: a value these models do not implement (a rope scaling
  type, a bias on o_proj, a sliding window shorter than the context asked for) is a one-line
  error naming the field, never a model that quietly computes something else.
- tensor names -> our parameter names. The Llama family already uses Hugging Face's names. GPT-2
  uses nanoGPT's names, but its checkpoint stores every matrix of c_attn, c_proj and c_fc as
  (in_features, out_features): GPT-2 was written with a ``Conv1D`` layer that computes x W + b,
  where ``nn.Linear`` computes x W^T + b. Those four matrices are transposed on the way in.

Weights stay memory-mapped (``safetensors.load_as``): a float32 checkpoint becomes the model's
parameters without being copied, and a bf16 or fp16 one is converted a tensor at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import read_json
from .nn import GPT, GPTConfig, Llama, LlamaConfig
from .nn.module import uninitialized_parameters
from .safetensors import load_as

SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2", "qwen3")
GPT2_CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # three spellings of the tanh approximation


def read_config(directory: str | os.PathLike) -> dict:
    """config.json of a model folder, checked to be a JSON object with a supported model_type."""
    path = Path(directory) / "config.json"
    config = read_json(path, "pretrained", max_bytes=1 << 20)
    if not isinstance(config, dict):
        raise ValueError(f"pretrained: {path} must hold a JSON object")
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"pretrained: {path}: model_type {model_type!r} is not supported; expected one of "
                         f"{', '.join(SUPPORTED_MODEL_TYPES)}")
    return config


def _require(hf: dict, field: str, accepted, where: str, default=None):
    """hf[field] (or ``default`` when absent), which must be one of ``accepted``."""
    value = hf.get(field, default)
    if value not in accepted:
        raise ValueError(f"{where}: {field} = {value!r} is not supported; this loader implements "
                         f"{' or '.join(repr(a) for a in accepted)}")
    return value


def _context(hf: dict, where: str, max_positions: int, window: int | None, block_size: int | None) -> int:
    """The context length to build: ``block_size`` if given, else as long as the checkpoint
    allows. Up to the sliding window, sliding-window attention is full causal attention, so a
    model with one is exact up to that length and no further."""
    limit = max_positions if window is None else min(max_positions, window)
    if block_size is None:
        return limit
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"{where}: block_size must be a positive integer, got {block_size!r}")
    if window is not None and block_size > window:
        raise ValueError(f"{where}: sliding_window = {window} is shorter than the context asked for "
                         f"({block_size}); sliding-window attention is not implemented, so block_size "
                         f"must be <= {window}")
    if block_size > max_positions:
        raise ValueError(f"{where}: block_size {block_size} exceeds the checkpoint's "
                         f"{max_positions} positions")
    return block_size


def gpt2_config(hf: dict, where: str, block_size: int | None = None) -> GPTConfig:
    """config.json of a ``GPT2LMHeadModel`` as a GPTConfig."""
    n_embd = hf["n_embd"]
    activation = _require(hf, "activation_function", ("gelu", *TANH_GELUS), where, "gelu_new")
    _require(hf, "layer_norm_epsilon", (1e-5,), where, 1e-5)  # nn.LayerNorm's eps
    _require(hf, "n_inner", (None, 4 * n_embd), where)
    _require(hf, "scale_attn_weights", (True,), where, True)
    _require(hf, "scale_attn_by_inverse_layer_idx", (False,), where, False)
    _require(hf, "add_cross_attention", (False,), where, False)
    _require(hf, "tie_word_embeddings", (True,), where, True)  # nn.GPT always ties lm_head to wte
    max_positions = hf.get("n_positions", hf.get("n_ctx", 1024))
    return GPTConfig(block_size=_context(hf, where, max_positions, None, block_size), vocab_size=hf["vocab_size"],
                     n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=n_embd, dropout=0.0, bias=True,
                     gelu_approximate="none" if activation == "gelu" else "tanh")


def rope_settings(hf: dict, where: str) -> tuple[float, dict | None]:
    """(rope_theta, rope_scaling) from ``rope_parameters`` (transformers 5) or ``rope_theta`` and
    ``rope_scaling`` (earlier files). Plain RoPE and Llama 3.1's scaling are implemented."""
    parameters = hf.get("rope_parameters")
    field = "rope_parameters"
    if parameters is None:
        parameters = {"rope_theta": hf.get("rope_theta", 10000.0), **(hf.get("rope_scaling") or {})}
        field = "rope_scaling"
    if not isinstance(parameters, dict):
        raise ValueError(f"{where}: {field} must be a JSON object, got {parameters!r}")
    rope_type = parameters.get("rope_type", parameters.get("type", "default"))
    theta = parameters.get("rope_theta", hf.get("rope_theta", 10000.0))
    if rope_type == "default":
        return theta, None
    if rope_type == "llama3":
        keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        return theta, {"rope_type": "llama3", **{k: parameters[k] for k in keys if k in parameters}}
    raise ValueError(f"{where}: {field}.rope_type = {rope_type!r} is not supported; this loader implements "
                     "'default' and 'llama3'")


def sliding_window(hf: dict) -> int | None:
    """The attention window of a Mistral or Qwen checkpoint, or None when attention is full."""
    window = hf.get("sliding_window")
    if hf["model_type"] in ("qwen2", "qwen3"):
        uses_window = hf.get("use_sliding_window", False) or "sliding_attention" in (hf.get("layer_types") or ())
        return window if uses_window else None
    return window  # Mistral: null means full attention


def llama_config(hf: dict, where: str, block_size: int | None = None) -> LlamaConfig:
    """config.json of a Llama, Mistral, Qwen2 or Qwen3 causal LM (SmolLM2 is a Llama) as a
    LlamaConfig. Qwen2 has biases on q, k and v (never on o_proj); Qwen3 normalises q and k."""
    model_type = hf["model_type"]
    _require(hf, "hidden_act", ("silu",), where, "silu")
    _require(hf, "mlp_bias", (False,), where, False)
    if model_type == "qwen2":
        attention_bias = True
    else:  # Llama's and Qwen3's attention_bias would put a bias on o_proj too; LlamaConfig has none there
        attention_bias = _require(hf, "attention_bias", (False,), where, False)
    theta, scaling = rope_settings(hf, where)
    n_head = hf["num_attention_heads"]
    context = _context(hf, where, hf.get("max_position_embeddings", 2048), sliding_window(hf), block_size)
    try:
        return LlamaConfig(block_size=context, vocab_size=hf["vocab_size"], n_layer=hf["num_hidden_layers"],
                           n_head=n_head, n_kv_head=hf.get("num_key_value_heads") or n_head,
                           n_embd=hf["hidden_size"], head_dim=hf.get("head_dim") or hf["hidden_size"] // n_head,
                           intermediate_size=hf["intermediate_size"], rope_theta=theta, rope_scaling=scaling,
                           rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
                           tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
                           qk_norm=model_type == "qwen3", attention_bias=attention_bias)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def model_config(hf: dict, where: str = "pretrained", block_size: int | None = None) -> GPTConfig | LlamaConfig:
    """Our model config for a Hugging Face config.json (as a dict); errors name ``where``."""
    try:
        if hf["model_type"] == "gpt2":
            return gpt2_config(hf, where, block_size)
        return llama_config(hf, where, block_size)
    except KeyError as error:
        raise ValueError(f"{where}: config.json has no field {error.args[0]!r}") from None


def checkpoint_state(hf: dict, tensors: dict, block_size: int | None = None) -> dict:
    """A checkpoint's tensors renamed (and for GPT-2, transposed) to our model's state-dict keys;
    ``block_size``: GPT-2's learned positions are cut to that many (a shorter context)."""
    if hf["model_type"] != "gpt2":  # the Llama family: the same names, less RoPE's cached buffers
        state = {name: value for name, value in tensors.items() if not name.endswith("rotary_emb.inv_freq")}
        if hf.get("tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # the embedding matrix, saved twice by some files
        return state
    state = {}
    for name, value in tensors.items():
        if name == "lm_head.weight":
            continue  # tied: it is transformer.wte.weight
        if not name.startswith("transformer."):  # the hub's gpt2 file leaves the prefix out
            name = "transformer." + name
        if name.endswith(GPT2_CONV1D_WEIGHTS):
            value = value.T  # Conv1D's (in, out) -> Linear's (out, in): a view, nothing copied
        state[name] = value
    if "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    if block_size is not None and "transformer.wpe.weight" in state:
        state["transformer.wpe.weight"] = state["transformer.wpe.weight"][:block_size]
    return state


def weight_files(directory: str | os.PathLike) -> list[Path]:
    """The safetensors files of a model folder: model.safetensors, or the shards that
    model.safetensors.index.json names (each a file inside the folder)."""
    directory = Path(directory)
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if not index.is_file():
        pickled = [name for name in ("pytorch_model.bin", "model.bin") if (directory / name).is_file()]
        hint = f" ({pickled[0]} is a pickle, which is never loaded here; save the model as safetensors)" if pickled else ""
        raise FileNotFoundError(f"pretrained model folder {directory}: no model.safetensors or "
                                f"model.safetensors.index.json{hint}")
    contents = read_json(index, "pretrained")
    weight_map = contents.get("weight_map") if isinstance(contents, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"pretrained: {index}: expected a non-empty weight_map of tensor name -> shard file")
    shards = []
    for shard in dict.fromkeys(weight_map.values()):
        if not isinstance(shard, str) or Path(shard).name != shard or shard in ("", ".", ".."):
            raise ValueError(f"pretrained: {index}: shard {shard!r} must be a file name in the model folder")
        if not (directory / shard).is_file():
            raise FileNotFoundError(f"pretrained: {index} lists {shard}, which is missing from {directory}")
        shards.append(directory / shard)
    return shards


def read_weights(directory: str | os.PathLike, dtype=np.float32) -> dict[str, np.ndarray]:
    """Every tensor of a model folder's safetensors file(s), as ``dtype``, memory-mapped."""
    tensors = {}
    for path in weight_files(directory):
        for name, value in load_as(path, dtype).items():
            if name in tensors:
                raise ValueError(f"pretrained: tensor {name!r} appears in two shards (the second is {path})")
            tensors[name] = value
    return tensors


def load_model(directory: str | os.PathLike, dtype=np.float32, block_size: int | None = None) -> GPT | Llama:
    """Our GPT or Llama with a Hugging Face checkpoint's weights, in eval mode."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise ValueError(f"pretrained: dtype must be float32 or float16, got {dtype}")
    hf = read_config(directory)
    config = model_config(hf, f"pretrained {Path(directory) / 'config.json'}", block_size)
    state = checkpoint_state(hf, read_weights(directory, dtype), config.block_size)
    with uninitialized_parameters():  # every parameter is assigned from the checkpoint next
        model = (GPT if isinstance(config, GPTConfig) else Llama)(config)
    model.load_state_dict(state, assign=True)  # strict: a weight missing from the file is an error
    return model.eval()
