"""nn/generation.py and nn/attention.py: generation with the KV cache gives the logits of
generation without it at every step (float64 to 1e-10, float32 to 1e-5), hence the same tokens,
for GPT and the Llama-style model, also past the context window; each sampling rule does what
it promises; bad settings get one clear error."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from minitransformer.nn import generation
from minitransformer.nn.generation import SamplingSettings, keep_min_p, keep_top_p, sample_next_token

V, BLOCK = 13, 8


def tiny(arch: str, dtype=np.float32, **changes):
    if arch == "gpt":
        model = nn.GPT(nn.GPTConfig(**{**dict(block_size=BLOCK, vocab_size=V, n_layer=2, n_head=2, n_embd=16),
                                       **changes}))
    else:
        model = nn.Llama(nn.LlamaConfig(**{**dict(block_size=BLOCK, vocab_size=V, n_layer=2, n_head=4,
                                                  n_kv_head=2, n_embd=16, qk_norm=True), **changes}))
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model.eval()


def recorded_logits(model, prompt, steps, monkeypatch, **kwargs):
    """(the logits every step sampled from, the generated ids)."""
    seen = []
    original = generation.sample_next_token

    def recording(logits, *args):
        seen.append(logits.copy())
        return original(logits, *args)

    monkeypatch.setattr(generation, "sample_next_token", recording)
    out = model.generate(prompt, steps, **kwargs).numpy()
    monkeypatch.setattr(generation, "sample_next_token", original)
    return np.stack(seen), out


@pytest.mark.parametrize("arch", ["gpt", "llama"])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("prompt_length", [1, 5, 12])  # 12: longer than the context of 8
def test_cached_and_uncached_generation_see_the_same_logits_at_every_step(arch, dtype, tolerance,
                                                                          prompt_length, monkeypatch):
    model = tiny(arch, dtype)
    prompt = np.random.default_rng(prompt_length).integers(0, V, (2, prompt_length))
    steps = 14  # past the window: the cache fills and starts again
    cached, cached_ids = recorded_logits(model, prompt, steps, monkeypatch, temperature=0)
    uncached, uncached_ids = recorded_logits(model, prompt, steps, monkeypatch, temperature=0, use_cache=False)
    assert cached.shape == (steps, 2, V)
    np.testing.assert_allclose(cached, uncached, rtol=0, atol=tolerance * np.abs(uncached).max())
    np.testing.assert_array_equal(cached_ids, uncached_ids)
    # and each step's logits are those of the model run on the cropped context
    for step in range(steps):
        context = uncached_ids[:, :prompt_length + step][:, -BLOCK:]
        logits = model(context)[0].numpy()[:, -1]
        np.testing.assert_allclose(cached[step], logits, rtol=0, atol=tolerance * np.abs(logits).max())


@pytest.mark.parametrize("arch", ["gpt", "llama"])
def test_seeded_sampling_draws_the_same_tokens_with_and_without_the_cache(arch):
    model = tiny(arch, np.float64)
    prompt = np.random.default_rng(3).integers(0, V, (3, 10))
    options = dict(temperature=1.3, top_k=8, top_p=0.9, min_p=0.02, repetition_penalty=1.2, seed=5)
    cached = model.generate(prompt, 12, **options).numpy()
    np.testing.assert_array_equal(cached, model.generate(prompt, 12, use_cache=False, **options).numpy())
    assert not np.array_equal(cached, model.generate(prompt, 12, **{**options, "seed": 6}).numpy())


def test_a_seed_gives_its_own_draws_and_leaves_the_framework_generator_alone():
    model = tiny("gpt")
    prompt = np.zeros((4, 1), dtype=np.int64)
    mt.manual_seed(0)
    first = model.generate(prompt, 10, seed=1).numpy()
    state = mt.backend.get_rng_state()
    mt.manual_seed(123)
    np.testing.assert_array_equal(model.generate(prompt, 10, seed=1).numpy(), first)
    mt.manual_seed(0)
    model.generate(prompt, 10, seed=1)
    assert mt.backend.get_rng_state() == state  # nothing drawn from the shared generator


def test_the_cache_grows_per_layer_and_holds_2_layers_kv_heads_head_size_numbers_per_token():
    model = tiny("llama")  # 2 layers, 2 key/value heads of size 4, float32
    cache = nn.KVCache(model.config.n_layer, model.config.block_size)
    with mt.no_grad():
        model(np.zeros((1, 3), dtype=np.int64), cache=cache)
        assert cache.length == 3 and [layer.length for layer in cache.layers] == [3, 3]
        model(np.zeros((1, 1), dtype=np.int64), cache=cache)
    assert cache.length == 4
    assert cache.nbytes() == 4 * 2 * (2 * 2 * 4 * 4)  # tokens * layers * (k and v) * heads * hs * bytes
    with mt.no_grad(), pytest.raises(ValueError, match="Llama: cannot forward a sequence of length 9"):
        model(np.zeros((1, 5), dtype=np.int64), cache=cache)
    cache.reset()
    assert cache.length == 0


def test_the_cache_refuses_to_keep_a_graph_and_to_overflow():
    layer = nn.LayerCache(max_length=2)
    k = mt.tensor(np.ones((1, 1, 1, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="KVCache: the cache is for inference"):
        layer.append(k, k)
    with mt.no_grad():
        layer.append(k, k)
        with pytest.raises(ValueError, match="KVCache: holds 1 positions and got 2 more; at most 2 fit"):
            layer.append(mt.tensor(np.ones((1, 1, 2, 4))), mt.tensor(np.ones((1, 1, 2, 4))))


# --- one step's rules ------------------------------------------------------------------------------

class FixedDraws:
    def __init__(self, value):
        self.value = value

    def random(self, size, dtype=np.float64):
        return np.full(size, self.value, dtype=dtype)


def test_temperature_zero_is_greedy():
    logits = np.random.default_rng(0).standard_normal((5, V))
    ids = sample_next_token(logits, SamplingSettings(temperature=0), FixedDraws(0.999))
    np.testing.assert_array_equal(ids, logits.argmax(-1))


def test_top_p_keeps_the_fewest_most_likely_tokens_that_reach_p():
    probs = np.array([[0.1, 0.4, 0.2, 0.3]])
    np.testing.assert_array_equal(keep_top_p(probs, 0.5), [[0, 0.4, 0, 0.3]])  # 0.4 < 0.5, 0.7 >= 0.5
    np.testing.assert_array_equal(keep_top_p(probs, 0.7), [[0, 0.4, 0, 0.3]])  # exactly reached
    np.testing.assert_array_equal(keep_top_p(probs, 0.05), [[0, 0.4, 0, 0]])  # the top token always stays
    np.testing.assert_array_equal(keep_top_p(probs, 1.0), probs)


def test_min_p_keeps_tokens_at_least_min_p_times_the_top_probability():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    np.testing.assert_array_equal(keep_min_p(probs, 0.3), [[0.5, 0.3, 0.15, 0]])  # threshold 0.15
    np.testing.assert_array_equal(keep_min_p(probs, 1.0), [[0.5, 0, 0, 0]])


def test_filtered_samples_follow_the_renormalised_distribution():
    logits = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    n = 20000
    rng = np.random.default_rng(0)
    ids = sample_next_token(np.repeat(logits, n, axis=0), SamplingSettings(top_p=0.6), rng)
    frequencies = np.bincount(ids, minlength=4) / n
    expected = np.array([4, 3, 0, 0]) / 7
    np.testing.assert_array_less(np.abs(frequencies - expected), 4.5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_repetition_penalty_lowers_every_seen_token_whatever_the_sign_of_its_logit():
    logits = np.array([[2.0, -1.0, 0.5, 3.0]])
    seen = np.array([[True, True, False, False]])
    penalised = generation.apply_repetition_penalty(logits, seen, 2.0)
    np.testing.assert_array_equal(penalised, [[1.0, -2.0, 0.5, 3.0]])
    greedy = SamplingSettings(temperature=0, repetition_penalty=10.0)
    assert sample_next_token(np.array([[3.0, 2.0]]), greedy, None, np.array([[True, False]]))[0] == 1


def test_repetition_penalty_in_generate_counts_the_prompt():
    model = tiny("gpt")
    prompt = np.array([[4, 4, 4]])
    greedy = model.generate(prompt, 1, temperature=0).numpy()[0, -1]
    penalised = model.generate(np.array([[greedy, greedy, greedy]]), 6, temperature=0, repetition_penalty=1e6)
    new = penalised.numpy()[0, 3:]
    assert greedy not in new and len(set(new.tolist())) == 6  # every generated token is new


def test_stop_tokens_end_each_row_and_the_loop_when_all_have_stopped():
    model = tiny("gpt")
    prompt = np.array([[1, 2], [3, 4]])
    free = model.generate(prompt, 10, temperature=0).numpy()
    stop = int(free[0, 4])  # the third token row 0 generates
    out = model.generate(prompt, 10, temperature=0, stop_tokens=[stop]).numpy()
    row0 = out[0, 2:].tolist()
    first = row0.index(stop)
    assert all(t == stop for t in row0[first:])  # after its stop token a row repeats it
    if stop not in free[1, 2:].tolist():
        assert out.shape == free.shape  # row 1 never stops: all 10 steps run
        np.testing.assert_array_equal(out[1], free[1])


@pytest.mark.parametrize("settings, message", [
    (dict(temperature=-0.5), "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
    (dict(top_k=0), "top_k must be an integer >= 1"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(top_p=float("nan")), r"top_p must be in \(0, 1\]"),
    (dict(min_p=-0.1), r"min_p must be in \[0, 1\]"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be a finite number > 0"),
    (dict(seed=-1), "seed must be a non-negative integer"),
])
def test_bad_sampling_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match="generate: " + message):
        tiny("gpt").generate(np.zeros((1, 1), dtype=np.int64), 1, **settings)


def test_bad_prompts_are_refused():
    with pytest.raises(ValueError, match=r"generate: idx must be \(B, T\) integer token ids"):
        tiny("gpt").generate(np.zeros((1, 0), dtype=np.int64), 1)
    with pytest.raises(ValueError, match=r"generate: idx must be \(B, T\) integer token ids"):
        tiny("llama").generate(np.zeros((1, 2)), 1)
    with pytest.raises(ValueError, match=r"generate: token ids must lie in \[0, 13\), got ids from 0 to 13"):
        tiny("gpt").generate(np.array([[0, 13]]), 1, repetition_penalty=1.5)
