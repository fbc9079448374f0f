"""Sampling from a decoder language model, one token at a time, with a key/value cache.

Each step turns the last position's logits into a distribution and draws from it:

    logits -> repetition penalty -> / temperature -> top-k -> softmax -> top-p -> min-p -> draw

(temperature 0 skips the rest: greedy decoding, the most likely token). The model is any
decoder with ``config.block_size``, ``config.n_layer`` and ``forward(idx, cache=...)``
returning the last position's logits (GPT, Llama); ``GenerationMixin`` gives it ``generate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor
from .attention import KVCache


@dataclass(frozen=True)
class SamplingSettings:
    """How a next token is chosen from the logits; each check says which value is wrong."""

    temperature: float = 1.0  # 0: greedy; < 1 sharpens the distribution, > 1 flattens it
    top_k: int | None = None  # keep the k most likely tokens
    top_p: float | None = None  # keep the fewest most likely tokens whose probability reaches p
    min_p: float | None = None  # keep the tokens at least min_p times as likely as the most likely
    repetition_penalty: float = 1.0  # > 1 makes every token already in the sequence less likely

    def __post_init__(self):
        def bad(name, value, expected):
            raise ValueError(f"generate: {name} must be {expected}, got {value!r}")

        if not _is_number(self.temperature) or not self.temperature >= 0 or math.isinf(self.temperature):
            bad("temperature", self.temperature, "a finite number >= 0 (0 means greedy)")
        if self.top_k is not None and (not isinstance(self.top_k, (int, np.integer)) or self.top_k < 1):
            bad("top_k", self.top_k, "an integer >= 1 or None")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
            bad("top_p", self.top_p, "in (0, 1] or None")
        if self.min_p is not None and (not _is_number(self.min_p) or not 0 <= self.min_p <= 1):
            bad("min_p", self.min_p, "in [0, 1] or None")
        penalty = self.repetition_penalty
        if not _is_number(penalty) or not penalty > 0 or math.isinf(penalty):
            bad("repetition_penalty", penalty, "a finite number > 0 (1 means off)")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# --- one step: logits (B, V) -> next token ids (B,) -----------------------------------------------

def apply_repetition_penalty(logits, seen, penalty: float):
    """CTRL's penalty (Keskar et al. 2019, as Hugging Face applies it): for every token already
    in the sequence (``seen`` (B, V) True), z / penalty if z > 0 else z * penalty, so with
    penalty > 1 its probability always falls, whatever the logit's sign."""
    xp = backend.array_module(logits)
    penalised = xp.where(logits > 0, logits / penalty, logits * penalty)
    return xp.where(seen, penalised, logits)


def next_token_probabilities(logits, temperature: float, top_k: int | None):
    """softmax(z / temperature) over the k largest logits (the others get probability 0), (B, V)."""
    # BEGIN SOLUTION a6
    xp = backend.array_module(logits)
    logits = logits / temperature
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth_largest = xp.sort(logits, axis=-1)[:, -k][:, None]
        logits = xp.where(logits < kth_largest, -xp.inf, logits)
    return F.softmax(Tensor(logits)).data  # (B, V)
    # END SOLUTION a6


def keep_top_p(probs, top_p: float):
    """Nucleus sampling (Holtzman et al. 2020): keep the most likely tokens, in order, until
    their probabilities add up to top_p; the token that crosses it is kept, so at least one
    is. The others get probability 0 (``draw`` renormalises)."""
    xp = backend.array_module(probs)
    order = xp.argsort(-probs, axis=-1, kind="stable")  # most likely first
    sorted_probs = xp.take_along_axis(probs, order, axis=-1)  # (B, V)
    before = xp.cumsum(sorted_probs, axis=-1) - sorted_probs  # probability of the tokens ahead
    keep_sorted = before < top_p * probs.sum(axis=-1, keepdims=True)
    keep = xp.take_along_axis(keep_sorted, xp.argsort(order, axis=-1), axis=-1)  # back in token order
    return xp.where(keep, probs, 0)


def keep_min_p(probs, min_p: float):
    """Min-p sampling (Nguyen et al. 2024): keep the tokens whose probability is at least min_p
    times the most likely one's: a cut that follows how confident the model is."""
    threshold = min_p * probs.max(axis=-1, keepdims=True)
    return backend.array_module(probs).where(probs >= threshold, probs, 0)


def draw(probs, rng):
    """One token per row from (possibly unnormalised) probabilities (B, V), by inverse CDF."""
    # BEGIN SOLUTION a6
    xp = backend.array_module(probs)
    # the first token whose cumulative probability exceeds u, u uniform in [0, total). Strictly
    # "exceeds", so a token of probability 0 (cut by top-k) is never picked, not even for u = 0;
    # and u scaled by the float64 total, so a total rounded below 1 can never leave u past the
    # last token
    cdf = xp.cumsum(probs.astype(xp.float64), axis=-1)  # (B, V)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]  # (B, 1)
    return (cdf <= u).sum(axis=-1)  # (B,)
    # END SOLUTION a6


def sample_next_token(logits, settings: SamplingSettings, rng, seen=None):
    """The next token of every row, (B,), from the last position's logits (B, V)."""
    xp = backend.array_module(logits)
    if settings.repetition_penalty != 1.0 and seen is not None:
        logits = apply_repetition_penalty(logits, seen, settings.repetition_penalty)
    if settings.temperature == 0:
        return logits.argmax(axis=-1)
    probs = next_token_probabilities(logits, settings.temperature, settings.top_k)
    if settings.top_p is not None and settings.top_p < 1:
        probs = keep_top_p(probs, settings.top_p)
    if settings.min_p:
        probs = keep_min_p(probs, settings.min_p)
    if not bool(xp.isfinite(probs).all()):
        raise ValueError("generate: the model's logits hold NaN or infinity; cannot sample from them")
    return draw(probs, rng)


# --- the loop ------------------------------------------------------------------------------------

def _generator(seed: int | None, device: str):
    """The framework's generator, or a fresh one seeded with ``seed`` (the shared one stays)."""
    if seed is None:
        return backend.generator(device)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"generate: seed must be a non-negative integer or None, got {seed!r}")
    if device == "cpu":
        return np.random.default_rng(int(seed))
    return backend.require_cupy("generate on 'cuda'").random.default_rng(int(seed))


def generate_tokens(model, idx, max_new_tokens: int, settings: SamplingSettings | None = None,
                    stop_tokens=(), seed: int | None = None, use_cache: bool = True) -> Iterator:
    """Yield the next token of every sequence of idx (B, T), (B,) each step, as they come.

    With ``use_cache`` the model sees each token once: the prompt in one forward, then one new
    token per step, its keys and values kept per layer (KVCache). Without, every step runs the
    model on the whole context again. Either way the context is the last ``block_size`` tokens:
    when the cache is full it starts again from them (a model with learned positions, such as
    GPT, gives every token a new position when the window slides, so nothing cached still
    holds), and the logits are the same as without a cache at every step.
    ``stop_tokens``: a row that produced one of these ids is done and gets it again after that;
    the loop ends early when every row is done.
    """
    settings = settings or SamplingSettings()
    ids = idx.data if isinstance(idx, Tensor) else idx
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[1] == 0:
        raise ValueError(f"generate: idx must be (B, T) integer token ids with T >= 1, got "
                         f"{ids.dtype} {tuple(ids.shape)}")
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    vocab_size = model.config.vocab_size
    if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
        raise ValueError(f"generate: token ids must lie in [0, {vocab_size}), got ids from "
                         f"{int(ids.min())} to {int(ids.max())}")
    rng = _generator(seed, backend.device_of(ids))
    return _steps(model, ids, max_new_tokens, settings, list(stop_tokens), rng, use_cache)


def _steps(model, ids, max_new_tokens, settings, stop_tokens, rng, use_cache):
    xp = backend.array_module(ids)
    block_size = model.config.block_size
    vocab_size = model.config.vocab_size
    stop = xp.asarray(stop_tokens, dtype=ids.dtype)
    cache = KVCache(model.config.n_layer, block_size) if use_cache else None
    window_start = 0  # the cache holds ids[:, window_start : window_start + cache.length]
    seen = None
    if settings.repetition_penalty != 1.0:
        seen = xp.zeros((ids.shape[0], vocab_size), dtype=bool)  # (B, V): tokens in the sequence
        seen[xp.arange(ids.shape[0])[:, None], ids] = True
    done = xp.zeros(ids.shape[0], dtype=bool)
    with no_grad():
        for _ in range(max_new_tokens):
            if cache is None:
                logits, _ = model(ids[:, -block_size:])
            else:
                new = ids[:, window_start + cache.length:]
                if cache.length + new.shape[1] > block_size:  # the window slides: start again
                    cache.reset()
                    window_start = max(0, ids.shape[1] - block_size)
                    new = ids[:, window_start:]
                logits, _ = model(new, cache=cache)
            next_ids = sample_next_token(logits.data[:, -1, :], settings, rng, seen).astype(ids.dtype)
            if stop.size:
                next_ids = xp.where(done, ids[:, -1], next_ids)  # a finished row repeats its stop token
                done |= xp.isin(next_ids, stop)
            if seen is not None:
                seen[xp.arange(ids.shape[0]), next_ids] = True
            ids = xp.concatenate([ids, next_ids[:, None]], axis=1)
            yield next_ids
            if stop.size and bool(done.all()):
                return


class GenerationMixin:
    """``generate`` for a decoder model (see ``generate_tokens`` for what it needs)."""

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, min_p: float | None = None, repetition_penalty: float = 1.0,
                 stop_tokens=(), seed: int | None = None, use_cache: bool = True) -> Tensor:
        """idx (B, T) followed by up to max_new_tokens sampled tokens, (B, T + new).

        temperature divides the logits (0: greedy, the argmax); top_k, top_p and min_p cut the
        unlikely tail (SamplingSettings); repetition_penalty > 1 discourages tokens already in
        the sequence; stop_tokens end a row early (the loop ends when every row has stopped);
        seed: draw from a generator of its own instead of the framework's (manual_seed);
        use_cache: keep keys and values between steps (same logits, far less work).
        """
        settings = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        ids = idx.data if isinstance(idx, Tensor) else idx
        new = list(generate_tokens(self, ids, max_new_tokens, settings, stop_tokens, seed, use_cache))
        xp = backend.array_module(ids)
        return Tensor(xp.concatenate([ids] + [t[:, None] for t in new], axis=1) if new else ids.copy())
