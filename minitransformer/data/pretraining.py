"""BERT's pretraining data: sentence pairs for next-sentence prediction, and masked tokens.

BERT (Devlin et al. 2018, section 3.1) learns from unlabelled text with two tasks at once:

- **Next-sentence prediction (NSP).** Each example is ``[CLS] A [SEP] B [SEP]``: half of the
  time B is the segment that follows A in the corpus (label 0, IsNext), half of the time a
  random segment from elsewhere (label 1, NotNext). ``token_type_ids`` are 0 on ``[CLS] A
  [SEP]`` and 1 on ``B [SEP]``.
- **Masked language modelling (MLM).** 15% of the non-special positions are chosen; of those,
  80% become ``[MASK]``, 10% a random token and 10% stay as they are (so the model cannot
  rely on ``[MASK]`` marking the positions it is asked about). The labels hold the original
  id at the chosen positions and -100 elsewhere, the ``ignore_index`` of ``F.cross_entropy``:
  the loss is computed on the chosen positions only.

Here a *segment* is a paragraph: the corpus split at blank lines (in the standard library's
docstrings, a docstring or a paragraph of one). The corpus text does not record where one
docstring ends and the next begins, so a random B is drawn from anywhere at least
``MIN_DISTANCE`` paragraphs away from A; among thousands of paragraphs that is another
document almost always, which is what BERT's "random segment from another document" asks.

Masking follows Hugging Face's ``DataCollatorForLanguageModeling`` (``torch_mask_tokens``):
each position is chosen independently with probability 0.15 (BERT's original
``create_pretraining_data.py`` instead picks exactly round(0.15 T) positions per sequence; the
expectation is the same). Unlike both, the random replacement is drawn from the ordinary
tokens only, never a special one such as ``[PAD]``. Everything takes a numpy Generator, so a
seeded run draws the same examples. No autograd here.

    pairs = SentencePairs.from_text(text, tokenizer)
    ids, types, mask, nsp_labels = pairs.batch(batch_size=16, block_size=128, rng=rng)
    masked_ids, mlm_labels = mask_tokens(ids, rng, tokenizer.mask_id, special_ids, vocab_size)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = -100  # F.cross_entropy skips rows with this label
MIN_DISTANCE = 8  # paragraphs between A and a random B, so B is not a near neighbour
IS_NEXT, NOT_NEXT = 0, 1  # Hugging Face's next_sentence_label: 0 = B follows A


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, mask_id: int, special_ids, vocab_size: int,
                probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking rule on a batch of token ids (B, T): (the masked ids, the labels), each (B, T).

    A position is chosen with ``probability`` unless its id is in ``special_ids``; a chosen
    position becomes ``mask_id`` with probability 0.8, a random ordinary token with 0.1, and
    keeps its id with 0.1. labels = the original id where chosen, IGNORE_INDEX elsewhere.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"mask_tokens: expected (B, T) integer token ids, got shape {ids.shape} and dtype {ids.dtype}")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"mask_tokens: probability must be in (0, 1), got {probability!r}")
    special = np.isin(ids, np.asarray(list(special_ids), dtype=ids.dtype))  # (B, T)
    ordinary = np.setdiff1d(np.arange(vocab_size), np.asarray(list(special_ids)))  # ids a random token may take
    if len(ordinary) == 0:
        raise ValueError(f"mask_tokens: the vocabulary of {vocab_size} ids holds only special tokens")
    chosen = (rng.random(ids.shape) < probability) & ~special  # (B, T) the positions the loss reads
    action = rng.random(ids.shape)  # (B, T) one draw decides [MASK] / random / keep
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    random_tokens = ordinary[rng.integers(0, len(ordinary), size=ids.shape)]  # (B, T)
    masked = np.where(to_mask, mask_id, np.where(to_random, random_tokens, ids)).astype(np.int64)
    labels = np.where(chosen, ids, IGNORE_INDEX).astype(np.int64)
    return masked, labels


def split_paragraphs(text: str) -> list[str]:
    """The text's paragraphs: the pieces between blank lines, stripped, empty ones dropped."""
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def truncate_pair(first: list[int], second: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Cut the longer of the two until together they hold at most ``budget`` tokens (BERT's
    ``truncate_seq_pair``). A keeps its end and B its start: the tokens next to the boundary
    are what tells whether B follows A."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop(0)
        else:
            second.pop()
    return first, second


@dataclass
class SentencePairs:
    """A corpus as a list of segments (token ids, without [CLS] or [SEP]) and the ids that frame
    a pair; ``batch`` draws NSP examples from it."""

    segments: list[list[int]]
    cls_id: int
    sep_id: int
    pad_id: int

    def __post_init__(self):
        if len(self.segments) < 2 * MIN_DISTANCE + 2:
            raise ValueError(f"SentencePairs: the text has {len(self.segments)} paragraphs; next-sentence "
                             f"prediction needs at least {2 * MIN_DISTANCE + 2} (separated by blank lines)")

    @classmethod
    def from_text(cls, text: str, tokenizer) -> SentencePairs:
        """Paragraphs of ``text`` as word pieces of a WordPiece ``tokenizer``; paragraphs with no
        token are dropped."""
        vocab = tokenizer.vocab
        segments = []
        for paragraph in split_paragraphs(text):
            ids = [vocab.get(token, tokenizer.unk_id) for token in tokenizer.tokenize(paragraph)]
            if ids:
                segments.append(ids)
        return cls(segments, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)

    def split(self, val_fraction: float = 0.1) -> tuple[SentencePairs, SentencePairs]:
        """(train, validation): the first and the last paragraphs, not shuffled (as
        ``train_val_split``), so no validation paragraph is ever an A or a B in training."""
        n_val = max(2 * MIN_DISTANCE + 2, int(round(len(self.segments) * val_fraction)))
        if len(self.segments) - n_val < 2 * MIN_DISTANCE + 2:
            raise ValueError(f"SentencePairs: {len(self.segments)} paragraphs are too few to hold out "
                             f"{n_val} for validation; use a longer text")
        frame = (self.cls_id, self.sep_id, self.pad_id)
        return SentencePairs(self.segments[:-n_val], *frame), SentencePairs(self.segments[-n_val:], *frame)

    def pair(self, index: int, rng: np.random.Generator) -> tuple[list[int], list[int], int]:
        """(A, B, label) for the segment at ``index``: B its successor with probability 1/2
        (IS_NEXT), else a segment at least MIN_DISTANCE away (NOT_NEXT)."""
        n = len(self.segments)
        if rng.random() < 0.5:
            return self.segments[index], self.segments[index + 1], IS_NEXT
        # uniform over the segments outside the window [index - MIN_DISTANCE, index + MIN_DISTANCE]
        low, high = max(0, index - MIN_DISTANCE), min(n, index + MIN_DISTANCE + 1)
        other = int(rng.integers(0, n - (high - low)))
        other = other if other < low else other + (high - low)
        return self.segments[index], self.segments[other], NOT_NEXT

    def encode_pair(self, first: list[int], second: list[int], block_size: int) -> tuple[list[int], list[int]]:
        """([CLS] A [SEP] B [SEP] ids, their token types 0...0 1...1), at most block_size long."""
        if block_size < 5:
            raise ValueError(f"SentencePairs: block_size must be at least 5 ([CLS] a [SEP] b [SEP]), got {block_size}")
        first, second = truncate_pair(first, second, block_size - 3)
        ids = [self.cls_id, *first, self.sep_id, *second, self.sep_id]
        types = [0] * (len(first) + 2) + [1] * (len(second) + 1)
        return ids, types

    def batch(self, batch_size: int, block_size: int, rng: np.random.Generator):
        """B random NSP examples: (input_ids, token_type_ids, attention_mask) (B, T), padded
        with [PAD] to T = block_size, and the NSP labels (B,)."""
        input_ids = np.full((batch_size, block_size), self.pad_id, dtype=np.int64)  # (B, T)
        token_type_ids = np.zeros((batch_size, block_size), dtype=np.int64)  # (B, T)
        attention_mask = np.zeros((batch_size, block_size), dtype=np.int64)  # (B, T)
        labels = np.zeros(batch_size, dtype=np.int64)  # (B,)
        starts = rng.integers(0, len(self.segments) - 1, size=batch_size)  # the last segment has no successor
        for row, index in enumerate(starts):
            first, second, labels[row] = self.pair(int(index), rng)
            ids, types = self.encode_pair(first, second, block_size)
            input_ids[row, :len(ids)] = ids
            token_type_ids[row, :len(ids)] = types
            attention_mask[row, :len(ids)] = 1
        return input_ids, token_type_ids, attention_mask, labels
