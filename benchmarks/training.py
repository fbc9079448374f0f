"""One training step of a GPT or a Llama-style model, built the same way for minitransformer
and for PyTorch.

A step is what nanoGPT's train.py does per iteration (without gradient accumulation):
forward with targets, backward, clip the global gradient norm to 1.0, AdamW step with
nanoGPT's two parameter groups (weight decay 0.1 on matrices), zero the gradients. Both
frameworks get the same float32 batches from ``minitransformer.data.get_batch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEARNING_RATE, WEIGHT_DECAY, BETAS, GRAD_CLIP = 1e-3, 0.1, (0.9, 0.95), 1.0


@dataclass(frozen=True)
class StepConfig:
    """A model and batch size to time. ``small`` is nanoGPT's CPU config for shakespeare_char.

    ``arch`` "gpt" is nanoGPT's model (``bias`` applies); "llama" the Llama-style decoder
    (RMSNorm, rotary positions, SwiGLU, no biases) with ``n_kv_head`` key/value heads."""

    name: str
    batch: int
    block: int
    n_layer: int
    n_head: int
    n_embd: int
    vocab: int = 65
    bias: bool = True
    arch: str = "gpt"
    n_kv_head: int | None = None  # llama: None = n_head

    @property
    def tokens(self) -> int:
        return self.batch * self.block

    def gpt_config(self):
        from minitransformer import nn

        return nn.GPTConfig(block_size=self.block, vocab_size=self.vocab, n_layer=self.n_layer,
                            n_head=self.n_head, n_embd=self.n_embd, dropout=0.0, bias=self.bias)

    def llama_config(self):
        from minitransformer import nn

        return nn.LlamaConfig(block_size=self.block, vocab_size=self.vocab, n_layer=self.n_layer,
                              n_head=self.n_head, n_kv_head=self.n_kv_head, n_embd=self.n_embd,
                              dropout=0.0)

    def build_model(self):
        """minitransformer's model for this config (seed first for the same weights)."""
        from minitransformer import nn

        return nn.Llama(self.llama_config()) if self.arch == "llama" else nn.GPT(self.gpt_config())


SMALL = StepConfig("small", batch=12, block=64, n_layer=4, n_head=4, n_embd=128)
LARGE = StepConfig("large", batch=8, block=256, n_layer=6, n_head=6, n_embd=384)
# the same sizes as a Llama-style model, with grouped-query attention (2 key/value heads)
LLAMA_SMALL = StepConfig("llama-small", batch=12, block=64, n_layer=4, n_head=4, n_embd=128,
                         bias=False, arch="llama", n_kv_head=2)
LLAMA_LARGE = StepConfig("llama-large", batch=8, block=256, n_layer=6, n_head=6, n_embd=384,
                         bias=False, arch="llama", n_kv_head=2)


def token_stream(vocab: int, length: int = 200_000, seed: int = 0) -> np.ndarray:
    """Random token ids: timing does not depend on what the tokens say."""
    return np.random.default_rng(seed).integers(0, vocab, size=length, dtype=np.int64)


def batches(config: StepConfig, count: int = 8, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few fixed (x, y) batches that every framework cycles through."""
    from minitransformer.data import get_batch

    data, rng = token_stream(config.vocab), np.random.default_rng(seed)
    return [get_batch(data, config.batch, config.block, rng=rng) for _ in range(count)]


def minitransformer_step(config: StepConfig, seed: int = 0):
    """(step function, model) for minitransformer; each call trains on the next batch."""
    import minitransformer as mt
    from minitransformer import optim

    mt.manual_seed(seed)
    model = config.build_model()
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    params = model.parameters()
    data = batches(config)
    counter = [0]

    def step() -> float:
        x, y = data[counter[0] % len(data)]
        counter[0] += 1
        _, loss = model(x, y)
        loss.backward()
        optim.clip_grad_norm(params, GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return step, model


def torch_step(config: StepConfig, torch, seed: int = 0):
    """(step function, model) for nanoGPT's model in PyTorch eager mode, float32; for a Llama
    config, benchmarks/torch_llama.py's model with the weights minitransformer_step starts from."""
    torch.manual_seed(seed)
    if config.arch == "llama":
        import minitransformer as mt

        from .torch_llama import Llama

        mt.manual_seed(seed)
        ours = config.build_model()
        model = Llama(config.llama_config())
        model.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in ours.state_dict().items()})
    else:
        from .torch_gpt import GPT

        model = GPT(config.gpt_config())
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(config)]
    counter = [0]

    def step() -> float:
        x, y = data[counter[0] % len(data)]
        counter[0] += 1
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step, model
