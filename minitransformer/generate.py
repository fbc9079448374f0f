"""Sample text from a trained run."""

from __future__ import annotations

import math
import sys

import numpy as np

from . import backend
from .train import load_run


MAX_NEW_TOKENS = 100_000
PROGRESS_CHUNK = 500  # tokens between progress notes of a long generation


def generate_text(run_dir, prompt: str = "\n", max_new_tokens: int = 200, temperature: float = 0.8,
                  top_k: int | None = None, seed: int | None = None, device: str = "cpu", out=None) -> str:
    """The prompt followed by ``max_new_tokens`` sampled tokens, decoded to text.

    A prompt longer than the model's context is cropped to its last block_size tokens (with a
    note on ``out``); characters the tokenizer cannot encode raise a ValueError listing them.
    A generation longer than PROGRESS_CHUNK tokens notes its progress on ``out``.
    """
    out = out or sys.stderr
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 0 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"generate: --max-new-tokens must be an integer in [0, {MAX_NEW_TOKENS}], got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"generate: --temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"generate: --top-k must be an integer >= 1, got {top_k!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"generate: --seed must be an integer >= 0, got {seed!r}")
    if device == "cuda":
        backend.require_cupy("generate --device cuda")
    model, tokenizer, _ = load_run(run_dir, device)
    if seed is not None:
        backend.manual_seed(seed)
    ids = tokenizer.encode(prompt) or tokenizer.encode("\n")[:1] or [0]
    block_size = model.config.block_size
    if len(ids) > block_size:
        print(f"note: the prompt has {len(ids)} tokens; the model sees only the last {block_size}", file=out)
    # In chunks, each continuing the last block_size tokens: generate() sees no more than those
    # and its RNG runs on, so the chunks sample exactly the tokens of one call, and a long
    # generation neither re-copies its whole history every token nor runs without a word.
    generated = list(ids)
    for done in range(0, max_new_tokens, PROGRESS_CHUNK):
        context = backend.to_device(np.array([generated[-block_size:]], dtype=np.int64), device)  # (1, T)
        count = min(PROGRESS_CHUNK, max_new_tokens - done)
        result = model.generate(context, count, temperature=temperature, top_k=top_k).data  # (1, T + count)
        generated += backend.to_numpy(result)[0, -count:].tolist()
        if max_new_tokens > PROGRESS_CHUNK:
            print(f"generated {done + count:,}/{max_new_tokens:,} tokens", file=out, flush=True)
    return tokenizer.decode(generated)
