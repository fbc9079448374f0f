"""The two pieces every byte-level BPE shares: applying learned merges to a word, and GPT-2's
table from bytes to printable characters.

Both ``ByteBPETokenizer`` (our own files) and the BPE model of a Hugging Face tokenizer.json
encode a pre-tokenized piece the same way: start from one id per byte (or character), then
merge adjacent pairs in the order the merges were learned. ``apply_merges`` is that loop.
"""

from __future__ import annotations

import functools
import heapq

# A merge table: (left id, right id) -> (rank, id of the merged token). Rank 0 was learned first.
Merges = dict[tuple[int, int], tuple[int, int]]


def apply_merges(ids: list[int], merges: Merges) -> list[int]:
    """The ids after repeatedly merging the adjacent pair of lowest rank (the leftmost one when
    the same pair occurs twice) until no pair of the table is left.

    This is the order training learned the merges in, and the algorithm of Hugging Face
    ``tokenizers`` (``Word::merge_all`` in tokenizers/src/models/bpe/word.rs): a heap of
    candidate merges keyed by (rank, position), the ids kept as a linked list so a merge costs
    O(log n) rather than rebuilding the list. A heap entry whose pair has changed since it was
    pushed is outdated and skipped when popped.
    """
    n = len(ids)
    if n < 2:
        return list(ids)
    symbols = list(ids)
    next_of = list(range(1, n + 1))   # next_of[i] == n: no symbol after i
    prev_of = list(range(-1, n - 1))  # prev_of[i] == -1: no symbol before i
    alive = [True] * n
    heap = []  # (rank, position of the pair's left symbol, id of the merged token)
    for position, pair in enumerate(zip(ids, ids[1:])):
        if pair in merges:
            rank, new_id = merges[pair]
            heap.append((rank, position, new_id))
    heapq.heapify(heap)
    while heap:
        rank, position, new_id = heapq.heappop(heap)
        right = next_of[position]
        if not alive[position] or right == n:
            continue
        merge = merges.get((symbols[position], symbols[right]))
        if merge is None or merge[1] != new_id:
            continue  # outdated: one of the two symbols was merged with something else
        symbols[position] = new_id
        alive[right] = False
        next_of[position] = next_of[right]
        if next_of[right] < n:
            prev_of[next_of[right]] = position
        # The merged symbol forms new pairs with its neighbours.
        left = prev_of[position]
        if left >= 0 and (symbols[left], new_id) in merges:
            left_rank, left_new_id = merges[(symbols[left], new_id)]
            heapq.heappush(heap, (left_rank, left, left_new_id))
        after = next_of[position]
        if after < n and (new_id, symbols[after]) in merges:
            right_rank, right_new_id = merges[(new_id, symbols[after])]
            heapq.heappush(heap, (right_rank, position, right_new_id))
    return [symbol for symbol, keep in zip(symbols, alive) if keep]


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Vocabulary files store tokens as text, so a token holding a space, a newline or half of a
    UTF-8 character needs a printable stand-in for each byte. The printable Latin-1 bytes map
    to themselves ("a" -> "a"); the other 68 (control characters, space, ...) map in order to
    U+0100 and up, which is why GPT-2's vocabulary shows a leading space as "Ġ" (U+0120 = 256 +
    32) and a newline as "Ċ". (Radford et al. 2019, encoder.py of openai/gpt-2.)
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of ``bytes_to_unicode``."""
    return {char: byte for byte, char in bytes_to_unicode().items()}
