"""Suite ``generation``: tokens per second of ``model.generate`` with the KV cache and without,
for GPT and the Llama-style model, at contexts of 256 and 512 tokens, on the same model and
prompt, the two alternating in one process.

For each context C the model's block_size is C and the prompt holds C - new_tokens tokens, so
the last steps run at the full context. Without the cache every step runs the model on the
whole context again (about C tokens of work per new token); with it the prompt is run once and
each step runs one token through the model, attending to the C keys kept. Greedy decoding
(temperature 0) so both draw the same tokens; reported: new tokens per second of each and the
speed-up, cached / uncached.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
from minitransformer import nn

from ..harness import print_table, time_alternating

MODEL = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=96)


def build(arch: str, context: int):
    mt.manual_seed(0)
    if arch == "gpt":
        return nn.GPT(nn.GPTConfig(block_size=context, **MODEL)).eval()
    return nn.Llama(nn.LlamaConfig(block_size=context, n_kv_head=2, **MODEL)).eval()


def measure(arch: str, context: int, new_tokens: int, rounds: int) -> dict:
    model = build(arch, context)
    prompt = np.random.default_rng(0).integers(0, MODEL["vocab_size"], (1, context - new_tokens))
    outputs = {}

    def run(use_cache):
        def generate():
            outputs[use_cache] = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache).numpy()
        return generate

    timings = time_alternating({"cached": run(True), "uncached": run(False)}, rounds=rounds, warmup=0)
    assert np.array_equal(outputs[True], outputs[False]), "cached and uncached generation differ"
    row = {"arch": arch, "context": context, "prompt_tokens": context - new_tokens, "new_tokens": new_tokens,
           "parameters": model.num_parameters(), "timings": timings}
    for name, timing in timings.items():
        row[f"{name}_ms"] = timing["median_ms"]
        row[f"{name}_tokens_per_s"] = new_tokens / (timing["median_ms"] / 1e3)
    row["speedup"] = row["uncached_ms"] / row["cached_ms"]
    cache = nn.KVCache(model.config.n_layer, context)
    with mt.no_grad():
        model(prompt[:, :1], cache=cache)
    row["cache_bytes_per_token"] = cache.nbytes()
    return row


def run(quick: bool) -> dict:
    contexts, new_tokens, rounds = ((32, 64), 8, 1) if quick else ((256, 512), 32, 2)
    rows = [measure(arch, context, new_tokens, rounds) for arch in ("gpt", "llama") for context in contexts]
    print_table("generate: new tokens per second with and without the KV cache (greedy, batch 1)", rows, [
        ("arch", "model"), ("context", "context"), ("new_tokens", "new"),
        ("uncached_tokens_per_s", "uncached tok/s"), ("cached_tokens_per_s", "cached tok/s"),
        ("speedup", "speed-up"), ("cache_bytes_per_token", "cache B/token")])
    return {"model": MODEL, "results": rows}
