"""Conv2d, MaxPool2d, Flatten, LSTMCell, LSTM and GRU against torch.nn with the same weights
(PyTorch state dicts load as they are): outputs, final states and every gradient, in float64."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch cross-checks need the crosscheck extra")

import minitransformer as mt  # noqa: E402
from minitransformer import nn  # noqa: E402
from tests.crosscheck.test_layers_optim_torch import compare_layer  # noqa: E402


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (3, 1, 0, 1), ((3, 2), (2, 1), (1, 2), 1), (2, 2, 1, (2, 1)), (1, 3, 0, 1)])
def test_conv2d_matches_torch(kernel, stride, padding, dilation):
    torch.manual_seed(0)
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8))
    compare_layer(nn.Conv2d(3, 4, kernel, stride=stride, padding=padding, dilation=dilation),
                  torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding, dilation=dilation), [x])


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (1, 2))])
def test_max_pool2d_and_flatten_match_torch(kernel, stride):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 8))
    ours = nn.Sequential(nn.MaxPool2d(kernel, stride), nn.Flatten())
    compare_layer(ours, torch.nn.Sequential(torch.nn.MaxPool2d(kernel, stride), torch.nn.Flatten()), [x])


def test_max_pool2d_breaks_ties_as_torch_does():
    """Values from {0, 1}: most windows hold their maximum several times."""
    x = np.random.default_rng(3).integers(0, 2, size=(2, 2, 6, 6)).astype(np.float64)
    compare_layer(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), [x])
    compare_layer(nn.MaxPool2d(3, 1), torch.nn.MaxPool2d(3, 1), [x])


def test_lstm_cell_matches_torch():
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    x, h, c = rng.standard_normal((3, 5)), rng.standard_normal((3, 6)), rng.standard_normal((3, 6))

    class Both(torch.nn.Module):  # both states as one output, to compare them in one go
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(5, 6)

        def forward(self, x, h, c):
            return torch.cat(self.cell(x, (h, c)), dim=1)

    class OursBoth(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(5, 6)

        def forward(self, x, h, c):
            return mt.concat(list(self.cell(x, (h, c))), axis=1)

    compare_layer(OursBoth(), Both(), [x, h, c])


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
@pytest.mark.parametrize("num_layers, batch_first", [(1, True), (2, False)])
def test_recurrent_layers_match_torch(kind, num_layers, batch_first):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(4, 5, num_layers=num_layers, batch_first=batch_first).double()
    ours = getattr(nn, kind)(4, 5, num_layers=num_layers, batch_first=batch_first)
    ours.load_state_dict(theirs.state_dict())
    for param in ours.parameters():
        param.data = param.data.astype(np.float64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 4) if batch_first else (6, 3, 4))
    h0 = rng.standard_normal((num_layers, 3, 5))
    c0 = rng.standard_normal((num_layers, 3, 5))
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    our_inputs = [mt.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, h0, c0)]
    if kind == "GRU":
        expected, expected_h = theirs(torch_inputs[0], torch_inputs[1])
        out, h = ours(our_inputs[0], our_inputs[1])
        expected_states, states = [expected_h], [h]
    else:
        expected, expected_states = theirs(torch_inputs[0], tuple(torch_inputs[1:]))
        out, states = ours(our_inputs[0], tuple(our_inputs[1:]))
    for mine, reference in zip([out, *states], [expected, *expected_states]):
        np.testing.assert_allclose(mine.numpy(), reference.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = [rng.standard_normal(t.shape) for t in [expected, *expected_states]]
    sum(((t * torch.tensor(w)).sum() for t, w in zip([expected, *expected_states], weights))).backward()
    total = (out * mt.tensor(weights[0], dtype=np.float64)).sum()
    for state, w in zip(states, weights[1:]):
        total = total + (state * mt.tensor(w, dtype=np.float64)).sum()
    total.backward()
    used = 2 if kind == "GRU" else 3
    for mine, reference in zip(our_inputs[:used], torch_inputs[:used]):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-12)
    torch_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad, torch_params[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
