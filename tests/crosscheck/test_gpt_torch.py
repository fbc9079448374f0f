"""minitransformer's GPT against a PyTorch GPT of nanoGPT's exact architecture (model.py,
written out below): the same weights must give the same logits, loss, gradients, clipped norm
and, after ten AdamW steps with nanoGPT's two parameter groups, the same weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as tnn  # noqa: E402
from torch.nn import functional as TF  # noqa: E402

from minitransformer import nn, optim  # noqa: E402

BLOCK, VOCAB, LAYERS, HEADS, EMBD = 64, 65, 4, 4, 128


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These models are small: PyTorch's worker threads only contend with NumPy's BLAS threads,
    which makes the tests several times slower on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- nanoGPT's model.py -------------------------------------------------------------------------

class CausalSelfAttention(tnn.Module):
    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.c_attn = tnn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = tnn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = TF.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(tnn.Module):
    def __init__(self, n_embd, bias):
        super().__init__()
        self.c_fc = tnn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = tnn.GELU()
        self.c_proj = tnn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(tnn.Module):
    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias)
        self.ln_2 = tnn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TorchGPT(tnn.Module):
    def __init__(self, block_size=BLOCK, vocab_size=VOCAB, n_layer=LAYERS, n_head=HEADS, n_embd=EMBD, bias=True):
        super().__init__()
        self.transformer = tnn.ModuleDict(dict(
            wte=tnn.Embedding(vocab_size, n_embd),
            wpe=tnn.Embedding(block_size, n_embd),
            drop=tnn.Dropout(0.0),
            h=tnn.ModuleList([Block(n_embd, n_head, bias) for _ in range(n_layer)]),
            ln_f=tnn.LayerNorm(n_embd, bias=bias),
        ))
        self.lm_head = tnn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                tnn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def _init_weights(self, module):
        if isinstance(module, tnn.Linear):
            tnn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                tnn.init.zeros_(module.bias)
        elif isinstance(module, tnn.Embedding):
            tnn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        pos = torch.arange(0, idx.size(1), dtype=torch.long)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


# --- the comparison -----------------------------------------------------------------------------

def max_rel_err(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    reference = TorchGPT()
    ours = nn.GPT(nn.GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=LAYERS, n_head=HEADS,
                               n_embd=EMBD, dropout=0.0, bias=True))
    ours.load_state_dict({name: value.detach().numpy() for name, value in reference.state_dict().items()})
    return reference, ours


def batch(seed, B=4, T=BLOCK):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, (B, T)), rng.integers(0, VOCAB, (B, T))


def test_state_dicts_have_the_same_names_and_shapes(pair):
    reference, ours = pair
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_logits_loss_gradients_and_clipped_norm_match(pair):
    reference, ours = pair
    idx, targets = batch(1)
    ref_logits, ref_loss = reference(torch.from_numpy(idx), torch.from_numpy(targets))
    logits, loss = ours(idx, targets)
    assert max_rel_err(logits.numpy(), ref_logits.detach().numpy()) <= 1e-4
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)

    reference.zero_grad()
    ref_loss.backward()
    ours.zero_grad()
    loss.backward()
    ref_grads = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        assert max_rel_err(param.grad, ref_grads[name].grad.numpy()) <= 1e-3, name

    ref_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0).item()
    norm = optim.clip_grad_norm(ours.parameters(), 1.0)
    assert norm == pytest.approx(ref_norm, rel=1e-4)
    for name, param in ours.named_parameters():
        assert max_rel_err(param.grad, ref_grads[name].grad.numpy()) <= 1e-3, name


def test_ten_adamw_steps_with_nanogpts_groups_and_clipping_match():
    torch.manual_seed(1)
    reference = TorchGPT()
    ours = nn.GPT(nn.GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=LAYERS, n_head=HEADS, n_embd=EMBD))
    ours.load_state_dict(reference.state_dict())  # the torch tensors themselves
    ref_optimizer = reference.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    optimizer = ours.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    for step in range(10):
        idx, targets = batch(100 + step, B=2, T=BLOCK)
        _, ref_loss = reference(torch.from_numpy(idx), torch.from_numpy(targets))
        ref_optimizer.zero_grad()
        ref_loss.backward()
        ref_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0).item()
        ref_optimizer.step()

        _, loss = ours(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        norm = optim.clip_grad_norm(ours.parameters(), 1.0)
        optimizer.step()
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-4), step
        assert norm == pytest.approx(ref_norm, rel=1e-3), step
    # Relative to the largest weight of the model, not of each tensor: Adam divides every
    # gradient element by its own running RMS, so an element whose gradient cancels to rounding
    # noise (the key bias's gradient is exactly 0 in exact arithmetic: softmax ignores a constant
    # added to every score) takes steps of arbitrary sign. PyTorch in float32 and in float64 differ
    # by up to 1e-3 of such a tensor's largest entry after these ten steps; as a share of the
    # model's largest weight the difference is ~2e-5.
    ref_params = {name: value.detach().numpy() for name, value in reference.named_parameters()}
    scale = max(np.abs(value).max() for value in ref_params.values())
    for name, param in ours.named_parameters():
        assert np.abs(param.numpy() - ref_params[name]).max() / scale <= 1e-4, name
