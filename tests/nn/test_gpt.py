"""nn/gpt.py: nanoGPT's names and shapes, causality, the loss at initialisation, learning,
generation and cropping. Models are tiny; the full-size comparison with PyTorch is in
tests/crosscheck/test_gpt_torch.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim

TINY = dict(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16)


def tiny_gpt(**changes) -> nn.GPT:
    return nn.GPT(nn.GPTConfig(**{**TINY, **changes}))


def all_logits(model, idx) -> np.ndarray:
    """Logits at every position (forward returns them all when given targets)."""
    logits, _ = model(idx, np.zeros_like(idx))
    return logits.numpy()


def test_state_dict_has_nanogpts_names_and_shapes():
    model = tiny_gpt(n_layer=1)
    C, V, T = 16, 13, 8
    expected = {
        "transformer.wte.weight": (V, C), "transformer.wpe.weight": (T, C),
        "transformer.h.0.ln_1.weight": (C,), "transformer.h.0.ln_1.bias": (C,),
        "transformer.h.0.attn.c_attn.weight": (3 * C, C), "transformer.h.0.attn.c_attn.bias": (3 * C,),
        "transformer.h.0.attn.c_proj.weight": (C, C), "transformer.h.0.attn.c_proj.bias": (C,),
        "transformer.h.0.ln_2.weight": (C,), "transformer.h.0.ln_2.bias": (C,),
        "transformer.h.0.mlp.c_fc.weight": (4 * C, C), "transformer.h.0.mlp.c_fc.bias": (4 * C,),
        "transformer.h.0.mlp.c_proj.weight": (C, 4 * C), "transformer.h.0.mlp.c_proj.bias": (C,),
        "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,), "lm_head.weight": (V, C),
    }
    state = model.state_dict()
    assert {name: tuple(value.shape) for name, value in state.items()} == expected
    assert model.lm_head.weight is model.transformer.wte.weight
    assert all(value.dtype == np.float32 for value in state.values())
    no_bias = tiny_gpt(n_layer=1, bias=False).state_dict()
    assert set(no_bias) == {name for name in expected if not name.endswith(".bias")}


def test_num_parameters_counts_the_tied_matrix_once_and_leaves_out_positions_by_default():
    model = tiny_gpt()
    C, V, T, L = 16, 13, 8, 2
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    total = V * C + T * C + L * per_block + 2 * C
    assert model.num_parameters(non_embedding=False) == total
    assert model.num_parameters() == total - T * C


def test_initialisation_is_gpt2s():
    model = nn.GPT(nn.GPTConfig(block_size=16, vocab_size=64, n_layer=4, n_head=2, n_embd=64))
    params = dict(model.named_parameters())
    assert abs(params["transformer.h.0.attn.c_attn.weight"].numpy().std() - 0.02) < 0.002
    assert abs(params["transformer.wte.weight"].numpy().std() - 0.02) < 0.002
    residual = np.concatenate([p.numpy().ravel() for n, p in params.items() if n.endswith("c_proj.weight")])
    assert abs(residual.std() - 0.02 / math.sqrt(2 * 4)) < 0.001
    assert all(not p.numpy().any() for n, p in params.items() if n.endswith(".bias") and "ln_" not in n)
    assert all((p.numpy() == 1).all() for n, p in params.items() if "ln_" in n and n.endswith("weight"))


def test_logits_at_t_ignore_every_later_token():
    model = tiny_gpt()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 13, (2, 8))
    base = all_logits(model, idx)
    for t in range(7):
        changed = idx.copy()
        changed[:, t + 1:] = rng.integers(0, 13, (2, 7 - t))
        logits = all_logits(model, changed)
        np.testing.assert_array_equal(logits[:, :t + 1], base[:, :t + 1])
        if (changed[:, t + 1:] != idx[:, t + 1:]).any():
            assert not np.allclose(logits[:, t + 1:], base[:, t + 1:])  # the future does matter there


def test_forward_without_targets_gives_the_last_positions_logits():
    model = tiny_gpt()
    idx = np.random.default_rng(1).integers(0, 13, (3, 5))
    logits, loss = model(idx)
    assert loss is None and logits.shape == (3, 1, 13)
    np.testing.assert_allclose(logits.numpy()[:, 0], all_logits(model, idx)[:, -1], rtol=1e-6, atol=1e-7)


def test_loss_is_the_mean_next_token_cross_entropy_and_ignores_minus_one():
    model = tiny_gpt()
    rng = np.random.default_rng(2)
    idx, targets = rng.integers(0, 13, (2, 6)), rng.integers(0, 13, (2, 6))
    targets[0, :2] = -1
    logits, loss = model(idx, targets)
    log_probs = logits.numpy().astype(np.float64)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(-1, keepdims=True))
    counted = targets != -1
    expected = -log_probs[counted, targets[counted]].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_loss_at_initialisation_is_about_ln_vocab_size():
    V = 65
    model = nn.GPT(nn.GPTConfig(block_size=16, vocab_size=V, n_layer=2, n_head=2, n_embd=32))
    rng = np.random.default_rng(3)
    _, loss = model(rng.integers(0, V, (8, 16)), rng.integers(0, V, (8, 16)))
    assert abs(loss.item() - math.log(V)) < 0.1


def test_gpt_overfits_one_small_batch():
    model = tiny_gpt(n_layer=1)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 13, (2, 8))
    targets = rng.integers(0, 13, (2, 8))
    optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(150):
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _, loss = model(idx, targets)
    assert loss.item() < 0.05


def test_sequences_longer_than_the_block_are_refused():
    with pytest.raises(ValueError, match="GPT: cannot forward a sequence of length 9: block_size is only 8"):
        tiny_gpt()(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"GPT: idx must be \(B, T\) token ids, got shape \(8,\)"):
        tiny_gpt()(np.zeros(8, dtype=np.int64))


def test_dropout_follows_train_and_eval():
    model = tiny_gpt(dropout=0.3)
    idx = np.random.default_rng(5).integers(0, 13, (2, 8))
    assert not np.array_equal(all_logits(model, idx), all_logits(model, idx))
    model.eval()
    np.testing.assert_array_equal(all_logits(model, idx), all_logits(model, idx))


def test_configure_optimizers_decays_matrices_only():
    model = tiny_gpt()
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95))
    assert isinstance(optimizer, optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())
    assert all(g["lr"] == 3e-4 and g["betas"] == (0.9, 0.95) for g in optimizer.param_groups)


# --- generation ---------------------------------------------------------------------------------

def test_generate_appends_max_new_tokens_and_keeps_the_prompt():
    model = tiny_gpt()
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    out = model.generate(prompt, max_new_tokens=5).numpy()
    assert out.shape == (2, 8) and out.dtype == prompt.dtype
    np.testing.assert_array_equal(out[:, :3], prompt)
    assert out.min() >= 0 and out.max() < 13


def test_top_k_1_is_greedy_argmax():
    model = tiny_gpt()
    prompt = np.array([[1, 2], [7, 7]])
    out = model.generate(prompt, max_new_tokens=6, top_k=1).numpy()
    for t in range(2, 8):
        logits, _ = model(out[:, :t])
        np.testing.assert_array_equal(out[:, t], logits.numpy()[:, -1].argmax(-1))


def test_generate_crops_the_context_to_block_size():
    model = tiny_gpt()
    rng = np.random.default_rng(6)
    long_prompt = rng.integers(0, 13, (1, 20))  # longer than block_size 8
    mt.manual_seed(11)
    out = model.generate(long_prompt, max_new_tokens=4, top_k=1).numpy()
    assert out.shape == (1, 24)
    mt.manual_seed(11)
    cropped = model.generate(long_prompt[:, -8:], max_new_tokens=4, top_k=1).numpy()
    np.testing.assert_array_equal(out[:, 20:], cropped[:, 8:])
    mt.manual_seed(11)
    sampled = model.generate(long_prompt, max_new_tokens=4).numpy()
    mt.manual_seed(11)
    np.testing.assert_array_equal(sampled[:, 20:], model.generate(long_prompt[:, -8:], 4).numpy()[:, 8:])


def test_generate_is_reproducible_with_manual_seed():
    model = tiny_gpt()
    prompt = np.zeros((4, 1), dtype=np.int64)
    mt.manual_seed(7)
    first = model.generate(prompt, 10).numpy()
    mt.manual_seed(7)
    np.testing.assert_array_equal(model.generate(prompt, 10).numpy(), first)
    mt.manual_seed(8)
    assert not np.array_equal(model.generate(prompt, 10).numpy(), first)


def sample_frequencies(model, prompt, n, **kwargs) -> np.ndarray:
    out = model.generate(np.repeat(prompt, n, axis=0), max_new_tokens=1, **kwargs).numpy()[:, -1]
    return np.bincount(out, minlength=model.config.vocab_size) / n


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_samples_follow_softmax_of_logits_over_temperature(temperature):
    model = tiny_gpt()
    model.lm_head.weight.data *= 40  # a peaked distribution, so temperature visibly matters
    prompt = np.array([[3, 1, 4]])
    logits, _ = model(prompt)
    expected = F.softmax(mt.tensor(logits.numpy()[0, -1].astype(np.float64) / temperature)).numpy()
    n = 20000
    frequencies = sample_frequencies(model, prompt, n, temperature=temperature)
    # each frequency within 4.5 standard errors of its probability
    np.testing.assert_array_less(np.abs(frequencies - expected), 4.5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_top_k_samples_only_the_k_most_likely_tokens_renormalised():
    model = tiny_gpt()
    model.lm_head.weight.data *= 20
    prompt = np.array([[2, 2]])
    logits = model(prompt)[0].numpy()[0, -1].astype(np.float64)
    top = np.argsort(logits)[-3:]
    expected = np.zeros_like(logits)
    expected[top] = np.exp(logits[top] - logits[top].max())
    expected /= expected.sum()
    n = 20000
    frequencies = sample_frequencies(model, prompt, n, top_k=3)
    assert set(np.flatnonzero(frequencies)) <= set(top)
    np.testing.assert_array_less(np.abs(frequencies - expected), 4.5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_crop_block_size_keeps_the_first_positions_and_the_outputs():
    model = tiny_gpt()
    idx = np.random.default_rng(9).integers(0, 13, (2, 5))
    before = all_logits(model, idx)
    wpe = model.transformer.wpe.weight.numpy()
    model.crop_block_size(5)
    assert model.config.block_size == 5
    assert model.transformer.wpe.weight.shape == (5, 16)
    np.testing.assert_array_equal(model.transformer.wpe.weight.numpy(), wpe[:5])
    assert "transformer.wpe.weight" in dict(model.named_parameters())
    np.testing.assert_array_equal(all_logits(model, idx), before)
    with pytest.raises(ValueError, match="block_size is only 5"):
        model(np.zeros((1, 6), dtype=np.int64))
    out = model.generate(idx, 3).numpy()  # generation crops to the new block size
    assert out.shape == (2, 8)
    with pytest.raises(ValueError, match=r"crop_block_size: 6 must be in \[1, 5\]"):
        model.crop_block_size(6)


def test_config_checks_its_values():
    with pytest.raises(ValueError, match=r"n_embd \(10\) must be divisible by n_head \(3\)"):
        nn.GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        nn.GPTConfig(vocab_size=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        nn.GPTConfig(dropout=1.0)
    assert nn.GPTConfig().to_dict()["vocab_size"] == 50304


class FixedDraws:
    """A stand-in for the framework's generator that always draws the same uniform number."""

    def __init__(self, value):
        self.value = value

    def random(self, size, dtype=np.float64):
        return np.full(size, self.value, dtype=dtype)


@pytest.mark.parametrize("u", [0.0, np.nextafter(1.0, 0.0), np.nextafter(np.float32(1), np.float32(0))])
def test_sampling_never_picks_a_token_of_probability_zero_even_at_the_ends_of_the_draw(monkeypatch, u):
    """Inverse-CDF sampling with u = 0 or u just below 1 must still land on a token that top_k
    kept: with top_k=1 on the argmax, whatever u is."""
    model = tiny_gpt()
    model.lm_head.weight.data *= 30
    prompt = np.array([[5, 6, 7]])
    logits = model(prompt)[0].numpy()[0, -1]
    assert 0 < logits.argmax() < 12  # neither end of the vocabulary
    monkeypatch.setattr("minitransformer.backend.generator", lambda device="cpu": FixedDraws(u))
    assert model.generate(prompt, 1, top_k=1).numpy()[0, -1] == logits.argmax()
    top3 = set(np.argsort(logits)[-3:])
    assert model.generate(prompt, 1, top_k=3).numpy()[0, -1] in top3
