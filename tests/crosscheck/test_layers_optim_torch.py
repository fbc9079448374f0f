"""Conv1d, RNNCell and GRUCell against torch.nn with copied weights (outputs and every
gradient), and SGD/Adam/AdamW against torch.optim step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minitransformer as mt  # noqa: E402
from minitransformer import nn, optim  # noqa: E402


def copy_weights(ours, theirs):
    ours.load_state_dict(theirs.state_dict())  # PyTorch's names and layouts


def compare_layer(ours, theirs, inputs):
    """Same outputs and gradients (inputs and parameters) in float64."""
    theirs = theirs.double()
    copy_weights(ours, theirs)
    for param in ours.parameters():
        param.data = param.data.astype(np.float64)
    torch_inputs = [torch.tensor(x, requires_grad=True) for x in inputs]
    our_inputs = [mt.tensor(x, dtype=np.float64, requires_grad=True) for x in inputs]
    expected = theirs(*torch_inputs)
    out = ours(*our_inputs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(0).standard_normal(out.shape)
    (expected * torch.tensor(weights)).sum().backward()
    (out * mt.tensor(weights, dtype=np.float64)).sum().backward()
    for ours_x, torch_x in zip(our_inputs, torch_inputs):
        np.testing.assert_allclose(ours_x.grad, torch_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    torch_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad, torch_params[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2)])
def test_conv1d_matches_torch(stride, padding):
    torch.manual_seed(0)
    x = np.random.default_rng(1).standard_normal((2, 3, 9))
    compare_layer(nn.Conv1d(3, 4, 3, stride=stride, padding=padding),
                  torch.nn.Conv1d(3, 4, 3, stride=stride, padding=padding), [x])


@pytest.mark.parametrize("ours_class, torch_class", [(nn.RNNCell, torch.nn.RNNCell), (nn.GRUCell, torch.nn.GRUCell)])
def test_recurrent_cells_match_torch(ours_class, torch_class):
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    compare_layer(ours_class(3, 5), torch_class(3, 5), [rng.standard_normal((4, 3)), rng.standard_normal((4, 5))])


@pytest.mark.parametrize("ours_factory, torch_factory", [
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
], ids=["sgd-momentum-wd", "sgd-nesterov", "adam-wd", "adamw"])
def test_optimizers_match_torch_step_for_step(ours_factory, torch_factory):
    rng = np.random.default_rng(3)
    start = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ours = [nn.Parameter(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    our_optimizer, torch_optimizer = ours_factory(ours), torch_factory(theirs)
    for step in range(8):
        grads = [rng.standard_normal(a.shape) for a in start]
        for param, tparam, g in zip(ours, theirs, grads):
            param.grad = g.copy()
            tparam.grad = torch.tensor(g.copy())
        our_optimizer.step()
        torch_optimizer.step()
        for param, tparam in zip(ours, theirs):
            np.testing.assert_allclose(param.numpy(), tparam.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
