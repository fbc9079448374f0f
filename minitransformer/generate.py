"""Sample text from a trained run (or a finetune-lm run: its base model with the adapters),
streamed piece by piece as the tokens come."""

from __future__ import annotations

import sys
from typing import Iterator

import numpy as np

from . import backend
from .adapters import load_for_generation
from .data.instructions import format_prompt
from .nn.generation import SamplingSettings, generate_tokens
from .pretrained import load_lm


MAX_NEW_TOKENS = 100_000


def stream_text(run_dir, prompt: str = "\n", max_new_tokens: int = 200, settings: SamplingSettings | None = None,
                stop: tuple[str, ...] = (), seed: int | None = None, device: str = "cpu", use_cache: bool = True,
                out=None, pretrained: bool = False) -> Iterator[str]:
    """The prompt, then the sampled text in pieces as it is generated (joined: the whole text).

    ``run_dir``: a run made by ``train`` or ``finetune-lm`` (whose prompt is put in its
    template), or with ``pretrained`` a Hugging Face model folder or
    hub name (``pretrained.load_lm``; its end-of-text tokens end the text).
    A prompt longer than the model's context is cropped to its last block_size tokens (with a
    note on ``out``); characters the tokenizer cannot encode raise a ValueError listing them.
    ``stop``: strings that end the text; the first one to appear is cut off with what follows.
    Text is held back while it could still be the start of a stop string, or half a character
    (a byte-level token may end inside a UTF-8 sequence).
    """
    out = out or sys.stderr
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 0 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"generate: --max-new-tokens must be an integer in [0, {MAX_NEW_TOKENS}], got {max_new_tokens!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"generate: --seed must be an integer >= 0, got {seed!r}")
    if any(not s for s in stop):
        raise ValueError("generate: a stop string must not be empty")
    settings = settings or SamplingSettings()
    if device == "cuda":
        backend.require_cupy("generate --device cuda")
    if pretrained:
        lm = load_lm(run_dir, device=device, out=out)
        model, tokenizer, stop_tokens = lm.model, lm.tokenizer, lm.stop_token_ids
    else:
        (model, tokenizer, info), stop_tokens = load_for_generation(run_dir, device), ()
        if info.get("kind") == "lora":  # an instruction-tuned run answers prompts in its template
            prompt = format_prompt(prompt)
            end = info.get("end_ids") or []
            stop_tokens = tuple(end) if len(end) == 1 else ()  # an end-of-sequence token ends the answer
    ids = tokenizer.encode(prompt) or tokenizer.encode("\n")[:1] or [0]
    block_size = model.config.block_size
    if len(ids) > block_size:
        print(f"note: the prompt has {len(ids)} tokens; the model sees only the last {block_size}", file=out)
    context = backend.to_device(np.array([ids], dtype=np.int64), device)
    steps = generate_tokens(model, context, max_new_tokens, settings, stop_tokens, seed=seed, use_cache=use_cache)
    yield prompt
    new_ids, shown = [], 0
    for next_ids in steps:
        if int(backend.to_numpy(next_ids)[0]) in stop_tokens:
            break  # end of text: the marker itself is not shown
        new_ids.append(int(backend.to_numpy(next_ids)[0]))
        text = tokenizer.decode(new_ids)
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            yield text[shown:cut]
            return
        complete = text.rstrip("\ufffd")
        safe = len(complete) - _partial_stop(complete, stop)
        if safe > shown:
            yield text[shown:safe]
            shown = safe
    yield tokenizer.decode(new_ids)[shown:]


def _partial_stop(text: str, stop) -> int:
    """Length of the longest end of ``text`` that begins some stop string (it may go on)."""
    return max((n for s in stop for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
               default=0)


def generate_text(run_dir, prompt: str = "\n", max_new_tokens: int = 200, temperature: float = 0.8,
                  top_k: int | None = None, seed: int | None = None, device: str = "cpu", out=None,
                  **options) -> str:
    """The prompt followed by ``max_new_tokens`` sampled tokens, decoded to text (``options``:
    top_p, min_p, repetition_penalty, stop, use_cache; see ``stream_text``)."""
    sampling = {k: options.pop(k) for k in ("top_p", "min_p", "repetition_penalty") if k in options}
    settings = SamplingSettings(temperature=temperature, top_k=top_k, **sampling)
    return "".join(stream_text(run_dir, prompt, max_new_tokens, settings, seed=seed, device=device, out=out,
                               **options))
