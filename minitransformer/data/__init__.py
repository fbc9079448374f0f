"""The data layer: text to train on, tokenizers, and batches. No autograd here, only NumPy.

    from minitransformer import data
    text = data.stdlib_docstrings()                        # or data.load_text("my.txt")
    tokenizer = data.ByteBPETokenizer.train(text, vocab_size=512)
    train, val = data.train_val_split(tokenizer.encode(text))
    x, y = data.get_batch(train, batch_size=32, block_size=128)   # (B, T) int64 each

    dataset = data.stdlib_classification()                 # or data.load_csv("labels.csv")
    train_set, test_set = data.train_test_split(dataset, test_fraction=0.2, seed=0)

    pairs = data.default_instructions()                    # or data.load_instructions("pairs.jsonl")
    inputs, targets = data.instruction_batch([data.encode_pair(tokenizer, pairs[0], [0], 128)])
    hf = data.load_tokenizer_json("path/to/model")         # a Hugging Face tokenizer.json
    tokenizer = data.WordPieceTokenizer.train_characters(text)   # BERT pretraining (pretraining.py)
    pairs = data.SentencePairs.from_text(text, tokenizer)
    ids, token_types, attention_mask, nsp_labels = pairs.batch(16, 128, rng)
    masked_ids, mlm_labels = data.mask_tokens(ids, rng, tokenizer.mask_id, tokenizer.special_ids, tokenizer.vocab_size)
"""

from .batching import get_batch, train_val_split
from .bpe import bytes_to_unicode, pretokenize
from .classification import (
    STDLIB_PACKAGES, LabelledTexts, load_csv, stdlib_classification, train_test_split,
)
from .pretraining import SentencePairs, mask_tokens
from .corpus import cache_dir, load_text, python_sources, source_docstrings, stdlib_dir, stdlib_docstrings
from .instructions import (IGNORE_INDEX, InstructionPair, default_instructions, encode_pair, format_prompt,
                           instruction_batch, load_instructions)
from .tokenizer_json import HuggingFaceTokenizer, load_tokenizer_json
from .tokenizers import TOKENIZERS, ByteBPETokenizer, CharTokenizer, load_tokenizer
from .wordpiece import WordPieceTokenizer

__all__ = [
    "IGNORE_INDEX", "InstructionPair", "STDLIB_PACKAGES", "TOKENIZERS", "ByteBPETokenizer", "CharTokenizer",
    "HuggingFaceTokenizer", "LabelledTexts", "SentencePairs", "WordPieceTokenizer", "bytes_to_unicode", "cache_dir",
    "default_instructions", "encode_pair", "format_prompt", "get_batch", "instruction_batch", "load_csv",
    "load_instructions", "load_text", "load_tokenizer", "load_tokenizer_json", "mask_tokens", "pretokenize",
    "python_sources",
    "source_docstrings", "stdlib_classification", "stdlib_dir", "stdlib_docstrings",
    "train_test_split", "train_val_split",
]
