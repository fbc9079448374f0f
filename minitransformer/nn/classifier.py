"""A sequence classifier on a GPT trunk: pool the token features, then one Linear layer."""

from __future__ import annotations

from .. import functional as F
from ..backend import array_module
from ..tensor import Tensor
from .gpt import GPT
from .layers import Dropout, Linear
from .module import Module

POOLINGS = ("mean", "last")


class GPTClassifier(Module):
    """logits = W pool(GPT features) + b.

    pooling "mean": the average of the features of the real (unpadded) tokens;
    pooling "last": the features of the last real token, the only position that has seen the
    whole text through the causal mask.
    """

    def __init__(self, gpt: GPT, num_classes: int, pooling: str = "mean", dropout: float = 0.1,
                 feature_l2: float = 0.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"GPTClassifier: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.gpt = gpt
        self.pooling, self.feature_l2 = pooling, feature_l2
        self.dropout = Dropout(dropout)
        self.head = Linear(gpt.config.n_embd, num_classes)

    def features(self, ids, mask) -> Tensor:
        """ids, mask (B, T) -> pooled features (B, C); mask is 1 for real tokens, 0 for padding."""
        hidden = self.gpt.hidden_states(ids)  # (B, T, C)
        xp = array_module(hidden.data)
        mask = xp.asarray(mask, dtype=hidden.dtype)  # (B, T)
        lengths = mask.sum(axis=1)  # (B,)
        if self.pooling == "last":
            return hidden[xp.arange(hidden.shape[0]), lengths.astype(xp.int64) - 1]  # (B, C)
        summed = (hidden * Tensor(mask[:, :, None])).sum(axis=1)  # (B, C)
        return summed / Tensor(lengths[:, None])

    def forward(self, ids, mask, labels=None):
        """-> (logits (B, classes), loss or None).

        loss = cross-entropy + feature_l2 * mean ||features||^2: F8 with the sign that
        regularises (the document's minus in front of the whole sum rewards large features)."""
        features = self.features(ids, mask)
        logits = self.head(self.dropout(features))
        if labels is None:
            return logits, None
        loss = F.cross_entropy(logits, labels)
        if self.feature_l2:
            loss = loss + self.feature_l2 * (features * features).sum(axis=1).mean()
        return logits, loss
