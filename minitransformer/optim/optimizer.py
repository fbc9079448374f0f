"""The optimizer base class: parameter groups, per-parameter state, and saving both."""

from __future__ import annotations

import copy

from ..backend import array_module, check_device, device_of, is_array, to_device, to_numpy
from ..tensor import Tensor


class Optimizer:
    """Holds ``param_groups`` (PyTorch style: a list of dicts, each with its "params" and its
    own hyper-parameters such as "lr" and "weight_decay") and ``state`` (per parameter: step
    count, moment estimates...). Subclasses implement ``step()``.

    Gradients are read, never modified in place: ``param.grad`` may be shared with the graph.
    """

    def __init__(self, params, defaults: dict):
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: dict[int, dict] = {}  # id(param) -> state
        seen = set()
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"{type(self).__name__}: unknown options {sorted(unknown)} in a parameter group")
            for param in group["params"]:
                if not isinstance(param, Tensor):
                    raise TypeError(f"{type(self).__name__}: can only optimize tensors, got {type(param).__name__}")
                if not param.requires_grad:  # a frozen parameter would never change: a mistake
                    raise TypeError(f"{type(self).__name__}: can only optimize tensors that require grad, got a "
                                    f"frozen one {tuple(param.shape)} (requires_grad False); pass "
                                    "[p for p in model.parameters() if p.requires_grad]")
                if id(param) in seen:
                    raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
                seen.add(id(param))
            self.param_groups.append(group)
        self.validate_hyperparameters()

    def validate_hyperparameters(self) -> None:
        for group in self.param_groups:
            if group["lr"] < 0:
                raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {group['lr']}")
            if group.get("weight_decay", 0.0) < 0:
                raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    def _params_with_grad(self):
        """(group, param, its gradient) for every parameter that received a gradient; its state
        must be on the parameter's device (``to`` moves it after the model's ``.to``)."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._check_state_device(param)
                    yield group, param, param.grad

    def _check_state_device(self, param) -> None:
        device = device_of(param.data)
        for name, value in self.state.get(id(param), {}).items():
            if is_array(value) and device_of(value) != device:
                raise RuntimeError(
                    f"{type(self).__name__}.step: a parameter {tuple(param.shape)} is on {device!r} "
                    f"but its state {name!r} is on {device_of(value)!r}: after model.to({device!r}), "
                    f"move the optimizer too with .to({device!r})")

    def to(self, device: str) -> "Optimizer":
        """Move the per-parameter state (moments...) to 'cpu' or 'cuda', after the model."""
        check_device(device, f"{type(self).__name__}.to")
        for entry in self.state.values():
            for name, value in entry.items():
                if is_array(value):
                    entry[name] = to_device(value, device)
        return self

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                param.grad = None

    def step(self) -> None:
        raise TypeError(f"{type(self).__name__} must define step()")

    # --- saving and resuming ---------------------------------------------------------------
    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """{"state": {index: {name: value}}, "param_groups": [{options..., "params": [indices]}]}
        with parameters numbered in group order (as PyTorch does); arrays as NumPy copies."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {
            index[key]: {name: (to_numpy(v).copy() if hasattr(v, "shape") else v) for name, v in entry.items()}
            for key, entry in self.state.items() if key in index
        }
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        params = self._all_params()
        groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g["params"]) for g in groups] != sizes:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved groups hold "
                f"{[len(g['params']) for g in groups]} parameters, this optimizer's {sizes}"
            )
        for group, saved in zip(self.param_groups, groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, entry in state_dict["state"].items():
            param = params[int(i)]
            xp = array_module(param.data)
            restored = {}
            for name, value in entry.items():
                if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
                    if value.shape != param.shape:
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {i} "
                            f"has shape {value.shape}, the parameter {param.shape}"
                        )
                    value = xp.asarray(value, dtype=param.dtype).copy()
                restored[name] = value
            self.state[id(param)] = restored
