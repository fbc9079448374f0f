"""BERT's pretraining heads: masked language modelling and next-sentence prediction (Devlin et
al. 2018, section 3.1), on top of ``BertModel``.

    hidden (B, T, C) -> cls.predictions: transform (dense, GELU, LayerNorm), then the decoder,
                        tied to the word embeddings, + bias       -> prediction logits (B, T, V)
    pooled (B, C)    -> cls.seq_relationship: Linear(C, 2)       -> IsNext / NotNext logits (B, 2)

Module names are Hugging Face's ``BertForPreTraining`` (``bert.*``, ``cls.predictions.*``,
``cls.seq_relationship.*``), so a pretrained run's state dict maps onto that layout key by key,
and the encoder's weights (``bert.*``) are what ``finetune --from-run`` starts from.

The loss is the sum of two cross-entropies: the masked-LM loss over the chosen positions only
(labels -100 elsewhere, see ``data/pretraining.py``) and the NSP loss over the pairs.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from .bert import BertConfig, BertModel
from .layers import LayerNorm, Linear
from .module import Module, new_parameter

IGNORE_INDEX = -100


class BertPredictionHeadTransform(Module):
    """LayerNorm(GELU(h W^T + b)): one more layer between the encoder and the vocabulary."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.approximate = "tanh" if config.hidden_act == "gelu_new" else "none"

    def forward(self, hidden: Tensor) -> Tensor:
        return self.LayerNorm(F.gelu(self.dense(hidden), approximate=self.approximate))  # (B, T, C)


class BertLMPredictionHead(Module):
    """logits = transform(h) E^T + b   (F9): the scores of every vocabulary token at a position.

    The decoder's weight *is* the word-embedding matrix E (V, C), as GPT's lm_head is its wte:
    the vector that reads a token in is the one that scores it on the way out. The bias b (V,)
    is the head's own; as in Hugging Face's model it has two names, ``cls.predictions.bias``
    and ``cls.predictions.decoder.bias``, one Parameter.
    """

    def __init__(self, config: BertConfig, word_embeddings):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings  # tied: one (V, C) Parameter under two names
        self.bias = self.decoder.bias

    def forward(self, hidden: Tensor) -> Tensor:
        return self.decoder(self.transform(hidden))  # (B, T, V)


class BertPreTrainingHeads(Module):
    def __init__(self, config: BertConfig, word_embeddings):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = Linear(config.hidden_size, 2)

    def forward(self, hidden: Tensor, pooled: Tensor) -> tuple[Tensor, Tensor]:
        return self.predictions(hidden), self.seq_relationship(pooled)  # (B, T, V), (B, 2)


def masked_lm_loss(prediction_logits: Tensor, labels) -> Tensor:
    """-(1/|M|) sum_{i in M} log softmax(logits_i)[x_i], M = the positions whose label is not -100.

    The mean is over the masked positions only: an unmasked position contributes neither to
    the loss nor to any gradient. (F7 in document 001 writes this objective as the causal
    -sum_i log P(x_i | x_<i); the masked model conditions on the whole unmasked sequence.)
    """
    V = prediction_logits.shape[-1]
    return F.cross_entropy(prediction_logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def _int_array(values, like: Tensor):
    values = values.data if isinstance(values, Tensor) else values
    values = values if backend.is_array(values) else np.asarray(values, dtype=np.int64)
    return backend.to_device(values, like.device)


class BertForPreTraining(Module):
    """The encoder (with its pooler) and both pretraining heads."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings.weight)
        for name, param in self.cls.named_parameters():  # BERT's initialisation, as BertModel's
            if name.endswith("bias"):
                param.data = np.zeros(param.shape, dtype=param.dtype)
            elif "LayerNorm" not in name and "decoder" not in name:  # the decoder is the embedding
                param.data = new_parameter(param.shape, std=0.02).data

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None):
        """-> (prediction logits (B, T, V), NSP logits (B, 2), loss or None).

        labels (B, T): the original ids at the masked positions, -100 elsewhere;
        next_sentence_label (B,): 0 if B follows A, 1 if it is random. The loss is the
        masked-LM loss plus the NSP loss, each given only when its labels are.
        """
        hidden = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, C)
        prediction_logits, nsp_logits = self.cls(hidden, self.bert.pooler(hidden))
        losses = []
        if labels is not None:
            losses.append(masked_lm_loss(prediction_logits, _int_array(labels, hidden)))
        if next_sentence_label is not None:
            losses.append(F.cross_entropy(nsp_logits, _int_array(next_sentence_label, hidden)))
        loss = None
        for part in losses:
            loss = part if loss is None else loss + part
        return prediction_logits, nsp_logits, loss

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.999)):
        """AdamW with weight decay on matrices only (not on biases and LayerNorm gains), as
        BERT's optimizer excludes them."""
        from ..optim import AdamW  # optim sits beside nn; imported here to keep nn free of it

        params = self.parameters()
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        return AdamW(groups, lr=learning_rate, betas=betas)
