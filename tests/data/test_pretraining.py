"""BERT's pretraining data (minitransformer/data/pretraining.py): the masking rule and the
next-sentence pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitransformer.data.pretraining import (IGNORE_INDEX, IS_NEXT, MIN_DISTANCE, NOT_NEXT, SentencePairs,
                                              mask_tokens, split_paragraphs, truncate_pair)
from minitransformer.data.wordpiece import WordPieceTokenizer

SPECIAL = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK]
MASK_ID, VOCAB = 4, 40


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` is within ``sigmas`` standard deviations of a Binomial(n, p)'s mean: a correct
    sampler misses this by chance with probability below 1e-6 per check."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def random_ids(rng, shape=(64, 100)) -> np.ndarray:
    ids = rng.integers(len(SPECIAL), VOCAB, size=shape)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    ids[rng.random(shape) < 0.1] = 0  # padding sprinkled in
    return ids


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=10)
def test_masking_proportions_follow_the_15_80_10_10_rule(seed):
    rng = np.random.default_rng(seed)
    ids = random_ids(rng)
    masked, labels = mask_tokens(ids, rng, MASK_ID, SPECIAL, VOCAB)
    ordinary = ~np.isin(ids, SPECIAL)
    chosen = labels != IGNORE_INDEX
    n_chosen = int(chosen.sum())
    assert within(n_chosen, int(ordinary.sum()), 0.15)
    # of the chosen: 80% [MASK]; 10% a random ordinary token (which is the original one with
    # probability 1/K); 10% kept
    K = VOCAB - len(SPECIAL)
    became_mask = int((masked[chosen] == MASK_ID).sum())
    changed = int(((masked != ids) & (masked != MASK_ID))[chosen].sum())
    kept = int((masked == ids)[chosen].sum())
    assert within(became_mask, n_chosen, 0.8)
    assert within(changed, n_chosen, 0.1 * (1 - 1 / K))
    assert within(kept, n_chosen, 0.1 + 0.1 / K)
    assert became_mask + changed + kept == n_chosen


@given(seed=st.integers(0, 2**32 - 1), probability=st.floats(0.05, 0.95))
@settings(max_examples=20)
def test_special_tokens_are_never_chosen_and_labels_hold_the_originals(seed, probability):
    rng = np.random.default_rng(seed)
    ids = random_ids(rng, (8, 30))
    masked, labels = mask_tokens(ids, rng, MASK_ID, SPECIAL, VOCAB, probability)
    special = np.isin(ids, SPECIAL)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any()
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(masked[~chosen], ids[~chosen])  # unchosen positions are untouched
    replaced = chosen & (masked != MASK_ID)
    assert not np.isin(masked[replaced], SPECIAL).any()  # a random token is never a special one
    assert masked.dtype == labels.dtype == np.int64


def test_masking_is_deterministic_given_a_generator():
    ids = random_ids(np.random.default_rng(0))
    first = mask_tokens(ids, np.random.default_rng(7), MASK_ID, SPECIAL, VOCAB)
    second = mask_tokens(ids, np.random.default_rng(7), MASK_ID, SPECIAL, VOCAB)
    third = mask_tokens(ids, np.random.default_rng(8), MASK_ID, SPECIAL, VOCAB)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], third[1])


@pytest.mark.parametrize("ids, probability, fragment", [
    (np.zeros(5, dtype=np.int64), 0.15, "expected (B, T) integer token ids"),
    (np.zeros((2, 5)), 0.15, "expected (B, T) integer token ids"),
    (np.zeros((2, 5), dtype=np.int64), 1.0, "probability must be in (0, 1)"),
])
def test_masking_bad_input_is_one_line(ids, probability, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        mask_tokens(ids, np.random.default_rng(0), MASK_ID, SPECIAL, VOCAB, probability)


# --- next-sentence pairs -------------------------------------------------------------------------

N_SEGMENTS = 40
FIRST_ID = 10  # segment k is made of the id FIRST_ID + k, so a token tells its segment


def numbered_pairs(lengths=None) -> SentencePairs:
    lengths = lengths or [3 + k % 7 for k in range(N_SEGMENTS)]
    return SentencePairs([[FIRST_ID + k] * n for k, n in enumerate(lengths)], cls_id=2, sep_id=3, pad_id=0)


def test_pairs_are_cls_a_sep_b_sep_with_segment_types_and_a_padding_mask():
    ids, types, mask, labels = numbered_pairs().batch(64, 12, np.random.default_rng(0))
    assert ids.shape == types.shape == mask.shape == (64, 12) and labels.shape == (64,)
    for row in range(64):
        length = int(mask[row].sum())
        assert (mask[row, :length] == 1).all() and (ids[row, length:] == 0).all()
        sequence = ids[row, :length]
        separators = np.flatnonzero(sequence == 3)
        assert sequence[0] == 2 and len(separators) == 2 and separators[1] == length - 1
        first_sep = separators[0]
        np.testing.assert_array_equal(types[row, :first_sep + 1], 0)
        np.testing.assert_array_equal(types[row, first_sep + 1:length], 1)
        assert (types[row, length:] == 0).all()


def test_is_next_pairs_hold_a_segment_and_its_successor_not_next_pairs_a_distant_one():
    ids, _, mask, labels = numbered_pairs().batch(400, 12, np.random.default_rng(1))
    assert within(int((labels == IS_NEXT).sum()), 400, 0.5)
    for row in range(400):
        sequence = ids[row, :int(mask[row].sum())]
        separator = int(np.flatnonzero(sequence == 3)[0])
        a_segments = set(sequence[1:separator] - FIRST_ID)
        b_segments = set(sequence[separator + 1:-1] - FIRST_ID)
        assert len(a_segments) == len(b_segments) == 1  # A and B are each one segment
        a, b = a_segments.pop(), b_segments.pop()
        if labels[row] == IS_NEXT:
            assert b == a + 1
        else:
            assert labels[row] == NOT_NEXT and abs(b - a) > MIN_DISTANCE


def test_random_segments_reach_both_ends_of_the_corpus():
    pairs = numbered_pairs()
    others = {pairs.pair(N_SEGMENTS // 2, np.random.default_rng(seed))[1][0] - FIRST_ID for seed in range(400)}
    assert 0 in others and N_SEGMENTS - 1 in others
    assert others.isdisjoint(range(N_SEGMENTS // 2 - MIN_DISTANCE, N_SEGMENTS // 2)) and N_SEGMENTS // 2 not in others


@given(first=st.lists(st.integers(5, 99), max_size=30), second=st.lists(st.integers(5, 99), max_size=30),
       budget=st.integers(0, 40))
def test_truncate_pair_keeps_the_tokens_next_to_the_boundary(first, second, budget):
    a, b = truncate_pair(first, second, budget)
    assert len(a) + len(b) == min(budget, len(first) + len(second))
    assert a == (first[len(first) - len(a):] if a else [])  # A keeps its end
    assert b == second[:len(b)]  # B keeps its start
    assert abs(len(a) - len(b)) <= 1 or len(a) == len(first) or len(b) == len(second)  # the longer is cut


def test_long_segments_are_cut_to_block_size():
    ids, _, mask, _ = numbered_pairs([50] * N_SEGMENTS).batch(8, 16, np.random.default_rng(0))
    assert (mask.sum(axis=1) == 16).all()


def test_split_holds_out_the_last_paragraphs():
    train, val = numbered_pairs().split(0.25)
    assert len(train.segments) + len(val.segments) == N_SEGMENTS
    assert val.segments[-1][0] == FIRST_ID + N_SEGMENTS - 1 and train.segments[0][0] == FIRST_ID


def test_pairs_from_text_split_at_blank_lines():
    text = "\n\n".join(f"Paragraph number {k}.\nIts second line." for k in range(N_SEGMENTS)) + "\n\n  \n\n"
    assert len(split_paragraphs(text)) == N_SEGMENTS
    tokenizer = WordPieceTokenizer.train_characters(text)
    pairs = SentencePairs.from_text(text, tokenizer)
    assert len(pairs.segments) == N_SEGMENTS
    assert tokenizer.decode(pairs.segments[3]) == "paragraph number 3 . its second line ."


def test_too_few_paragraphs_is_one_line():
    with pytest.raises(ValueError, match=r"the text has 3 paragraphs; next-sentence prediction needs at least"):
        SentencePairs([[5], [6], [7]], 2, 3, 0)


def test_character_vocabulary_has_the_special_tokens_and_both_forms_of_each_character():
    tokenizer = WordPieceTokenizer.train_characters("Abc abc, cab. Zz xz cab", min_count=2)
    assert list(tokenizer.vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"a", "##b", "##c", "c", "##a", "##z"} <= set(tokenizer.vocab)
    assert "z" not in tokenizer.vocab  # once at a word's start: below min_count
    assert tokenizer.tokenize("cab zz") == ["c", "##a", "##b", "[UNK]"]
    assert tokenizer.mask_id == 4 and tokenizer.special_ids == [0, 1, 2, 3, 4]
