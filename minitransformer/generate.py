"""Sample text from a trained run."""

from __future__ import annotations

import sys

import numpy as np

from . import backend
from .train import load_run


def generate_text(run_dir, prompt: str = "\n", max_new_tokens: int = 200, temperature: float = 0.8,
                  top_k: int | None = None, seed: int | None = None, device: str = "cpu", out=None) -> str:
    """The prompt followed by ``max_new_tokens`` sampled tokens, decoded to text.

    A prompt longer than the model's context is cropped to its last block_size tokens (with a
    note on ``out``); characters the tokenizer cannot encode raise a ValueError listing them.
    """
    out = out or sys.stderr
    if max_new_tokens < 0:
        raise ValueError(f"generate: --max-new-tokens must be >= 0, got {max_new_tokens}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: --top-k must be >= 1, got {top_k}")
    if device == "cuda":
        backend.require_cupy("generate --device cuda")
    model, tokenizer, _ = load_run(run_dir, device)
    if seed is not None:
        backend.manual_seed(seed)
    ids = tokenizer.encode(prompt) or tokenizer.encode("\n")[:1] or [0]
    block_size = model.config.block_size
    if len(ids) > block_size:
        print(f"note: the prompt has {len(ids)} tokens; the model sees only the last {block_size}", file=out)
    context = backend.to_device(np.array([ids], dtype=np.int64), device)
    result = model.generate(context, max_new_tokens, temperature=temperature, top_k=top_k)
    return tokenizer.decode(backend.to_numpy(result.data)[0].tolist())
