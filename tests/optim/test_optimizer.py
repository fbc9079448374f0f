"""optim/optimizer.py: parameter groups with their own hyper-parameters, and saving and
restoring the optimizer's state so training continues exactly where it stopped."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim


def make_model():
    mt.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def train(model, optimizer, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = mt.tensor(rng.standard_normal((5, 3)))
        y = mt.tensor(rng.standard_normal((5, 2)))
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def grouped(optimizer_class, model, **options):
    first, second = model[0], model[2]
    return optimizer_class([{"params": first.parameters(), "lr": 0.05, "weight_decay": 0.1},
                            {"params": second.parameters()}], **options)


def test_each_group_uses_its_own_lr_and_weight_decay():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.SGD([{"params": [a], "lr": 0.5, "weight_decay": 1.0}, {"params": [b]}], lr=0.1)
    assert optimizer.param_groups[1]["lr"] == 0.1 and optimizer.param_groups[1]["weight_decay"] == 0.0
    a.grad, b.grad = np.ones(2), np.ones(2)
    optimizer.step()
    np.testing.assert_allclose(a.numpy(), 1 - 0.5 * (1 + 1.0))  # own lr, own decay
    np.testing.assert_allclose(b.numpy(), 1 - 0.1 * 1)  # the defaults


def test_adamw_groups_decay_only_where_asked():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.AdamW([{"params": [a], "weight_decay": 0.5}, {"params": [b], "weight_decay": 0.0}], lr=0.1)
    a.grad, b.grad = np.zeros(2), np.zeros(2)
    optimizer.step()
    np.testing.assert_allclose(a.numpy(), 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(b.numpy(), np.ones(2))


@pytest.mark.parametrize("optimizer_class, options", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99))),
    (optim.AdamW, dict(lr=0.01)),
])
def test_state_dict_round_trip_continues_identically(optimizer_class, options):
    model = make_model()
    optimizer = grouped(optimizer_class, model, **options)
    train(model, optimizer, 3, seed=1)
    model_state = {name: value.copy() for name, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    train(model, optimizer, 4, seed=2)  # the uninterrupted run

    resumed = make_model()
    resumed.load_state_dict(model_state)
    resumed_optimizer = grouped(optimizer_class, resumed, **options)
    resumed_optimizer.param_groups[0]["lr"] = 123.0  # overwritten by the saved groups
    resumed_optimizer.load_state_dict(optimizer_state)
    assert resumed_optimizer.param_groups[0]["lr"] == 0.05
    train(resumed, resumed_optimizer, 4, seed=2)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)


def test_state_dict_numbers_parameters_and_holds_copies():
    model = make_model()
    optimizer = grouped(optim.Adam, model, lr=0.01)
    train(model, optimizer, 2, seed=0)
    state = optimizer.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0, 1], [2, 3]]
    assert sorted(state["state"]) == [0, 1, 2, 3] and state["state"][0]["step"] == 2
    assert state["param_groups"][0]["weight_decay"] == 0.1 and state["param_groups"][1]["weight_decay"] == 0.0
    saved = state["state"][0]["exp_avg"].copy()
    train(model, optimizer, 1, seed=5)
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], saved)  # not the live array


def test_load_state_dict_checks_group_sizes_and_state_shapes():
    model = make_model()
    optimizer = grouped(optim.Adam, model, lr=0.01)
    train(model, optimizer, 1, seed=0)
    state = optimizer.state_dict()
    one_group = optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the saved groups hold \[2, 2\] parameters, this optimizer's \[4\]"):
        one_group.load_state_dict(state)
    state["state"][0]["exp_avg"] = np.zeros((9, 9))
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(9, 9\), the parameter \(4, 3\)"):
        grouped(optim.Adam, model, lr=0.01).load_state_dict(state)


def test_construction_errors():
    param = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: unknown options \['betas'\]"):
        optim.SGD([{"params": [param], "betas": (0.9, 0.9)}], lr=0.1)
    with pytest.raises(ValueError, match="SGD: a parameter appears in more than one group"):
        optim.SGD([{"params": [param]}, {"params": [param]}], lr=0.1)
    with pytest.raises(TypeError, match="SGD: can only optimize tensors that require grad"):
        optim.SGD([mt.tensor(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="SGD: learning rate must be >= 0"):
        optim.SGD([param], lr=-0.1)


def test_zero_grad_clears_and_accepts_a_generator_of_parameters():
    model = make_model()
    optimizer = optim.SGD((p for p in model.parameters()), lr=0.1)
    assert len(optimizer.param_groups[0]["params"]) == 4
    train(model, optimizer, 1, seed=0)
    assert all(p.grad is not None for p in model.parameters())
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
