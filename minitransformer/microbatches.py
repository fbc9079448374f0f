"""One step's batch cut into pieces: N ranks (data parallelism) times K micro-batches
(gradient accumulation), each piece weighted so the pieces' gradients add up to the batch's.

A loss that averages over its counted targets (cross-entropy skips ``ignore_index``) is

    L = (1 / n) * sum over the batch's n counted targets of l_i

Cut the batch into pieces p with n_p counted targets each (n = sum of n_p). A piece's own loss
is the mean over its targets, L_p = (1 / n_p) * sum over p of l_i, so

    L = sum over pieces of (n_p / n) * L_p       share_p = n_p / n

Back-propagating ``share_p * L_p`` for every piece and adding the gradients (autograd adds into
``.grad``; MPI's all-reduce adds across ranks) gives exactly dL/dθ of the whole batch. Weighting
by rows instead (1/K each, nanoGPT's ``loss / gradient_accumulation_steps``) is right only when
every piece counts the same number of targets; with ``ignore_index`` (padding, masked tokens)
pieces count different numbers and equal weights would over-weight the sparse ones. A piece
that counts no target at all adds nothing and is skipped (its mean would be 0/0 = NaN).

Every rank cuts the same global batch the same way: the B rows go, in order, into N * K
contiguous pieces of B / (N * K) rows (sizes differ by one at most when B does not divide), and
rank r takes pieces r*K ... r*K + K - 1. One process with K = 2 and two processes with K = 1
therefore compute the same pieces, and the same command trains the same model on any N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """How one step's global batch is shared: ``world_size`` ranks, each taking its rows in
    ``accumulation_steps`` micro-batches; ``rank`` is this process."""

    accumulation_steps: int = 1
    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        for name in ("accumulation_steps", "world_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BatchPlan: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.world_size:
            raise ValueError(f"BatchPlan: rank must be in [0, {self.world_size}), got {self.rank!r}")

    @property
    def pieces_per_batch(self) -> int:
        return self.accumulation_steps * self.world_size

    def check_batch_size(self, command: str, batch_size: int) -> None:
        """A batch needs a row for every piece: ValueError naming ``command`` otherwise."""
        if batch_size < self.pieces_per_batch:
            raise ValueError(f"{command}: --batch-size {batch_size} is smaller than the {self.world_size} rank(s) x "
                             f"{self.accumulation_steps} micro-batch(es) that share it; use a batch of at least "
                             f"{self.pieces_per_batch} rows")

    def row_ranges(self, rows: int) -> list[tuple[int, int]]:
        """This rank's (start, stop) rows of a batch of ``rows``, one range per micro-batch."""
        bounds = [piece * rows // self.pieces_per_batch for piece in range(self.pieces_per_batch + 1)]
        first = self.rank * self.accumulation_steps
        return [(bounds[i], bounds[i + 1]) for i in range(first, first + self.accumulation_steps)]

    def pieces(self, *arrays, ignore_index: int | None = -100) -> list[tuple]:
        """This rank's micro-batches of the global batch ``arrays`` (all with the same rows; the
        last one holds the targets): a list of ``(*rows_of_each_array, share)``, where share is
        the piece's counted targets over the whole batch's (see the module docstring). Pieces
        that count no target are left out."""
        if not arrays:
            raise ValueError("BatchPlan.pieces: expected at least the targets array")
        rows = len(arrays[0])
        if any(len(array) != rows for array in arrays):
            raise ValueError(f"BatchPlan.pieces: the arrays hold different numbers of rows "
                             f"({[len(array) for array in arrays]}); expected one batch")
        total = counted_targets(arrays[-1], ignore_index)
        pieces = []
        for start, stop in self.row_ranges(rows):
            parts = tuple(array[start:stop] for array in arrays)
            count = counted_targets(parts[-1], ignore_index)
            if count:
                pieces.append((*parts, count / total))
        return pieces


def counted_targets(targets, ignore_index: int | None = -100) -> int:
    """How many entries of ``targets`` a mean loss averages over: all of them, less those equal
    to ``ignore_index`` for integer targets (class ids, token ids)."""
    targets = np.asarray(targets) if not hasattr(targets, "shape") else targets
    if ignore_index is not None and np.issubdtype(targets.dtype, np.integer):
        return int((targets != ignore_index).sum())
    return int(targets.size)
