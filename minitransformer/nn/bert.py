"""A BERT-style encoder, top to bottom in the order data flows (Devlin et al. 2018).

config -> embeddings -> self-attention -> attention output -> feed-forward -> layer -> encoder
-> pooler -> the model, then sentence features (mean pooling) and a classification head.

Unlike GPT's blocks, BERT's are post-LayerNorm: each sub-layer's output is added to its input
and the sum is normalised, x = LayerNorm(x + sublayer(x)). Attention is bidirectional; only
padding is hidden. Module attribute names are those of Hugging Face's ``BertModel``, so
``state_dict()`` keys equal a BERT checkpoint's (``encoder.layer.0.attention.self.query.weight``)
and pretrained weights such as all-MiniLM-L6-v2 load without renaming.

    model = pretrained.load_bert("path/to/all-MiniLM-L6-v2")  # config.json, model.safetensors
    hidden = model(input_ids, attention_mask)                          # (B, T, C)
    embeddings = model.sentence_embeddings(input_ids, attention_mask)  # (B, C), unit length
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor, describe
from .gpt import merge_heads, split_heads
from .layers import Dropout, Embedding, LayerNorm, Linear
from .module import Module, ModuleList, new_parameter


@dataclass
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that shape the model (the defaults are
    BERT-base's); ``from_json`` ignores the others (architectures, model_type, ...)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    hidden_act: str = "gelu"  # exact, erf-based GELU

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig: {name} must be in [0, 1), got {getattr(self, name)}")
        if self.hidden_act not in ("gelu", "gelu_new"):
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not supported; "
                             "expected 'gelu' (exact) or 'gelu_new' (tanh approximation)")

    @classmethod
    def from_dict(cls, values: dict) -> BertConfig:
        embedding_type = values.get("position_embedding_type", "absolute")
        if embedding_type != "absolute":
            raise ValueError(f"BertConfig: position_embedding_type {embedding_type!r} is not "
                             "supported; expected 'absolute' (learned position embeddings)")
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict:
        return asdict(self)


def _ids_array(ids, name: str, like: Tensor):
    """Token ids (array, tensor or nested list) as an integer array on ``like``'s device."""
    ids = ids.data if isinstance(ids, Tensor) else ids
    ids = ids if backend.is_array(ids) else np.asarray(ids, dtype=np.int64)
    if ids.ndim != 2 or ids.dtype.kind not in "iub":
        raise ValueError(f"BertModel: {name} must be (B, T) integers, got {describe(ids)}")
    return backend.to_device(ids, like.device)


class BertEmbeddings(Module):
    """x = LayerNorm(E_word[ids] + E_position[t] + E_type[segment])   (F15 three times)"""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids) -> Tensor:
        T = input_ids.shape[1]
        positions = backend.array_module(input_ids).arange(T)  # (T,)
        x = self.word_embeddings(input_ids)  # (B, T, C)
        x = x + self.position_embeddings(positions)  # (T, C) broadcast over the batch
        x = x + self.token_type_embeddings(token_type_ids)  # (B, T, C)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Module):
    """Multi-head attention, every position looking at every (non-padding) position.

    Separate query, key and value projections; each head computes softmax(q k^T / sqrt(hs)
    + M) v (F14) on its slice of the channels, M = -inf on padding keys.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.query, self.key, self.value = Linear(C, C), Linear(C, C), Linear(C, C)
        self.n_head = config.num_attention_heads
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, mask) -> Tensor:
        # the heads split and merged as in GPT's attention (nn/gpt.py)
        q, k, v = (split_heads(projection(x), self.n_head) for projection in (self.query, self.key, self.value))
        dropout_p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=dropout_p)  # (B, nh, T, hs)
        return merge_heads(y)  # (B, T, C)


class BertResidualOutput(Module):
    """LayerNorm(x + Dropout(h W^T + b)): project a sub-layer's output h back to the hidden size
    and close the post-LN residual around it. Both of a layer's sub-layers end this way: the
    attention (h = the heads, hidden_size wide) and the feed-forward network (h = its
    intermediate_size-wide middle)."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = Linear(in_features, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertAttention(Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # the checkpoint's name: attention.self.query...
        self.output = BertResidualOutput(config, config.hidden_size)

    def forward(self, x: Tensor, mask) -> Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(Module):
    """GELU(x W_1^T + b_1): the feed-forward network's widening half, C -> intermediate_size"""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.approximate = "tanh" if config.hidden_act == "gelu_new" else "none"

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x), approximate=self.approximate)  # (B, T, 4C)


class BertLayer(Module):
    """One post-LayerNorm encoder layer: x = LN(x + attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config, config.intermediate_size)

    def forward(self, x: Tensor, mask) -> Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, mask) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(Module):
    """tanh(W h_[CLS] + b): BERT's sentence feature, trained by next-sentence prediction."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return F.tanh(self.dense(hidden[:, 0]))  # (B, C)


def mean_pool(hidden: Tensor, attention_mask) -> Tensor:
    """The average of the real tokens' vectors: sum_t m_t h_t / max(sum_t m_t, 1e-9), (B, C).

    Padding positions (mask 0) must not count, or the same sentence would get a different
    embedding in a batch with longer sentences. Differentiable in ``hidden``.
    """
    mask = attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask
    mask = mask if backend.is_array(mask) else np.asarray(mask)
    mask = backend.to_device(mask, hidden.device).astype(hidden.dtype)[:, :, None]  # (B, T, 1)
    counts = backend.array_module(mask).maximum(mask.sum(axis=1), 1e-9)  # (B, 1)
    return (hidden * mask).sum(axis=1) / counts  # (B, C)


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_2, eps) along the last axis: unit vectors, so a dot product is a cosine."""
    norms = ((x * x).sum(axis=-1, keepdims=True)).sqrt()  # (B, 1)
    return x / F.maximum(norms, eps)


class BertModel(Module):
    """Embeddings, num_hidden_layers encoder layers and (optionally) the pooler."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self._init_weights()

    def _init_weights(self) -> None:
        """BERT's initialisation: weights N(0, 0.02), biases 0, LayerNorm gains 1."""
        for name, param in self.named_parameters():
            if "LayerNorm" in name:
                continue
            if name.endswith(".bias"):
                param.data = np.zeros(param.shape, dtype=param.dtype)
            else:
                param.data = new_parameter(param.shape, std=0.02).data

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        """input_ids (B, T) -> last hidden state (B, T, C).

        attention_mask (B, T): 1 for real tokens, 0 for padding (default: all real);
        token_type_ids (B, T): the segment of each token, 0 or 1 (default: all 0).
        """
        weight = self.embeddings.word_embeddings.weight
        input_ids = _ids_array(input_ids, "input_ids", weight)
        B, T = input_ids.shape
        if T > self.config.max_position_embeddings:
            raise ValueError(f"BertModel: input_ids has {T} positions but the model has only "
                             f"{self.config.max_position_embeddings}; truncate the input")
        xp = backend.array_module(input_ids)
        if token_type_ids is None:
            token_type_ids = xp.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = xp.ones_like(input_ids)
        token_type_ids = _ids_array(token_type_ids, "token_type_ids", weight)
        attention_mask = _ids_array(attention_mask, "attention_mask", weight)
        for name, array in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
            if array.shape != (B, T):
                raise ValueError(f"BertModel: {name} is {describe(array)}; expected the shape "
                                 f"of input_ids {(B, T)}")
        # True = may attend; the same key mask for every head and query: (B, 1, 1, T)
        mask = (attention_mask != 0)[:, None, None, :]
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        return self.encoder(x, mask)  # (B, T, C)

    def sentence_embeddings(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        """Unit-length sentence vectors (B, C): the mean of the last hidden states over the real
        tokens, then L2 normalisation (what sentence-transformers computes for MiniLM)."""
        hidden = self(input_ids, attention_mask, token_type_ids)  # (B, T, C)
        if attention_mask is None:
            attention_mask = np.ones(hidden.shape[:2], dtype=np.int64)
        return l2_normalize(mean_pool(hidden, attention_mask))

    def load_checkpoint_state(self, state: dict) -> None:
        """Load renamed checkpoint tensors (see ``pretrained.checkpoint_state``), strictly: every missing,
        unexpected or mis-shaped key is reported. A model without a pooler skips the
        checkpoint's pooler weights."""
        if self.pooler is None:
            state = {name: value for name, value in state.items() if not name.startswith("pooler.")}
        self.load_state_dict(state, strict=True)


class BertForSequenceClassification(Module):
    """An encoder, dropout and a linear head over a sentence feature: the features are the
    masked mean of the hidden states (``pooling="mean"``, as MiniLM's sentence embeddings) or
    the pooler's tanh(W h_[CLS]) (``pooling="cls"``, as in the BERT paper)."""

    def __init__(self, config: BertConfig, num_labels: int = 2, pooling: str = "mean"):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"BertForSequenceClassification: pooling must be 'mean' or 'cls', "
                             f"got {pooling!r}")
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"BertForSequenceClassification: num_labels must be a positive "
                             f"integer, got {num_labels!r}")
        self.config, self.num_labels, self.pooling = config, num_labels, pooling
        self.bert = BertModel(config, add_pooling_layer=pooling == "cls")
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, num_labels)
        self.classifier.weight = new_parameter((num_labels, config.hidden_size), std=0.02)
        self.classifier.bias = new_parameter((num_labels,), fill=0.0)

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None):
        """-> (logits (B, num_labels), the mean cross-entropy against ``labels`` (B,) or None)"""
        hidden = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, C)
        if self.pooling == "cls":
            features = self.bert.pooler(hidden)  # (B, C)
        else:
            if attention_mask is None:
                attention_mask = np.ones(hidden.shape[:2], dtype=np.int64)
            features = mean_pool(hidden, attention_mask)  # (B, C)
        logits = self.classifier(self.dropout(features))  # (B, num_labels)
        if labels is None:
            return logits, None
        labels = labels.data if isinstance(labels, Tensor) else labels
        labels = labels if backend.is_array(labels) else np.asarray(labels)
        labels = backend.to_device(labels, logits.device)
        return logits, F.cross_entropy(logits, labels)
