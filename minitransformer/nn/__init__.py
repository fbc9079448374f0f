"""Layers and models: ``Module``/``Parameter``, the basic layers, GPT, a Llama-style decoder, a
BERT-style encoder, and the documents' other architectures (1-D convolution, recurrent cells)."""

from .attention import KVCache, LayerCache
from .bert import BertConfig, BertForSequenceClassification, BertModel
from .classifier import GPTClassifier
from .conv import Conv1d
from .gpt import GPT, MLP, Block, CausalSelfAttention, GPTConfig
from .generation import SamplingSettings
from .layers import (GELU, Dropout, Embedding, LayerNorm, Linear, ReLU, RMSNorm, RotaryEmbedding, Sigmoid,
                     SwiGLU, Tanh)
from .llama import Llama, LlamaConfig
from .lora import (LoRALinear, apply_lora, count_parameters, load_lora_state_dict, lora_layers, lora_state_dict,
                   merge_and_unload, merged_state_dict)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .recurrent import RNN, GRUCell, RNNCell

__all__ = [
    "GELU", "GPT", "MLP", "RNN", "BertConfig", "BertForSequenceClassification", "BertModel", "Block",
    "CausalSelfAttention", "Conv1d", "Dropout", "Embedding", "GPTClassifier", "GPTConfig", "GRUCell",
    "KVCache", "LayerCache", "LayerNorm", "Linear", "Llama", "LlamaConfig", "LoRALinear", "Module", "ModuleDict",
    "ModuleList", "Parameter", "RMSNorm", "RNNCell", "ReLU", "RotaryEmbedding", "SamplingSettings",
    "Sequential", "Sigmoid", "SwiGLU", "Tanh", "apply_lora", "count_parameters", "load_lora_state_dict",
    "lora_layers", "lora_state_dict", "merge_and_unload", "merged_state_dict",
]
