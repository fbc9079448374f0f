"""Tests for minitransformer/data/batching.py: train/validation split and next-token batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minitransformer as mt
from minitransformer.data.batching import get_batch, train_val_split


@given(st.integers(0, 500), st.floats(0.0, 0.99))
def test_train_val_split_keeps_order_and_puts_the_tail_in_validation(n, val_fraction):
    ids = list(range(n))
    train, val = train_val_split(ids, val_fraction)
    assert train.dtype == val.dtype == np.int64
    assert len(val) == round(n * val_fraction)
    assert np.concatenate([train, val]).tolist() == ids


def test_train_val_split_defaults_to_the_last_tenth():
    train, val = train_val_split(np.arange(1000))
    assert (len(train), len(val)) == (900, 100)
    assert val[0] == 900


def test_train_val_split_rejects_bad_fractions_and_non_integer_data():
    with pytest.raises(ValueError, match=r"train_val_split: val_fraction must be in \[0, 1\), got 1.0"):
        train_val_split([1, 2, 3], 1.0)
    with pytest.raises(ValueError, match=r"train_val_split: expected a 1-D sequence of integer token ids, got shape \(2, 2\)"):
        train_val_split([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"got shape \(2,\) and dtype float64"):
        train_val_split([1.0, 2.0])


@given(st.integers(2, 300), st.integers(1, 8), st.integers(1, 32), st.integers(0, 2**32 - 1))
def test_targets_are_the_inputs_shifted_by_one(n, batch_size, block_size, seed):
    block_size = min(block_size, n - 1)
    data = np.arange(n) * 7 % 1000  # distinct-looking ids, so a wrong offset shows
    x, y = get_batch(data, batch_size, block_size, np.random.default_rng(seed))
    assert x.shape == y.shape == (batch_size, block_size)
    assert x.dtype == y.dtype == np.int64
    for row_x, row_y in zip(x, y):
        offset = int(np.flatnonzero(data == row_x[0])[0])
        assert row_x.tolist() == data[offset:offset + block_size].tolist()
        assert row_y.tolist() == data[offset + 1:offset + block_size + 1].tolist()


def test_a_window_exactly_as_long_as_the_data_fits():
    data = np.arange(9)
    x, y = get_batch(data, batch_size=3, block_size=8, rng=np.random.default_rng(0))
    assert (x == np.arange(8)).all() and (y == np.arange(1, 9)).all()


def test_every_offset_can_be_drawn():
    data = np.arange(12)
    x, _ = get_batch(data, batch_size=2000, block_size=4, rng=np.random.default_rng(0))
    assert sorted(set(x[:, 0].tolist())) == list(range(12 - 4))


def test_a_seeded_generator_gives_the_same_batches_and_its_state_resumes_them():
    data = np.arange(1000)
    rng = np.random.default_rng(42)
    get_batch(data, 4, 16, rng)
    saved_state = rng.bit_generator.state
    expected = [get_batch(data, 4, 16, rng) for _ in range(3)]

    resumed = np.random.default_rng()
    resumed.bit_generator.state = saved_state
    for x_expected, _ in expected:
        x, _ = get_batch(data, 4, 16, resumed)
        assert (x == x_expected).all()


def test_without_an_rng_the_framework_generator_is_used():
    data = np.arange(1000)
    mt.manual_seed(7)
    first, _ = get_batch(data, 4, 16)
    mt.manual_seed(7)
    again, _ = get_batch(data, 4, 16)
    assert (first == again).all()


def test_data_shorter_than_a_window_is_an_error():
    with pytest.raises(ValueError, match=r"get_batch: the data has 8 tokens, too few for one window of block_size \+ 1 = 9"):
        get_batch(np.arange(8), batch_size=2, block_size=8)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(data=np.zeros(10)), ValueError, r"get_batch: expected a 1-D array of integer token ids, got shape \(10,\) and dtype float64"),
        (dict(batch_size=0), ValueError, r"get_batch: batch_size must be a positive integer, got 0"),
        (dict(block_size=2.5), ValueError, r"get_batch: block_size must be a positive integer, got 2.5"),
        (dict(rng=np.random.RandomState(0)), TypeError, r"get_batch: rng must be a numpy.random.Generator, got RandomState"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, error, message):
    arguments = dict(data=np.arange(10), batch_size=2, block_size=4, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(error, match=message):
        get_batch(**arguments)
