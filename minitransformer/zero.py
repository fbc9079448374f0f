"""ZeRO stage 1: the optimizer's state sharded over the ranks of a data-parallel run.

In plain data parallelism every rank keeps the whole optimizer state: for Adam, two moments
per parameter, twice the parameters' own memory, identical on every rank. ZeRO stage 1
(Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models") gives each parameter one owner rank. After the all-reduce every rank holds the whole
gradient, but only the owner runs the optimizer on that parameter (so only the owner keeps its
moments); then each rank sends the parameters it updated to the others, one message per owner
(an all-gather of the updated slices). The update of each parameter is the unsharded
optimizer's, computed by one rank instead of all, so the parameters are the same bits.

Parameters are whole tensors here, assigned greedily (largest first) to the least-loaded rank,
as PyTorch's ``ZeroRedundancyOptimizer`` partitions them; DeepSpeed cuts one flat buffer into
equal slices instead, which balances better but splits tensors.

    optimizer = ZeroRedundancyOptimizer(model.configure_optimizers(0.1, 1e-3), world)
    ... backward, all_reduce_gradients, clip ...
    optimizer.step()           # the owner's update, then every rank has every parameter

``state_dict`` gathers the moments and returns the unsharded optimizer's dict (the same
format), so a checkpoint does not depend on the number of ranks; every rank must call it.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .distributed import World, init


class ZeroRedundancyOptimizer:
    """``optimizer`` (built over all parameters, e.g. AdamW with its groups) with its state
    sharded over ``world``: each rank steps and keeps state only for the parameters it owns."""

    def __init__(self, optimizer, world: World | None = None):
        self.world = world or init()
        self.optimizer = optimizer
        self.groups = [list(group["params"]) for group in optimizer.param_groups]  # all ranks' parameters
        self.params = [p for group in self.groups for p in group]  # numbered as the optimizer numbers them
        self.numbers = {id(p): i for i, p in enumerate(self.params)}
        self.owner = partition(self.params, self.world.size)  # id(param) -> rank
        for group in optimizer.param_groups:  # the wrapped optimizer now sees only this rank's
            group["params"] = [p for p in group["params"] if self.owner[id(p)] == self.world.rank]

    @property
    def param_groups(self) -> list[dict]:
        """The wrapped optimizer's groups (this rank's parameters): set_lr changes them all."""
        return self.optimizer.param_groups

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """The owners' update, then each owner's parameters sent to every rank."""
        self.optimizer.step()
        for rank in range(self.world.size):
            owned = [p for p in self.params if self.owner[id(p)] == rank]
            if not owned:
                continue
            if rank == self.world.rank:
                flat = np.concatenate([backend.to_numpy(p.data).ravel() for p in owned])  # (n,)
            else:
                flat = np.empty(sum(p.size for p in owned), dtype=owned[0].dtype)
            self.world.broadcast([flat], root=rank)
            if rank == self.world.rank:
                continue  # the owner has them already
            offset = 0
            for p in owned:
                values = flat[offset:offset + p.size].reshape(p.shape)
                p.data = values if backend.device_of(p.data) == "cpu" else backend.to_device(values, "cuda")
                offset += p.size

    def state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds (the moments of the parameters it owns)."""
        return sum(value.nbytes for entry in self.optimizer.state.values() for value in entry.values()
                   if hasattr(value, "nbytes"))

    def state_dict(self) -> dict:
        """The unsharded optimizer's state dict: each parameter's state sent by its owner to
        every rank. A collective: every rank must call it (rank 0 then saves it)."""
        local = self.optimizer.state_dict()  # numbered over this rank's parameters
        mine = [p for group in self.optimizer.param_groups for p in group["params"]]
        own_state = {id(p): local["state"][i] for i, p in enumerate(mine) if i in local["state"]}
        state = {}
        for index, p in enumerate(self.params):
            owner = self.owner[id(p)]
            entry = own_state.get(id(p), {}) if owner == self.world.rank else None
            described = ",".join(f"{name}:{_kind(value)}" for name, value in entry.items()) if entry is not None else None
            described = self.world.broadcast_text(described, root=owner)  # e.g. "step:int,exp_avg:array"
            if not described:
                continue
            received = {}
            for item in described.split(","):
                name, kind = item.split(":")
                shape = p.shape if kind == "array" else ()
                if entry is None:
                    box = np.empty(shape, dtype=np.float64)  # float64 carries float32 and int values exactly
                else:
                    value = entry[name]
                    box = np.asarray(backend.to_numpy(value) if hasattr(value, "shape") else value,
                                     dtype=np.float64).reshape(shape)
                self.world.broadcast([box], root=owner)
                received[name] = box.astype(p.dtype) if kind == "array" else (int(box) if kind == "int" else float(box))
            state[index] = received
        groups = [{**{k: v for k, v in group.items() if k != "params"},
                   "params": [self._number(p) for p in params]}
                  for group, params in zip(self.optimizer.param_groups, self.groups)]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load an unsharded state dict (``state_dict``'s format), keeping this rank's share."""
        mine = [p for group in self.optimizer.param_groups for p in group["params"]]
        numbers = [self._number(p) for p in mine]
        self.optimizer.load_state_dict({
            "state": {i: state_dict["state"][n] for i, n in enumerate(numbers) if n in state_dict["state"]},
            "param_groups": [{**saved, "params": list(range(len(group["params"])))}
                             for saved, group in zip(state_dict["param_groups"], self.optimizer.param_groups)]})

    def _number(self, param) -> int:
        return self.numbers[id(param)]


def _kind(value) -> str:
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return "array"
    return "int" if isinstance(value, (int, np.integer)) else "float"


def partition(params, world_size: int) -> dict[int, int]:
    """id(param) -> owner rank: largest parameters first, each to the rank holding the fewest
    elements so far (ties to the lower rank), the same on every rank."""
    load = [0] * world_size
    owner = {}
    for p in sorted(params, key=lambda p: -p.size):  # sorted() is stable: ties keep their order
        rank = min(range(world_size), key=lambda r: load[r])
        owner[id(p)] = rank
        load[rank] += p.size
    return owner
