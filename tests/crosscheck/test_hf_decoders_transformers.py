"""Hugging Face checkpoints written by ``transformers`` itself (tiny, random weights: every norm
gain and bias drawn too, so a misplaced one shows) load onto nn.GPT and nn.Llama with the same
logits (float32, 1e-4 relative) and the same greedy generations; bf16, fp16 and sharded files too.
Skipped when ``transformers`` (the [crosscheck] extra) is not installed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import minitransformer as mt  # noqa: E402
from minitransformer import hf_decoders  # noqa: E402

VOCAB = 97
SMALL = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)
FAMILIES = {
    "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4)),
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL)),
    # SmolLM2's shape: a Llama with tied embeddings and rope_theta 100000
    "smollm2": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **SMALL, tie_word_embeddings=True, rope_theta=100000.0)),
    # Llama 3.1/3.2: rope_theta 500000 and the llama3 frequency scaling
    "llama3": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **SMALL, rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 16})),
    "qwen2": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**SMALL)),
    "qwen3": lambda: transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**SMALL, head_dim=16)),
    # a sliding window of 16 positions: attention is full up to there, so the model is exact up to 16 tokens
    "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL, sliding_window=16)),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_model(family: str):
    """A tiny model of ``family`` with every parameter random (norm gains around 1)."""
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            is_gain = name.endswith("norm.weight") or ".ln_" in name and name.endswith(".weight")
            param.copy_(1 + 0.1 * torch.randn_like(param) if is_gain else 0.2 * torch.randn_like(param))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """family -> (the transformers model, the folder it was saved to)."""
    folders = {}
    for family in FAMILIES:
        model = random_model(family)
        folder = tmp_path_factory.mktemp(family)
        model.save_pretrained(folder)
        folders[family] = (model, folder)
    return folders


def all_logits(model, ids):
    with mt.no_grad():
        return model.lm_head(model.hidden_states(ids)).numpy()  # (B, T, V)


def assert_close_logits(ours, theirs, rtol=1e-4):
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rtol * scale, np.abs(ours - theirs).max() / scale


@pytest.mark.parametrize("family", list(FAMILIES))
def test_logits_and_greedy_generation_match_transformers(saved, family):
    reference, folder = saved[family]
    model = hf_decoders.load_model(folder)
    ids = np.random.default_rng(1).integers(0, VOCAB, (2, 12))
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    assert_close_logits(all_logits(model, ids), expected)

    prompt = ids[:1, :5]
    with torch.no_grad():
        theirs = reference.generate(torch.tensor(prompt), max_new_tokens=10, do_sample=False, min_new_tokens=10,
                                    pad_token_id=0, eos_token_id=None).numpy()
    ours = model.generate(prompt, max_new_tokens=10, temperature=0).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_gpt2_conv1d_weights_are_transposed_views_not_copies(saved):
    reference, folder = saved["gpt2"]
    model = hf_decoders.load_model(folder)
    c_attn = model.transformer.h[0].attn.c_attn.weight.data
    assert c_attn.shape == (96, 32)  # Linear's (out, in); the file holds Conv1D's (in, out) = (32, 96)
    np.testing.assert_array_equal(c_attn.T, reference.transformer.h[0].attn.c_attn.weight.detach().numpy())
    assert not c_attn.flags.owndata  # a view of the memory-mapped file
    assert model.lm_head.weight is model.transformer.wte.weight


def test_sharded_checkpoint_loads_like_a_single_file(tmp_path):
    reference = random_model("qwen2")
    reference.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file() and not (tmp_path / "model.safetensors").exists()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 2
    ids = np.arange(10)[None] % VOCAB
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    assert_close_logits(all_logits(hf_decoders.load_model(tmp_path), ids), expected)


@pytest.mark.parametrize("stored", ["bfloat16", "float16"])
def test_half_precision_checkpoint_loads_into_float32(tmp_path, stored):
    """A bf16/fp16 file widened to float32 gives the logits of the float32 model whose weights
    are the rounded ones: widening is exact."""
    reference = random_model("llama").to(getattr(torch, stored))
    reference.save_pretrained(tmp_path)
    model = hf_decoders.load_model(tmp_path)
    assert model.lm_head.weight.dtype == np.float32
    ids = np.arange(8)[None]
    widened = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    with torch.no_grad():  # (reference.float() would keep RoPE's frequencies rounded to 16 bits)
        expected = widened(torch.tensor(ids)).logits.numpy()
    assert_close_logits(all_logits(model, ids), expected)


def test_float16_on_request(saved, tmp_path):
    reference, folder = saved["llama"]
    model = hf_decoders.load_model(folder, dtype=np.float16)
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float16)}
    ids = np.arange(8)[None]
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    logits = all_logits(model, ids)
    assert np.isfinite(logits).all()
    assert_close_logits(logits.astype(np.float32), expected, rtol=2e-2)  # fp16 rounding, 11 bits


def test_load_lm_with_a_trained_tokenizer_matches_transformers_end_to_end(tmp_path, capsys):
    """A GPT-2 folder with a byte-level BPE tokenizer trained by ``tokenizers`` and saved by
    transformers: the same ids for texts it was not trained on, and the same greedy text from
    ``generate --pretrained`` as from transformers' generate and decode."""
    tokenizers = pytest.importorskip("tokenizers")
    from minitransformer.cli import main
    from minitransformer.pretrained import load_lm

    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["the cat sat on the mat", "a tensor holds numbers", "the model reads text"] * 20,
                                  trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=fast.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=4,
        eos_token_id=fast.eos_token_id, bos_token_id=fast.eos_token_id)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(8)  # livelier logits than the 0.02 initialisation
    model.save_pretrained(tmp_path)
    fast.save_pretrained(tmp_path)

    lm = load_lm(tmp_path)
    for text in ("The cats read numbers!", "théorie des tenseurs", "  two  spaces\nand a line", "<|endoftext|>x"):
        assert lm.tokenizer.encode(text) == fast.encode(text), text
    prompt = "the tensor"
    with torch.no_grad():
        out = model.generate(torch.tensor([fast.encode(prompt)]), max_new_tokens=12, do_sample=False,
                             pad_token_id=fast.eos_token_id)
    expected = fast.decode(out[0], skip_special_tokens=False).split("<|endoftext|>")[0]
    assert main(["generate", "--pretrained", str(tmp_path), "--prompt", prompt, "--temperature", "0",
                 "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out == expected + "\n"
