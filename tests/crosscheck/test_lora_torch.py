"""nn.LoRALinear against a PyTorch LoRA layer built the way Hugging Face PEFT builds one
(peft/tuners/lora/layer.py: a frozen ``base_layer``, ``lora_A`` = Linear(in, r, bias=False)
initialised Kaiming-uniform with a = sqrt(5), ``lora_B`` = Linear(r, out, bias=False) at zero,
scaling alpha / r), written out below: the same weights give the same outputs and gradients,
and the initialisation draws from the same interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minitransformer as mt  # noqa: E402
from minitransformer import nn  # noqa: E402


class TorchLoRALinear(torch.nn.Module):
    def __init__(self, base_layer: torch.nn.Linear, r: int, lora_alpha: float):
        super().__init__()
        self.base_layer = base_layer
        self.base_layer.weight.requires_grad_(False)
        if self.base_layer.bias is not None:
            self.base_layer.bias.requires_grad_(False)
        self.lora_A = torch.nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_B = torch.nn.Linear(r, base_layer.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        torch.nn.init.zeros_(self.lora_B.weight)
        self.scaling = lora_alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def test_lora_linear_matches_torch_outputs_and_gradients():
    torch.manual_seed(0)
    theirs = TorchLoRALinear(torch.nn.Linear(6, 5), r=3, lora_alpha=12).double()
    torch.nn.init.normal_(theirs.lora_B.weight)  # B = 0 would hide half of the backward pass
    ours = nn.LoRALinear(nn.Linear(6, 5), rank=3, alpha=12)
    assert set(ours.state_dict()) == set(theirs.state_dict())  # base_layer.weight, lora_A.weight, ...
    for param in ours.parameters():
        param.data = param.data.astype(np.float64)  # first, so the copied weights keep every bit
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})

    x = np.random.default_rng(0).standard_normal((2, 4, 6))
    torch_x, our_x = torch.tensor(x, requires_grad=True), mt.tensor(x, dtype=np.float64, requires_grad=True)
    expected, out = theirs(torch_x), ours(our_x)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(1).standard_normal(out.shape)
    (expected * torch.tensor(weights)).sum().backward()
    (out * mt.tensor(weights, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(our_x.grad, torch_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    torch_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        if torch_params[name].grad is None:  # frozen in both
            assert param.grad is None and not param.requires_grad, name
        else:
            np.testing.assert_allclose(param.grad, torch_params[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)


def test_lora_init_draws_from_the_same_interval_as_torch():
    torch.manual_seed(0)
    theirs = TorchLoRALinear(torch.nn.Linear(256, 8), r=64, lora_alpha=16)
    ours = nn.LoRALinear(nn.Linear(256, 8), rank=64, alpha=16)
    torch_bound, our_bound = theirs.lora_A.weight.detach().abs().max().item(), np.abs(ours.lora_A.weight.numpy()).max()
    assert our_bound <= 1 / math.sqrt(256) and torch_bound <= 1 / math.sqrt(256) + 1e-7
    assert our_bound == pytest.approx(torch_bound, rel=0.01)  # 16,384 draws each reach the edge
    assert not theirs.lora_B.weight.any() and not ours.lora_B.weight.numpy().any()
