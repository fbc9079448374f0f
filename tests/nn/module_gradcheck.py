"""gradcheck for a module: its inputs and every one of its parameters, in float64."""

from __future__ import annotations

import minitransformer as mt


def module_gradcheck(module, *inputs, forward=None) -> bool:
    """mt.gradcheck of ``forward(module, *inputs)`` (default: ``module(*inputs)``) with respect
    to the float inputs and every parameter of ``module``.

    gradcheck differentiates fresh float64 copies of what it is given, so for the duration of
    the check each parameter attribute is pointed at its copy (object.__setattr__ bypasses the
    registration in Module.__setattr__), then restored.
    """
    forward = forward or (lambda m, *xs: m(*xs))
    named = list(module.named_parameters())
    owners = []
    for name, _ in named:
        owner_path, _, attribute = name.rpartition(".")
        owner = module
        for part in filter(None, owner_path.split(".")):
            owner = owner._modules[part]
        owners.append((owner, attribute))
    originals = [param for _, param in named]

    def fn(*tensors):
        params, xs = tensors[:len(named)], tensors[len(named):]
        for (owner, attribute), param in zip(owners, params):
            object.__setattr__(owner, attribute, param)
        return forward(module, *xs)

    try:
        return mt.gradcheck(fn, originals + list(inputs))
    finally:
        for (owner, attribute), param in zip(owners, originals):
            object.__setattr__(owner, attribute, param)
