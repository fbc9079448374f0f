"""LoRA: low-rank adapters on a frozen model (Hu et al. 2021, "LoRA: low-rank adaptation of
large language models").

Fine-tuning changes a weight W (out, in) by some dW. LoRA bets that the change a task needs has
low rank, and learns it as a product of two thin matrices, dW = (alpha / r) B A with A (r, in)
and B (out, r), while W stays frozen:

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T

A starts small and random, B at zero, so the adapted model starts out equal to the base model.
For a 576 x 576 projection at r = 8 that is 9,216 trainable numbers instead of 331,776.

Names follow Hugging Face PEFT (``peft/tuners/lora/layer.py``): the wrapped layer becomes
``base_layer``, the adapter matrices ``lora_A.weight`` (r, in) and ``lora_B.weight`` (out, r),
and a saved adapter's keys are ``base_model.model.<module path>.lora_A.weight`` (PEFT's
``get_peft_model_state_dict`` drops the adapter name ``default``), so adapters map one-to-one
onto PEFT's ``adapter_model.safetensors`` files (docs/source/developer_guides/checkpoint.md).
"""

from __future__ import annotations

import math
import re

from .. import functional as F
from ..backend import array_module
from ..tensor import Tensor
from .layers import Dropout, Linear
from .module import Module, check_input, new_parameter

PEFT_PREFIX = "base_model.model."  # what PEFT puts before a module's path in a saved adapter


class LoRALinear(Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update:

        y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A (r, in), B (out, r)

    A is initialised U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's Kaiming-uniform with a = sqrt(5), as
    PEFT does), B with zeros. ``merge()`` folds (alpha / r) B A into W for inference at the base
    model's speed; ``unmerge()`` takes it out again.
    """

    def __init__(self, base_layer: Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base_layer, Linear):
            raise TypeError(f"LoRALinear: expected an nn.Linear to wrap, got {type(base_layer).__name__}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"LoRALinear: rank must be an integer >= 1, got {rank!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"LoRALinear: alpha must be a finite number > 0, got {alpha!r}")
        in_features, out_features = base_layer.in_features, base_layer.out_features
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad = False
        self.lora_dropout = Dropout(dropout)
        self.lora_A = Linear(in_features, rank, bias=False)  # nn.Linear's U(-1/sqrt(in), 1/sqrt(in)) is PEFT's init
        self.lora_B = Linear(rank, out_features, bias=False)
        self.lora_B.weight = new_parameter((out_features, rank), fill=0.0)
        weight = base_layer.weight.data
        for adapter in (self.lora_A.weight, self.lora_B.weight):  # where and in what the base lives
            adapter.data = array_module(weight).asarray(adapter.data, dtype=weight.dtype)
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.in_features)
        y = self.base_layer(x)  # (..., out)
        if self.merged:  # the update is inside W already
            return y
        down = F.linear(self.lora_dropout(x), self.lora_A.weight)  # (..., r)
        return y + F.linear(down, self.lora_B.weight) * self.scaling  # (..., out)

    def delta_weight(self):
        """(alpha / r) B A, the (out, in) change the adapter makes to W, as an array."""
        return (self.lora_B.weight.data @ self.lora_A.weight.data) * self.scaling

    def merge(self) -> None:
        """W <- W + (alpha / r) B A: the same outputs from one matrix product instead of three."""
        if not self.merged:
            self.base_layer.weight.data = self.base_layer.weight.data + self.delta_weight()
            self.merged = True

    def unmerge(self) -> None:
        """W <- W - (alpha / r) B A: the base weight back (within float rounding)."""
        if self.merged:
            self.base_layer.weight.data = self.base_layer.weight.data - self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"alpha={self.alpha:g}, dropout={self.lora_dropout.p:g}, merged={self.merged}")


def _matches(name: str, target_modules) -> bool:
    """PEFT's rule: a string is a regular expression the whole module name must match; a list
    names modules by their last part(s) (``"c_attn"`` matches ``transformer.h.0.attn.c_attn``)."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == target or name.endswith("." + target) for target in target_modules)


def apply_lora(model: Module, target_modules, rank: int = 8, alpha: float = 16.0,
               dropout: float = 0.0) -> list[str]:
    """Wrap every ``nn.Linear`` of ``model`` whose name matches ``target_modules`` in a
    ``LoRALinear`` (in place), freeze every other parameter, and return the wrapped names.

    target_modules: names' last parts, e.g. ("q_proj", "v_proj") for Llama, ("c_attn",) for GPT,
        or one regular expression for the whole name (``r".*\\.h\\.[01]\\.attn\\.c_attn"``).
    A name that matches no Linear is an error listing the model's Linear layers.
    """
    if isinstance(target_modules, (list, tuple)) and not target_modules:
        raise ValueError("apply_lora: target_modules is empty; name at least one layer, e.g. ('c_attn',)")
    if any(isinstance(module, LoRALinear) for module in model.modules()):
        raise ValueError("apply_lora: the model already has LoRA adapters")
    linear_names = [name for name, module in model.named_modules() if isinstance(module, Linear)]
    chosen = [name for name in linear_names if _matches(name, target_modules)]
    if not chosen:
        last_parts = sorted({name.rsplit(".", 1)[-1] for name in linear_names})
        raise ValueError(f"apply_lora: target_modules {target_modules!r} match none of the model's Linear layers; "
                         f"its Linear layers are named {last_parts}")
    names_of = {}
    for param_name, param in model._all_named_parameters():
        names_of.setdefault(id(param), []).append(param_name)
    modules = dict(model.named_modules())
    for name in chosen:
        tied = names_of[id(modules[name].weight)]
        if len(tied) > 1:  # merging the update would change the other use of the matrix too
            raise ValueError(f"apply_lora: {name}.weight is tied to {[n for n in tied if n != name + '.weight']}; "
                             "an adapter on a shared weight cannot be merged; choose other target_modules")
    for param in model.parameters():
        param.requires_grad = False
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child,
                LoRALinear(modules[name], rank, alpha, dropout))
    return chosen


def lora_layers(model: Module) -> dict[str, LoRALinear]:
    """Module name -> LoRALinear, for every adapter in ``model``."""
    return {name: module for name, module in model.named_modules() if isinstance(module, LoRALinear)}


def count_parameters(model: Module) -> tuple[int, int]:
    """(trainable, total) numbers in the model's parameters (a tied weight counts once)."""
    params = model.parameters()
    return sum(p.size for p in params if p.requires_grad), sum(p.size for p in params)


def lora_state_dict(model: Module) -> dict:
    """The adapter weights only, under PEFT's names: ``base_model.model.<module>.lora_A.weight``
    and ``...lora_B.weight`` -> arrays (the live data, not copies)."""
    state = {}
    for name, layer in lora_layers(model).items():
        state[f"{PEFT_PREFIX}{name}.lora_A.weight"] = layer.lora_A.weight.data
        state[f"{PEFT_PREFIX}{name}.lora_B.weight"] = layer.lora_B.weight.data
    return state


def load_lora_state_dict(model: Module, state: dict) -> None:
    """Copy a ``lora_state_dict`` (a PEFT adapter's tensors) into the model's adapters: every
    adapter must be there with its shape, and nothing else."""
    layers = lora_layers(model)
    targets = {}
    for name, layer in layers.items():
        targets[f"{PEFT_PREFIX}{name}.lora_A.weight"] = layer.lora_A.weight
        targets[f"{PEFT_PREFIX}{name}.lora_B.weight"] = layer.lora_B.weight
    missing = sorted(set(targets) - set(state))
    unexpected = sorted(set(state) - set(targets))
    misshaped = [f"{key}: adapter {tuple(state[key].shape)} vs model {tuple(param.shape)}"
                 for key, param in targets.items() if key in state and tuple(state[key].shape) != tuple(param.shape)]
    problems = [f"{what}: {keys[:4]}{' ...' if len(keys) > 4 else ''}"
                for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    if problems:
        raise ValueError("load_lora_state_dict: the adapter does not fit the model; " + "; ".join(problems))
    for key, param in targets.items():
        param.data = array_module(param.data).asarray(state[key], dtype=param.dtype).copy()


def merge_and_unload(model: Module) -> list[str]:
    """Fold every adapter into its weight and put the plain ``nn.Linear`` back in its place, in
    place: the model has its original structure and parameter names again (ready to save as a
    full model), with W + (alpha / r) B A as its weights. Returns the names it merged."""
    merged = lora_layers(model)
    modules = dict(model.named_modules())
    for name, layer in merged.items():
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, layer.base_layer)
    return list(merged)


def merged_state_dict(model: Module) -> dict:
    """The state dict the model would have without adapters (its original names, such as
    ``transformer.h.0.attn.c_attn.weight``), each adapted weight W + (alpha / r) B A. The model
    is left as it is."""
    layers = lora_layers(model)
    state = {}
    for name, value in model.state_dict().items():
        owner, found, parameter = name.rpartition(".base_layer.")
        if not found:
            if not (".lora_A." in name or ".lora_B." in name):
                state[name] = value
            continue
        layer = layers[owner]
        if parameter == "weight" and not layer.merged:
            value = value + layer.delta_weight()
        state[f"{owner}.{parameter}"] = value
    return state
