"""Suite ``lora``: a fine-tuning step of every weight against LoRA steps, on the same GPT and
batch, alternating in one process: milliseconds per step (forward, backward, clipping, AdamW),
trainable numbers, and the bytes of AdamW's state and of what is saved (all weights vs the
adapters' safetensors file).

LoRA still runs the whole frozen model forward and backward (the gradient must flow through the
frozen layers to reach earlier adapters); what it saves is the weight gradients of frozen
matrices, the optimizer's work and memory for them, and the checkpoint. Variants: adapters of
rank 8 on ``c_attn`` (PEFT's default for GPT-2) and on every Linear of the blocks.
"""

from __future__ import annotations

import numpy as np

import minitransformer as mt
from minitransformer import nn, optim

from ..harness import print_table, time_alternating

MODEL = dict(n_layer=4, n_head=4, n_embd=256, vocab_size=96, block_size=128)
QUICK_MODEL = dict(n_layer=1, n_head=2, n_embd=32, vocab_size=64, block_size=16)
VARIANTS = {"full fine-tune": None, "LoRA r=8 c_attn": ("c_attn",),
            "LoRA r=8 all Linear": ("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj")}


def build(config: nn.GPTConfig, targets):
    mt.manual_seed(0)
    model = nn.GPT(config)
    if targets is not None:
        nn.apply_lora(model, targets, rank=8, alpha=16)
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, optim.AdamW(params, lr=1e-3)


def step_function(model, params, optimizer, batch):
    inputs, targets = batch

    def step():
        _, loss = model(inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm(params, 1.0)
        optimizer.step()
    return step


def run(quick: bool) -> dict:
    sizes = QUICK_MODEL if quick else MODEL
    batch_size, rounds = (2, 1) if quick else (8, 5)
    config = nn.GPTConfig(**sizes)
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, sizes["vocab_size"], (batch_size, sizes["block_size"])),
             rng.integers(0, sizes["vocab_size"], (batch_size, sizes["block_size"])))
    built = {name: build(config, targets) for name, targets in VARIANTS.items()}
    timings = time_alternating({name: step_function(*parts, batch) for name, parts in built.items()},
                               rounds=rounds, per_turn=2)
    rows = []
    for name, (model, params, optimizer) in built.items():
        trainable, total = nn.count_parameters(model)
        state_bytes = sum(value.nbytes for entry in optimizer.state.values() for value in entry.values()
                          if hasattr(value, "nbytes"))
        saved = nn.lora_state_dict(model).values() if nn.lora_layers(model) else [p.data for p in model.parameters()]
        rows.append({"variant": name, "trainable": trainable, "total": total, "step_ms": timings[name]["median_ms"],
                     "optimizer_state_bytes": state_bytes,
                     "saved_bytes": sum(value.nbytes for value in saved), "timing": timings[name]})
    full_ms = rows[0]["step_ms"]
    for row in rows:
        row["time_vs_full"] = row["step_ms"] / full_ms
    print_table(f"fine-tuning step of a GPT ({sizes['n_layer']} layers, width {sizes['n_embd']}, batch "
                f"{batch_size} x {sizes['block_size']} tokens): every weight vs LoRA", rows, [
                    ("variant", "variant"), ("trainable", "trainable"), ("total", "parameters"),
                    ("step_ms", "ms/step"), ("time_vs_full", "vs full"),
                    ("optimizer_state_bytes", "AdamW state B"), ("saved_bytes", "saved B")])
    return {"model": sizes, "batch_size": batch_size, "results": rows}
