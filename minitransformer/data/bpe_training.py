"""Learning byte-pair-encoding merges from counted words (Sennrich et al. 2016).

    merges = learn_merges({b"the": 120, b" the": 300, ...}, num_merges=244)

Each step merges the most frequent adjacent pair of tokens across all words, counting each
word as often as it occurs. The result is deterministic: a tie between pairs of equal count
goes to the smallest pair of ids, compared as (left id, right id). Ids 0-255 are the bytes and
merge i makes id 256 + i, so the left token decides first (bytes before merged tokens, earlier
merges before later ones), then the right; the order of words in the text plays no part. (Hugging Face's
BpeTrainer also takes the smaller pair of ids on a tie, ``impl Ord for Merge`` in
tokenizers/src/models/bpe/trainer.rs, its ids numbering the characters by code point; GPT-2's
own trainer was never published.)

Efficient because text repeats itself: pairs are counted over the distinct words weighted by
their frequency, and after a merge only the words containing the merged pair are recounted. A
heap finds the most frequent pair.
"""

from __future__ import annotations

import heapq
from collections import defaultdict


def learn_merges(word_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Up to ``num_merges`` merges, in the order learned (fewer if the words run out of pairs)."""
    words = [list(word) for word in word_counts]
    counts = list(word_counts.values())

    pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    words_with_pair: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for w, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += counts[w]
            words_with_pair[pair].add(w)
    # Entries are (-count, pair): the smallest is the most frequent pair, ties going to the
    # smallest ids. A count that changes gets a new entry; outdated ones are skipped on pop.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -negative_count:
            continue  # an outdated entry
        new_id = 256 + len(merges)
        merges.append(pair)
        changed = set()
        for w in words_with_pair.pop(pair):
            word = words[w]
            merged = merge_pair(word, pair, new_id)
            if len(merged) == len(word):
                continue  # an earlier merge already took this pair apart
            for old_pair in zip(word, word[1:]):
                pair_counts[old_pair] -= counts[w]
                changed.add(old_pair)
            for new_pair in zip(merged, merged[1:]):
                pair_counts[new_pair] += counts[w]
                words_with_pair[new_pair].add(w)
                changed.add(new_pair)
            words[w] = merged
        for changed_pair in changed:
            if pair_counts[changed_pair] > 0:
                heapq.heappush(heap, (-pair_counts[changed_pair], changed_pair))
            else:
                del pair_counts[changed_pair]
                words_with_pair.pop(changed_pair, None)
    return merges


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with every occurrence of pair, scanning left to right, replaced by new_id."""
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged
