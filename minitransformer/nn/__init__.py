"""Layers and models: ``Module``/``Parameter``, the basic layers, GPT, a BERT-style encoder,
and the documents' other architectures (1-D convolution, recurrent cells)."""

from .bert import BertConfig, BertForSequenceClassification, BertModel
from .classifier import GPTClassifier
from .conv import Conv1d
from .gpt import GPT, MLP, Block, CausalSelfAttention, GPTConfig
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear, ReLU, Sigmoid, Tanh
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .recurrent import RNN, GRUCell, RNNCell

__all__ = [
    "GELU", "GPT", "MLP", "RNN", "BertConfig", "BertForSequenceClassification", "BertModel", "Block",
    "CausalSelfAttention", "Conv1d", "Dropout", "Embedding", "GPTClassifier", "GPTConfig", "GRUCell",
    "LayerNorm", "Linear", "Module", "ModuleDict", "ModuleList", "Parameter", "RNNCell", "ReLU",
    "Sequential", "Sigmoid", "Tanh",
]
