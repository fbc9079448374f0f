"""nn/module.py: registration by attribute, dotted names, tied weights, state dicts, modes,
containers and printing."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))

    def forward(self, x):
        return self.proj(x) * self.scale


class Outer(nn.Module):
    """Two inner modules, a container, and a head tied to the first layer's weight."""

    def __init__(self):
        super().__init__()
        self.encoder = Inner()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4, bias=False)])
        self.head = nn.Linear(4, 3, bias=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.drop(x))


def tied_pair():
    """Embedding (V, C) and a head Linear(C, V) sharing one (V, C) weight, as GPT ties them."""
    model = nn.Module()
    model.embed = nn.Embedding(5, 3)
    model.head = nn.Linear(3, 5, bias=False)
    model.head.weight = model.embed.weight
    return model


def test_named_parameters_are_dotted_paths_in_registration_order():
    names = [name for name, _ in Outer().named_parameters()]
    # each module's own parameters first, then its children's (as PyTorch orders them)
    assert names == [
        "encoder.scale", "encoder.proj.weight", "encoder.proj.bias",
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "head.weight",
    ]


def test_containers_number_entries_and_absent_biases_register_nothing():
    model = Outer()
    names = [name for name, _ in model.named_parameters()]
    # the container "blocks" was assigned before "head", its entries numbered from 0
    assert names.index("blocks.0.weight") < names.index("blocks.1.weight") < names.index("head.weight")
    assert "blocks.1.bias" not in names  # bias=False registers nothing
    assert set(names) == set(model.state_dict())


def test_tied_weight_is_one_parameter_under_two_names():
    model = tied_pair()
    params = model.parameters()
    assert len(params) == 1 and params[0] is model.embed.weight
    assert model.num_parameters() == 5 * 3  # counted once
    state = model.state_dict()
    assert list(state) == ["embed.weight", "head.weight"]
    assert state["embed.weight"] is state["head.weight"]


def test_tied_weight_receives_the_sum_of_both_uses_gradients():
    model = tied_pair()
    ids = np.array([[0, 3, 3]])
    logits = model.head(model.embed(ids))  # (1, 3, 5)
    logits.sum().backward()
    weight = model.embed.weight.data.astype(np.float64)
    # d/dW of sum(E[ids] W^T): through the head every row gets sum of the inputs E[ids];
    # through the embedding rows 0 and 3 get sum_v W[v] once per occurrence
    expected = np.tile(weight[ids[0]].sum(axis=0), (5, 1))
    expected[0] += weight.sum(axis=0)
    expected[3] += 2 * weight.sum(axis=0)
    np.testing.assert_allclose(model.embed.weight.grad, expected, rtol=1e-5, atol=1e-6)


def test_modules_yields_every_module_once_depth_first():
    model = Outer()
    names = [name for name, _ in model.named_modules()]
    assert names == ["", "encoder", "encoder.proj", "blocks", "blocks.0", "blocks.1", "head", "drop"]
    assert len(list(model.modules())) == len(names)
    shared = nn.Linear(2, 2)
    twice = nn.Sequential(shared, shared)
    assert len(list(twice.modules())) == 2  # the Sequential and the one shared Linear
    assert len(twice.parameters()) == 2


def test_train_and_eval_propagate_to_every_submodule_and_dropout_obeys():
    model = Outer()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = mt.tensor(np.ones((64, 4), dtype=np.float32))
    np.testing.assert_array_equal(model.drop(x).numpy(), x.numpy())  # identity in eval mode
    model.train()
    assert all(m.training for m in model.modules())
    out = model.drop(x).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}  # zeros and survivors scaled by 1/(1 - p)
    assert 0.3 < (out == 0).mean() < 0.7


def test_zero_grad_clears_every_parameter_gradient():
    model = Outer()
    model(mt.tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_num_parameters_counts_numbers():
    model = Outer()
    # proj 3*4+4, scale 4, blocks 4*4+4 and 4*4, head 4*3
    assert model.num_parameters() == 16 + 4 + 20 + 16 + 12
    assert model.num_parameters() == sum(p.size for p in model.parameters())


def test_repr_nests_children_with_their_settings():
    text = repr(Outer())
    assert text.startswith("Outer(\n  (encoder): Inner(\n    (proj): Linear(in_features=3, out_features=4, bias=True)")
    assert "(1): Linear(in_features=4, out_features=4, bias=False)" in text
    assert "(drop): Dropout(p=0.5)" in text
    assert text.endswith(")")
    assert repr(nn.ReLU()) == "ReLU()"


def test_setting_an_attribute_registers_and_replacing_it_deregisters():
    model = nn.Module()
    model.layer = nn.Linear(2, 2)
    assert [n for n, _ in model.named_parameters()] == ["layer.weight", "layer.bias"]
    model.layer = None
    assert model.parameters() == []
    model.w = nn.Parameter(np.zeros(3, dtype=np.float32))
    model.w = mt.tensor(np.zeros(3))  # a plain tensor is state, not a weight
    assert model.parameters() == []
    model.w = nn.Parameter(np.zeros(3, dtype=np.float32))
    del model.w
    assert model.parameters() == [] and not hasattr(model, "w")


def test_attribute_before_super_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(RuntimeError, match=r"Broken: call super\(\).__init__\(\)"):
        Broken()


def test_module_without_forward_says_so():
    with pytest.raises(TypeError, match="Module has no forward"):
        nn.Module()(1)


def test_parameter_always_requires_grad_and_says_what_it_is():
    param = nn.Parameter(mt.tensor([1.0, 2.0]))
    assert param.requires_grad and isinstance(param, mt.Tensor)
    assert repr(param).startswith("Parameter containing:")


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 3)])
    layers.append(nn.ReLU()).append(nn.Linear(3, 1))
    assert len(layers) == 3 and isinstance(layers[1], nn.ReLU) and isinstance(layers[-1], nn.Linear)
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]

    table = nn.ModuleDict({"a": nn.Linear(2, 2)})
    table["b"] = nn.Linear(2, 1, bias=False)
    assert "a" in table and "c" not in table and len(table) == 2
    assert table["b"] is table.b and list(table.keys()) == ["a", "b"]
    assert [n for n, _ in table.named_parameters()] == ["a.weight", "a.bias", "b.weight"]

    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = mt.tensor(np.array([[1.0, -2.0]]))
    expected = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).numpy(), expected.numpy())


def test_load_state_dict_reports_missing_extra_and_misshaped_keys_in_one_error():
    model = Outer()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    state = {name: np.zeros_like(value) for name, value in before.items()}
    del state["blocks.0.bias"]
    state["blocks.7.weight"] = np.zeros((4, 4))
    state["head.weight"] = np.zeros((4, 4))
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "load_state_dict for Outer" in message
    assert "missing keys: ['blocks.0.bias']" in message
    assert "unexpected keys: ['blocks.7.weight']" in message
    assert "head.weight: checkpoint (4, 4) vs model (3, 4)" in message
    for name, value in model.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict_ignores_missing_and_extra_keys_but_not_shapes():
    model = Outer()
    model.load_state_dict({"head.weight": np.ones((3, 4)), "other": np.zeros(2)}, strict=False)
    np.testing.assert_array_equal(model.head.weight.data, np.ones((3, 4)))
    assert model.head.weight.dtype == np.float32  # converted to the parameter's dtype
    with pytest.raises(ValueError, match="mis-shaped"):
        model.load_state_dict({"head.weight": np.ones((4, 3))}, strict=False)


def test_load_state_dict_copies_so_later_changes_to_the_source_do_not_leak_in():
    source, target = Outer(), Outer()
    state = source.state_dict()
    target.load_state_dict(state)
    state["head.weight"][...] = 7.0  # the live data of `source`
    assert not np.any(target.head.weight.data == 7.0)
    for name, value in target.state_dict().items():
        if name != "head.weight":
            np.testing.assert_array_equal(value, source.state_dict()[name])


def test_load_state_dict_keeps_ties():
    source, target = tied_pair(), tied_pair()
    target.load_state_dict(source.state_dict())
    assert target.head.weight is target.embed.weight
    np.testing.assert_array_equal(target.head.weight.data, source.embed.weight.data)


def test_uninitialized_parameters_draw_no_random_numbers():
    from minitransformer.nn.module import uninitialized_parameters

    mt.manual_seed(0)
    expected = nn.Linear(3, 2).weight.numpy()
    mt.manual_seed(0)
    with uninitialized_parameters():
        skipped = nn.Linear(300, 200)
    assert skipped.weight.shape == (200, 300)
    assert np.array_equal(nn.Linear(3, 2).weight.numpy(), expected)  # the generator did not move


def test_load_state_dict_assign_takes_the_arrays_themselves():
    layer = nn.Linear(3, 2)
    weight, bias = np.ones((2, 3), np.float16), np.zeros(2, np.float16)
    layer.load_state_dict({"weight": weight, "bias": bias}, assign=True)
    assert layer.weight.data is weight and layer.weight.dtype == np.float16
    with pytest.raises(TypeError, match="assign takes arrays as they are"):
        layer.load_state_dict({"weight": [[1.0] * 3] * 2, "bias": bias}, assign=True)
