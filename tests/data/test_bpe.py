"""Tests for minitransformer/data/bpe.py: applying merges, and GPT-2's byte stand-ins."""

from __future__ import annotations

from hypothesis import given, strategies as st

from minitransformer.data.bpe import apply_merges, bytes_to_unicode, unicode_to_bytes


def merge_naively(ids: list[int], merges: dict) -> list[int]:
    """The definition: while some adjacent pair has a merge, merge the one of lowest rank, the
    leftmost of equals; one occurrence at a time."""
    ids = list(ids)
    while True:
        candidates = [(merges[pair][0], i) for i, pair in enumerate(zip(ids, ids[1:])) if pair in merges]
        if not candidates:
            return ids
        _, i = min(candidates)
        ids[i:i + 2] = [merges[(ids[i], ids[i + 1])][1]]


# Any table, even one no trainer would write (a merge of a later token ranked before it).
tables = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12, unique=True).map(
    lambda pairs: {pair: (rank, 10 + rank) for rank, pair in enumerate(pairs)})


@given(st.lists(st.integers(0, 5), max_size=30), tables)
def test_apply_merges_is_the_lowest_rank_leftmost_first_definition(ids, merges):
    merges = {**merges, **{(10 + r, b): (r + 100, 30 + r) for (a, b), (r, _) in merges.items()}}
    assert apply_merges(ids, merges) == merge_naively(ids, merges)


def test_apply_merges_overlapping_pairs_merge_from_the_left():
    assert apply_merges([1, 1, 1], {(1, 1): (0, 9)}) == [9, 1]
    assert apply_merges([1, 1, 1, 1], {(1, 1): (0, 9), (9, 9): (1, 8)}) == [8]


def test_byte_stand_ins_are_printable_reversible_and_gpt2s():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert all(char.isprintable() and not char.isspace() for char in table.values())
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("a")] == "a"
    assert unicode_to_bytes() == {char: byte for byte, char in table.items()}
