"""Layers and models: ``Module``/``Parameter``, the basic layers, GPT, a Llama-style decoder, a
BERT-style encoder, and the documents' other architectures (1-D and 2-D convolution, pooling, recurrent cells and layers)."""

from .attention import KVCache, LayerCache
from .bert import BertConfig, BertForSequenceClassification, BertModel
from .bert_pretraining import BertForPreTraining
from .classifier import GPTClassifier
from .conv import Conv1d, Conv2d, Flatten, MaxPool2d
from .gpt import GPT, MLP, Block, CausalSelfAttention, GPTConfig
from .generation import SamplingSettings
from .layers import (GELU, Dropout, Embedding, LayerNorm, Linear, ReLU, RMSNorm, RotaryEmbedding, Sigmoid,
                     SwiGLU, Tanh)
from .llama import Llama, LlamaConfig
from .lora import (LoRALinear, apply_lora, count_parameters, load_lora_state_dict, lora_layers, lora_state_dict,
                   merge_and_unload, merged_state_dict)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GELU", "GPT", "GRU", "LSTM", "LSTMCell", "MLP", "RNN", "BertConfig", "BertForPreTraining",
    "BertForSequenceClassification", "BertModel", "Block", "CausalSelfAttention", "Conv1d", "Conv2d", "Flatten",
    "MaxPool2d", "Dropout", "Embedding", "GPTClassifier", "GPTConfig", "GRUCell",
    "KVCache", "LayerCache", "LayerNorm", "Linear", "Llama", "LlamaConfig", "LoRALinear", "Module", "ModuleDict",
    "ModuleList", "Parameter", "RMSNorm", "RNNCell", "ReLU", "RotaryEmbedding", "SamplingSettings",
    "Sequential", "Sigmoid", "SwiGLU", "Tanh", "apply_lora", "count_parameters", "load_lora_state_dict",
    "lora_layers", "lora_state_dict", "merge_and_unload", "merged_state_dict",
]
