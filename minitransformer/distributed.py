"""Data parallelism over MPI: N processes ("ranks") each hold the whole model, take their share
of every batch, and add their gradients together before the identical update.

    mpiexec -n 2 python -m minitransformer train ...      # pip install "minitransformer[mpi]"

Why the sum of the ranks' gradients is the big batch's gradient: see microbatches.py (each
piece's loss is weighted by its share of the batch's counted targets, so the gradients only need
adding, never dividing). The parts, as Horovod and PyTorch's DistributedDataParallel arrange
them:

- ``init()`` finds the world: the launcher (mpiexec) sets PMI_SIZE (MPICH's Hydra) or
  OMPI_COMM_WORLD_SIZE (Open MPI); started without one, or with one rank, it is a single
  process and nothing here touches MPI (mpi4py need not be installed).
- ``broadcast_parameters`` copies rank 0's initial weights to every rank, so all start equal.
- ``all_reduce_gradients`` adds the gradients of all ranks in place, packed into buckets of a
  few megabytes (one message per bucket instead of one per tensor: each message costs a
  latency, and a bucket amortises it); all buckets are started before the first is waited on,
  so MPI moves one while it adds another. Every rank then holds the same sum, clips it the same
  way and takes the same optimizer step, so the weights stay equal without being sent again.
- Every collective is nonblocking with a deadline (``timeout``, MINITRANSFORMER_MPI_TIMEOUT
  seconds): a rank that dies or hangs makes the others stop with an error naming the wait, not
  hang. Under MPICH's mpiexec a rank that exits with an error or is killed ends the whole job
  at once anyway; the deadline covers launchers that do not.
- ``exit(code)``: a failing rank leaves with ``os._exit`` (MPI_Finalize would wait for the
  others, which wait for it); the launcher then stops the rest.

``DistributedDataParallel`` wraps a model for a hand-written training loop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .microbatches import BatchPlan

# set by the launcher in each process it starts: MPICH/Intel MPI (Hydra), Open MPI
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")
TIMEOUT_VARIABLE = "MINITRANSFORMER_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a collective may wait: far above a step, far below "hung"
BUCKET_BYTES = 4 << 20  # gradients per all-reduce message (PyTorch's DDP uses 25 MB on fast links)


class CollectiveTimeout(OSError):
    """A collective waited longer than the world's timeout for another rank."""


def launched_world_size() -> int:
    """How many processes the launcher started (1 when none did)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


@dataclass
class World:
    """This process's place among the ranks: ``rank`` in [0, ``size``), the MPI communicator
    (None for a single process), the collectives' deadline, and the seconds spent in them."""

    rank: int = 0
    size: int = 1
    comm: object = None
    timeout: float = DEFAULT_TIMEOUT
    seconds_communicating: float = field(default=0.0, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def plan(self, accumulation_steps: int = 1) -> BatchPlan:
        """How this rank takes its share of a batch, in ``accumulation_steps`` micro-batches."""
        return BatchPlan(accumulation_steps, self.rank, self.size)

    # --- collectives (each a no-op on a single process) ---------------------------------------

    def all_reduce(self, arrays: list, bucket_bytes: int = BUCKET_BYTES) -> list:
        """Each array (NumPy or CuPy) summed over all ranks: new arrays, on the arrays' devices.
        The arrays travel in buckets; every bucket is started before the first is waited on."""
        if self.size == 1:
            return list(arrays)
        requests, buckets = [], []
        for group in _buckets(arrays, bucket_bytes):
            flat = np.concatenate([backend.to_numpy(array).ravel() for array in group])  # (n,) host memory
            requests.append(self.comm.Iallreduce(self._mpi.IN_PLACE, flat, op=self._mpi.SUM))
            buckets.append((group, flat))
        self._wait(requests, "all-reduce of the gradients")
        summed = []
        for group, flat in buckets:
            offset = 0
            for array in group:
                host = flat[offset:offset + array.size].reshape(array.shape)
                summed.append(host if isinstance(array, np.ndarray) else backend.to_device(host, "cuda"))
                offset += array.size
        return summed

    def sum_numbers(self, *numbers: float) -> list[float]:
        """Each number summed over the ranks (float64): losses, counts, votes to stop."""
        values = np.array(numbers, dtype=np.float64)
        if self.size > 1:
            self._wait([self.comm.Iallreduce(self._mpi.IN_PLACE, values, op=self._mpi.SUM)], "all-reduce of numbers")
        return values.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any (a Ctrl-C that reached one rank)."""
        return self.sum_numbers(float(flag))[0] > 0

    def broadcast(self, arrays: list, root: int = 0) -> None:
        """Overwrite each array on every rank with ``root``'s, in place."""
        if self.size == 1:
            return
        hosts = [np.ascontiguousarray(backend.to_numpy(array)) for array in arrays]
        self._wait([self.comm.Ibcast(host, root=root) for host in hosts], "broadcast")
        for array, host in zip(arrays, hosts):
            array[...] = host if isinstance(array, np.ndarray) else backend.to_device(host, "cuda")

    def broadcast_text(self, text: str | None, root: int = 0) -> str:
        """``root``'s string, on every rank (a run directory's name, chosen by rank 0)."""
        if self.size == 1:
            return text
        length = np.array([len(text.encode()) if self.rank == root else 0], dtype=np.int64)
        self._wait([self.comm.Ibcast(length, root=root)], "broadcast")
        payload = np.frombuffer(text.encode(), dtype=np.uint8).copy() if self.rank == root else \
            np.empty(int(length[0]), dtype=np.uint8)
        self._wait([self.comm.Ibcast(payload, root=root)], "broadcast")
        return payload.tobytes().decode()

    def barrier(self, what: str = "barrier") -> None:
        if self.size > 1:
            self._wait([self.comm.Ibarrier()], what)

    def _wait(self, requests: list, what: str) -> None:
        """Wait for the requests, polling, until the deadline: then CollectiveTimeout."""
        started = time.perf_counter()
        deadline = started + self.timeout
        pause = 0.0
        while not self._mpi.Request.Testall(requests):
            if time.perf_counter() > deadline:
                raise CollectiveTimeout(f"rank {self.rank} of {self.size}: the {what} waited {self.timeout:g} s "
                                        "for the other ranks; one of them has stopped or hangs")
            time.sleep(pause)  # 0 at first (a yield), then up to 1 ms, to leave the core to others
            pause = min(1e-3, pause + 1e-5)
        self.seconds_communicating += time.perf_counter() - started

    @property
    def _mpi(self):
        from mpi4py import MPI

        return MPI


def _buckets(arrays: list, bucket_bytes: int) -> list[list]:
    """Consecutive arrays of one dtype grouped until a group holds ``bucket_bytes``."""
    groups, current, size = [], [], 0
    for array in arrays:
        if current and (size >= bucket_bytes or array.dtype != current[0].dtype):
            groups.append(current)
            current, size = [], 0
        current.append(array)
        size += array.nbytes
    if current:
        groups.append(current)
    return groups


_world: World | None = None


def init(timeout: float | None = None) -> World:
    """The world of this process (found once, then the same object): MPI's when a launcher
    started several ranks, else a single process. ``timeout``: seconds a collective may wait
    (default: MINITRANSFORMER_MPI_TIMEOUT or 300)."""
    global _world
    if timeout is None:
        setting = os.environ.get(TIMEOUT_VARIABLE, "").strip()
        try:
            timeout = float(setting) if setting else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"{TIMEOUT_VARIABLE} is {setting!r}; expected a number of seconds") from None
    if not timeout > 0:
        raise ValueError(f"distributed.init: timeout must be a positive number of seconds, got {timeout!r}")
    if _world is None:
        size = launched_world_size()
        if size == 1:
            _world = World(timeout=timeout)
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise RuntimeError(f"mpiexec started {size} processes but mpi4py is not installed; "
                                   "pip install 'minitransformer[mpi]'") from None
            comm = MPI.COMM_WORLD
            _world = World(comm.Get_rank(), comm.Get_size(), comm, timeout)
    _world.timeout = timeout
    return _world


def rank() -> int:
    return init().rank


def world_size() -> int:
    return init().size


def exit(code: int) -> None:
    """Leave the process with ``code``. A failing rank of several leaves at once, without
    MPI_Finalize (which would wait for ranks that wait for this one); mpiexec then stops them."""
    if code and _world is not None and _world.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def error_prefix() -> str:
    """What an error line starts with on this rank: nothing on rank 0 or a single process;
    "rank r of N: " on the others, after a second's pause. An error every rank meets (a bad
    flag) is then printed once, by rank 0, whose exit ends the job during the pause."""
    size, rank = launched_world_size(), _launched_rank()
    if size == 1 or rank == 0:
        return ""
    time.sleep(1.0)
    return f"rank {rank} of {size}: "


def _launched_rank() -> int:
    """This process's rank as the launcher set it (read without MPI: errors may come first)."""
    for name in LAUNCHER_RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def own_random_stream(world: World):
    """A block in which this rank draws random numbers (dropout) from a stream of its own.

    Every rank must draw the same batches from the framework generator, but dropout on a
    rank's share of the rows would move it by a rank-dependent amount. So inside the block the
    generator is a stream seeded by (its current state, rank), and after the block it is put
    back as it was: every rank stays in step, without drawing from the shared stream (which
    keeps one process's batches where they were). With dropout, N ranks therefore train with
    other masks than one process does: equal in distribution, not in bits. Without dropout
    nothing is drawn inside the block and the runs are equal.
    """
    if world.size == 1:
        yield
        return
    shared = backend.generator("cpu")
    saved = shared.bit_generator.state
    shared.bit_generator.state = np.random.PCG64(np.random.SeedSequence([saved["state"]["state"], world.rank])).state
    try:
        yield
    finally:
        shared.bit_generator.state = saved


class DistributedDataParallel:
    """A model trained by every rank on its share of each batch (PyTorch's name).

        model = DistributedDataParallel(GPT(config), accumulation_steps=2)  # weights of rank 0
        for step in range(steps):
            x, y = data.get_batch(train_ids, B, T)      # the same global batch on every rank
            optimizer.zero_grad()
            for x_part, y_part, share in model.pieces(x, y, ignore_index=-1):  # GPT's ignore_index
                _, loss = model(x_part, y_part)
                (loss * share).backward()
            model.all_reduce_gradients()                 # the batch's gradient, on every rank
            optimizer.step()

    Run it with ``mpiexec -n N python script.py``; without mpiexec it is one process, and
    ``accumulation_steps`` alone still applies (gradient accumulation).
    """

    def __init__(self, module, accumulation_steps: int = 1, world: World | None = None,
                 bucket_bytes: int = BUCKET_BYTES):
        self.module, self.world, self.bucket_bytes = module, world or init(), bucket_bytes
        self.plan = self.world.plan(accumulation_steps)
        broadcast_parameters(self.module.parameters(), self.world)

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def pieces(self, *arrays, ignore_index: int | None = -100) -> list[tuple]:
        """This rank's micro-batches of the global batch and their shares (BatchPlan.pieces)."""
        self.plan.check_batch_size("DistributedDataParallel", len(arrays[0]))
        return self.plan.pieces(*arrays, ignore_index=ignore_index)

    def all_reduce_gradients(self) -> None:
        all_reduce_gradients(self.module.parameters(), self.world, self.bucket_bytes)


def broadcast_parameters(params, world: World | None = None, root: int = 0) -> None:
    """Every rank's parameters become ``root``'s."""
    (world or init()).broadcast([p.data for p in params], root)


def all_reduce_gradients(params, world: World | None = None, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Each parameter's gradient becomes its sum over the ranks. A parameter that no rank's
    pieces reached keeps no gradient (as on one process: the optimizer skips it); one that only
    some ranks reached counts zeros from the others."""
    world = world or init()
    if world.size == 1:
        return
    params = [p for p in params if p.requires_grad]
    reached = world.sum_numbers(*(p.grad is not None for p in params))
    params = [p for p, count in zip(params, reached) if count > 0]
    grads = [p.grad if p.grad is not None else backend.array_module(p.data).zeros_like(p.data) for p in params]
    for p, grad in zip(params, world.all_reduce(grads, bucket_bytes)):
        p.grad = grad
