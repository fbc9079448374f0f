"""``Module`` and ``Parameter``: how layers own their weights and find each other's.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so
``model.named_parameters()`` can walk the tree and name every weight by its dotted path
(``transformer.h.0.attn.c_attn.weight``), the names that ``state_dict`` and checkpoints use.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Iterator

import numpy as np

from .. import backend
from ..backend import DEFAULT_DTYPE, array_module, is_array
from ..tensor import Tensor, describe


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module: it always requires grad."""

    def __init__(self, data):
        data = data.data if isinstance(data, Tensor) else data
        super().__init__(data, requires_grad=True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _to_array(value, like):
    """A state-dict value (NumPy/CuPy array, a tensor, or anything with __array__, e.g. a
    PyTorch tensor) as a fresh array of ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        value = value.data
    if not is_array(value):
        value = np.asarray(value)
    array = array_module(like).array(backend.to_device(value, backend.device_of(like)), dtype=like.dtype)
    return array


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__`` and
    define ``forward``; calling the module calls ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} has no forward(); subclasses must define it")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- walking the tree -------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every submodule, depth first."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _all_named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every (name, parameter) pair, a shared (tied) parameter once per name."""
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), each parameter once even when tied to two names."""
        seen = set()
        for name, param in self._all_named_parameters():
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of learnable numbers (a tied weight counts once)."""
        return sum(param.size for param in self.parameters())

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """name -> array for every parameter name (a tied weight appears under each of its
        names, as in PyTorch). The arrays are the live data, not copies."""
        return OrderedDict((name, param.data) for name, param in self._all_named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False) -> None:
        """Copy ``state`` (name -> array-like) into the parameters.

        Every problem is collected first (missing, unexpected and mis-shaped keys) and
        reported in one error, so a mismatch is fixed in one go; nothing is changed then.
        With ``strict=False`` missing and unexpected keys are ignored (shapes still must match).
        ``assign``: the parameters take the arrays themselves, with their dtype and device, and
        no copy (PyTorch's ``load_state_dict(assign=True)``): how a memory-mapped checkpoint
        becomes a model without a second copy of its weights in memory.
        """
        own = self.state_dict()
        params = dict(self._all_named_parameters())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        misshaped = [
            f"{name}: checkpoint {tuple(np.shape(state[name]))} vs model {tuple(own[name].shape)}"
            for name in own if name in state and tuple(np.shape(state[name])) != tuple(own[name].shape)
        ]
        problems = []
        if missing and strict:
            problems.append(f"missing keys: {missing}")
        if unexpected and strict:
            problems.append(f"unexpected keys: {unexpected}")
        if misshaped:
            problems.append(f"mis-shaped keys: {misshaped}")
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        not_arrays = [name for name in own if name in state and not is_array(state[name])]
        if assign and not_arrays:
            raise TypeError(f"load_state_dict(assign=True) for {type(self).__name__}: {not_arrays} are not "
                            "NumPy or CuPy arrays; assign takes arrays as they are")
        for name, param in params.items():
            if name in state:
                param.data = state[name] if assign else _to_array(state[name], param.data)

    # --- modes, devices, gradients ------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout on) for this module and all submodules."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off)."""
        return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter to 'cpu' or 'cuda' in place (ties and optimizer references
        stay valid because the Parameter objects stay the same)."""
        backend.check_device(device, f"{type(self).__name__}.to")
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
            if param.grad is not None:
                param.grad = backend.to_device(param.grad, device)
        return self

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ..."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of named modules, reachable as attributes (``transformer.wte``) or by key."""

    def __init__(self, modules: dict | None = None):
        super().__init__()
        for name, module in (modules or {}).items():
            setattr(self, name, module)

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    def __contains__(self, name: str) -> bool:
        return name in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()


class Sequential(ModuleList):
    """Modules applied one after another: Sequential(a, b)(x) = b(a(x))."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


_skip_init = False  # set only inside ``uninitialized_parameters()``


@contextlib.contextmanager
def uninitialized_parameters():
    """Build modules whose parameters are allocated but not filled, inside this block, for a
    model whose every weight a checkpoint replaces next (``load_state_dict(..., assign=True)``
    with strict=True, so none is left unfilled): no random numbers are drawn for them, and
    memory that is never written is never paged in. PyTorch's ``torch.nn.utils.skip_init`` and
    transformers' ``no_init_weights`` serve the same purpose."""
    global _skip_init
    previous, _skip_init = _skip_init, True
    try:
        yield
    finally:
        _skip_init = previous


def new_parameter(shape, fill=None, std=None, bound=None, dtype=DEFAULT_DTYPE) -> Parameter:
    """A fresh parameter: filled with a constant, normal(0, std), or uniform(-bound, bound),
    drawn from the framework's seeded generator (on the CPU; move the module with .to()).
    Inside ``uninitialized_parameters()`` it is left unfilled."""
    rng = backend.generator("cpu")
    if _skip_init:
        data = np.empty(shape, dtype=dtype)
    elif fill is not None:
        data = np.full(shape, fill, dtype=dtype)
    elif std is not None:
        data = rng.standard_normal(shape, dtype=np.float32).astype(dtype) * dtype(std)
    elif bound is not None:
        data = rng.uniform(-bound, bound, size=shape).astype(dtype)
    else:
        raise ValueError(f"new_parameter: give fill=, std= or bound= for shape {shape}")
    return Parameter(data)


def check_input(module: Module, x: Tensor, last_dim: int) -> None:
    """A layer's input must be a float tensor whose last axis has ``last_dim`` entries."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{type(module).__name__}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != last_dim:
        raise ValueError(f"{type(module).__name__}: input is {describe(x)}; expected last dim {last_dim}")
