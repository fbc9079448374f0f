"""Tests for minitransformer/data/bpe_training.py: the merges and their documented tie-break."""

from __future__ import annotations

from hypothesis import given, strategies as st

from minitransformer.data.bpe_training import learn_merges, merge_pair


def test_a_tie_goes_to_the_smallest_pair_of_ids():
    # "ab" and "cd" occur twice each: (97, 98) < (99, 100), so "ab" is learned first
    assert learn_merges({b"cd": 2, b"ab": 2}, 2) == [(97, 98), (99, 100)]
    # then "zz" (122, 122) ties with "aa"+"b" (256, 98): the left id decides, and a byte (122)
    # comes before any merged token (256 and up)
    assert learn_merges({b"aab": 3, b"zz": 3}, 3) == [(97, 97), (122, 122), (256, 98)]


@given(st.dictionaries(st.binary(min_size=1, max_size=6), st.integers(1, 5), max_size=12),
       st.integers(0, 20), st.randoms(use_true_random=False))
def test_merges_do_not_depend_on_the_order_of_the_words(word_counts, num_merges, rng):
    words = list(word_counts.items())
    rng.shuffle(words)
    assert learn_merges(dict(words), num_merges) == learn_merges(word_counts, num_merges)


def test_merge_pair_replaces_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_training_stops_when_no_pair_is_left():
    assert learn_merges({b"ab": 1}, 10) == [(97, 98)]
    assert learn_merges({b"a": 5}, 10) == []
