"""Tokenizers: text to a list of integer ids and back.

Two tokenizers, from the simplest to the one GPT-2 uses:

- ``CharTokenizer``: one id per character of the training text (nanoGPT's Shakespeare model).
  Small vocabulary, long sequences, and it cannot encode a character it never saw.
- ``ByteBPETokenizer``: byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2, Radford et
  al. 2019). It starts from the 256 byte values, so any string can be encoded, and learns
  merges of frequent adjacent pairs, so common words become single tokens.

Both save to and load from JSON; ``load_tokenizer(path)`` reads the ``kind`` field and returns
the right class.

    tokenizer = ByteBPETokenizer.train(text, vocab_size=512)
    ids = tokenizer.encode("Return the value.")   # [..] ints in [0, 512)
    tokenizer.decode(ids)                          # 'Return the value.'
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_write_text
from ..files import MiB, read_json

# The version of the JSON layout; load() refuses files written in another one.
TOKENIZER_FORMAT = 1

# GPT-2's pre-tokenization, with the standard library's ``re`` (no \p{L}): English
# contractions, a letter run, a digit run, or a run of other symbols, each with at most one
# leading space; then whitespace. BPE merges never cross these pieces, so " the" is learned
# once instead of once per neighbouring word. The alternatives cover every character, so the
# pieces join back to the text exactly.
PRETOKENIZE = re.compile(
    r"""'(?:[sdmt]|ll|ve|re)"""   # 's 'd 'm 't 'll 've 're
    r"""| ?[^\W\d_]+"""           # letters (\w without digits and underscore)
    r"""| ?\d+"""                 # digits
    r"""| ?(?:[^\s\w]|_)+"""      # punctuation and symbols, underscore included
    r"""|\s+(?!\S)"""             # whitespace, leaving the last space to the next word
    r"""|\s+"""
)


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of the training text's
    characters, so id order follows Unicode code points."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = list(chars)
        bad = [c for c in self.chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"CharTokenizer: vocabulary entries must be single characters, got {bad[:5]!r}")
        if len(set(self.chars)) != len(self.chars):
            duplicates = sorted(c for c, n in Counter(self.chars).items() if n > 1)
            raise ValueError(f"CharTokenizer: vocabulary has duplicate characters {duplicates!r}")
        if not self.chars:
            raise ValueError("CharTokenizer: the vocabulary is empty; expected at least one character")
        self._id_of = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is every distinct character of text, sorted."""
        if not text:
            raise ValueError("CharTokenizer.train: the text is empty; expected some characters")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of each character; ValueError listing the characters not in the vocabulary."""
        try:
            return [self._id_of[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - self._id_of.keys())
            shown = ", ".join(repr(c) for c in unknown[:20]) + (", ..." if len(unknown) > 20 else "")
            raise ValueError(
                f"CharTokenizer.encode: {len(unknown)} character(s) not in the vocabulary of "
                f"{self.vocab_size} characters from the training text: {shown}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of these ids; ValueError for an id outside [0, vocab_size)."""
        ids = [int(i) for i in ids]
        _check_ids("CharTokenizer.decode", ids, self.vocab_size)
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (atomically: a temporary file, then a rename)."""
        _write_json(path, {"kind": self.kind, "format": TOKENIZER_FORMAT, "chars": self.chars})

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by ``save``; ValueError for a file of another kind or format."""
        chars = _field(path, _read_json(path, cls.kind), "chars", list)
        if chars != sorted(chars):  # train() sorts them: any other order maps ids to the wrong text
            raise ValueError(f"load tokenizer {path}: 'chars' must be in sorted order, as CharTokenizer.train writes it")
        return cls(chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class ByteBPETokenizer:
    """Byte-level BPE: ids 0-255 are the bytes, id 256 + i is the i-th learned merge of a pair
    of ids. Encoding a string applies the merges, earliest first, to the UTF-8 bytes of each
    pre-tokenized piece; decoding concatenates the bytes of the ids."""

    kind = "byte_bpe"

    def __init__(self, merges: Iterable[tuple[int, int]]):
        self.merges = [(int(a), int(b)) for a, b in merges]
        self._token_bytes = [bytes([b]) for b in range(256)]
        for new_id, (a, b) in enumerate(self.merges, start=256):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(
                    f"ByteBPETokenizer: merge {new_id - 256} joins ({a}, {b}); expected ids of "
                    f"earlier tokens, in [0, {new_id})"
                )
            self._token_bytes.append(self._token_bytes[a] + self._token_bytes[b])
        self._rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self._piece_cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256`` merges from text: each step merges the most frequent
        adjacent pair of tokens (ties: the smallest pair of ids), as in Sennrich et al. 2016.
        Stops early, with a smaller vocabulary, if the text runs out of pairs.

        Efficient because text repeats itself: pairs are counted over the distinct
        pre-tokenized pieces weighted by their frequency, and after a merge only the pieces
        containing the merged pair are recounted. A heap finds the most frequent pair.
        """
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(
                f"ByteBPETokenizer.train: vocab_size must be an integer >= 256 (the byte "
                f"alphabet), got {vocab_size!r}"
            )
        piece_counts = Counter(PRETOKENIZE.findall(text))
        words = [list(piece.encode("utf-8")) for piece in piece_counts]
        counts = list(piece_counts.values())

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
        while len(merges) < vocab_size - 256 and heap:
            negative_count, pair = heapq.heappop(heap)
            if pair_counts.get(pair) != -negative_count:
                continue  # an outdated entry
            new_id = 256 + len(merges)
            merges.append(pair)
            changed = set()
            for w in words_with_pair.pop(pair):
                word = words[w]
                merged = _merge_pair(word, pair, new_id)
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
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def encode(self, text: str) -> list[int]:
        """The token ids of text; every string can be encoded, and decode(encode(s)) == s."""
        ids: list[int] = []
        for piece in PRETOKENIZE.findall(text):
            piece_ids = self._piece_cache.get(piece)
            if piece_ids is None:
                piece_ids = self._encode_piece(piece)
                if len(self._piece_cache) < 100_000:  # bounded: text is mostly repeated words
                    self._piece_cache[piece] = piece_ids
            ids.extend(piece_ids)
        return ids

    def _encode_piece(self, piece: str) -> list[int]:
        ids = list(piece.encode("utf-8"))
        while len(ids) >= 2:
            # Apply the earliest-learned merge present, as training did, until none applies.
            pair = min(zip(ids, ids[1:]), key=lambda p: self._rank.get(p, len(self.merges)))
            if pair not in self._rank:
                break
            ids = _merge_pair(ids, pair, 256 + self._rank[pair])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of these ids. Bytes that are not valid UTF-8 (a model may sample half a
        character) become U+FFFD, as in GPT-2; ValueError for an id outside [0, vocab_size)."""
        ids = [int(i) for i in ids]
        _check_ids("ByteBPETokenizer.decode", ids, self.vocab_size)
        return b"".join(self._token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (to look at what the merges learned)."""
        _check_ids("ByteBPETokenizer.token_bytes", [token_id], self.vocab_size)
        return self._token_bytes[token_id]

    def save(self, path: str | Path) -> None:
        """Write the merges as JSON (atomically: a temporary file, then a rename)."""
        _write_json(path, {"kind": self.kind, "format": TOKENIZER_FORMAT, "merges": self.merges})

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        """Read a tokenizer written by ``save``; ValueError for a file of another kind or format."""
        merges = _field(path, _read_json(path, cls.kind), "merges", list)
        for index, pair in enumerate(merges):
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)):
                raise ValueError(f"load tokenizer {path}: merge {index} is {pair!r}; expected a pair of integer ids")
        return cls(merges)

    def __repr__(self) -> str:
        return f"ByteBPETokenizer(vocab_size={self.vocab_size})"


TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, ByteBPETokenizer)}


def load_tokenizer(path: str | Path) -> CharTokenizer | ByteBPETokenizer:
    """Load a saved tokenizer of any kind, choosing the class by the file's ``kind`` field."""
    kind = _read_json(path, None)["kind"]
    return TOKENIZERS[kind].load(path)


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
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


def _check_ids(what: str, ids: list[int], vocab_size: int) -> None:
    bad = sorted({i for i in ids if not 0 <= i < vocab_size})
    if bad:
        raise ValueError(f"{what}: ids {bad[:10]} are outside the vocabulary [0, {vocab_size})")


def _write_json(path: str | Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False))


def _field(path, payload: dict, name: str, kind: type):
    value = payload.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"load tokenizer {path}: {name!r} must be a JSON {kind.__name__}, got {value!r:.80}")
    return value


def _read_json(path: str | Path, expected_kind: str | None) -> dict:
    """The saved tokenizer's fields, after checking its kind (if given) and format."""
    path = Path(path)
    what = f"load tokenizer {path}"
    payload = read_json(path, "load tokenizer", max_bytes=64 * MiB)
    kind = payload.get("kind") if isinstance(payload, dict) else None
    if kind not in TOKENIZERS:
        raise ValueError(f"{what}: kind {kind!r} is not a tokenizer; expected one of {sorted(TOKENIZERS)}")
    if expected_kind is not None and kind != expected_kind:
        raise ValueError(f"{what}: the file holds a {kind!r} tokenizer, expected {expected_kind!r}")
    if payload.get("format") != TOKENIZER_FORMAT:
        raise ValueError(
            f"{what}: format {payload.get('format')!r}, but this version of minitransformer "
            f"reads format {TOKENIZER_FORMAT}"
        )
    return payload
