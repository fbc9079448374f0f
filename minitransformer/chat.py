"""Chatting with a pretrained chat model, its key/value cache kept from one turn to the next.

Each turn the whole conversation goes through the model's chat template again, but the cache
already holds the keys and values of every token the model has read or written so far: only
the tokens after the longest beginning that the new prompt shares with them are computed (the
user's new message and the template's markers). Where the template writes a past answer with
other tokens than the ones sampled (text re-encoded can split differently), the cache is
cropped to the shared beginning and the rest is read again, so the logits are always those of
reading the whole conversation from scratch.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import backend
from .autograd import no_grad
from .nn import KVCache, SamplingSettings
from .nn.generation import sample_next_token
from .pretrained import PretrainedLM


def shared_prefix_length(a: list[int], b: list[int]) -> int:
    """How many tokens a and b have in common from the start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class ChatSession:
    """A conversation with ``lm``: ``reply(text)`` streams the answer in pieces of text."""

    def __init__(self, lm: PretrainedLM, settings: SamplingSettings | None = None, max_new_tokens: int = 512,
                 seed: int | None = None, system: str | None = None):
        if lm.chat_template is None:
            raise ValueError(f"chat: {lm.directory} has no chat template (tokenizer_config.json's chat_template "
                             "or chat_template.jinja): it is a base model; use generate --pretrained instead")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"chat: max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        self.lm, self.settings, self.max_new_tokens = lm, settings or SamplingSettings(), max_new_tokens
        self.system = system
        device = backend.device_of(lm.model.lm_head.weight.data)
        self.rng = backend.generator(device) if seed is None else np.random.default_rng(seed)
        self.cache = KVCache(lm.config.n_layer, lm.config.block_size)
        self.cached_ids: list[int] = []  # the tokens whose keys and values the cache holds
        self.reused_tokens = 0  # how many tokens of the last prompt came from the cache
        self.prompt_logits = None  # the logits after the last prompt, (V,): what the answer started from
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (and the cache), keeping the system message."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self.cache.reset()
        self.cached_ids = []

    def _read(self, ids: list[int]):
        """Run the model on tokens that continue the cache; the last one's logits, (V,)."""
        total = len(self.cached_ids) + len(ids)
        if total > self.lm.config.block_size:
            raise ValueError(f"chat: the conversation needs {total} tokens, more than the model's context of "
                             f"{self.lm.config.block_size}; /reset to start a new one")
        device = backend.device_of(self.lm.model.lm_head.weight.data)
        with no_grad():
            logits, _ = self.lm.model(backend.to_device(np.array([ids], dtype=np.int64), device), cache=self.cache)
        self.cached_ids += ids  # only once every layer has stored them
        return logits.data[0, -1]  # (V,)

    def reply(self, text: str) -> Iterator[str]:
        """Add the user's message and stream the answer; the answer (all of it, or what came
        before an interruption) joins the conversation when the stream ends."""
        self.messages.append({"role": "user", "content": text})
        prompt = self.lm.encode_chat(self.messages)
        keep = min(shared_prefix_length(self.cached_ids, prompt), len(prompt) - 1)  # read >= 1 token
        self.cache.crop(keep)
        self.cached_ids = self.cached_ids[:keep]
        self.reused_tokens = keep
        answer: list[int] = []
        shown = 0
        try:
            logits = self._read(prompt[keep:])
            self.prompt_logits = backend.to_numpy(logits).copy()
            xp = backend.array_module(logits)
            seen = None
            for _ in range(self.max_new_tokens):
                if self.settings.repetition_penalty != 1.0:
                    seen = xp.zeros((1, logits.shape[-1]), dtype=bool)
                    seen[0, xp.asarray(self.cached_ids)] = True
                next_id = int(sample_next_token(logits[None], self.settings, self.rng, seen)[0])
                if next_id in self.lm.stop_token_ids:
                    break
                answer.append(next_id)
                decoded = self.lm.tokenizer.decode(answer)
                complete = len(decoded.rstrip("\ufffd"))  # hold back half a character
                if complete > shown:
                    yield decoded[shown:complete]
                    shown = complete
                logits = self._read([next_id])
            rest = self.lm.tokenizer.decode(answer)[shown:]
            if rest:
                yield rest
        finally:  # also on Ctrl-C: the answer so far is kept, the cache made whole again
            self.cache.crop(len(self.cached_ids))
            self.messages.append({"role": "assistant", "content": self.lm.tokenizer.decode(answer)})
