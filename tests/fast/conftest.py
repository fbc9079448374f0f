"""Fixtures of the fast layer's tests."""

from __future__ import annotations

import pytest

import minitransformer as mt
from minitransformer.fast.cpu import attention, engine, parallel


def cut_into_tiny_blocks(monkeypatch) -> int:
    """Blocks of 64 numbers (and attention's queries in chunks of a few), threads for any size
    of work, 3 threads; returns the thread count to restore."""
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 0)
    monkeypatch.setattr(engine, "MIN_PARALLEL_ELEMENTS", 0)
    monkeypatch.setattr(attention, "CHUNK_SCORES", 64)
    previous = mt.get_num_threads()
    mt.set_num_threads(3)
    return previous


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Every op of the fast layer cut into many blocks, on 3 threads."""
    previous = cut_into_tiny_blocks(monkeypatch)
    yield
    mt.set_num_threads(previous)


@pytest.fixture(params=["one block", "many blocks on 3 threads"])
def blocks(request, monkeypatch):
    """Run a comparison in one block, and again cut into many blocks on three threads."""
    if request.param == "one block":
        yield
        return
    previous = cut_into_tiny_blocks(monkeypatch)
    yield
    mt.set_num_threads(previous)
