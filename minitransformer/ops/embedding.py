"""Embedding lookup: a gather of rows, whose gradient is a scatter-add."""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module, scatter_add
from ..dispatch import dispatchable


@dispatchable
def add_rows_at(table, ids, rows) -> None:
    """table[ids[i]] += rows[i] for every i, in place, a repeated id adding all its rows.
    table (V, C), ids (N,) integers, rows (N, C); fast version: fast/cpu/embedding.py."""
    scatter_add(table, ids, rows)


class Embedding(Function):
    """x_i = E[w_i]   (F15: the embedding of token id w_i is row w_i of the table E (V, C))

    dL/dE[v] = sum of dL/dx_i over every position i whose id is v: a token that appears three
    times in the batch collects three gradients (a scatter-add; plain assignment keeps one).
    """

    def forward(self, weight, ids):
        self.save_for_backward(ids)
        self.table_shape = weight.shape
        return weight[ids]  # (*ids.shape, C)

    def backward(self, grad):
        (ids,) = self.saved
        grad_weight = array_module(grad).zeros(self.table_shape, dtype=grad.dtype)  # (V, C)
        add_rows_at(grad_weight, ids.reshape(-1), grad.reshape(-1, self.table_shape[1]))
        return grad_weight
