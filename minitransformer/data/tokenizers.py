"""Tokenizers: text to a list of integer ids and back.

Two tokenizers, from the simplest to the one GPT-2 uses:

- ``CharTokenizer``: one id per character of the training text (nanoGPT's Shakespeare model).
  Small vocabulary, long sequences, and it cannot encode a character it never saw.
- ``ByteBPETokenizer``: byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2, Radford et
  al. 2019). It starts from the 256 byte values, so any string can be encoded, and learns
  merges of frequent adjacent pairs, so common words become single tokens. Special tokens
  such as "<|endoftext|>" stay whole; GPT-2's own vocab.json and merges.txt can be read.

Both save to and load from JSON; ``load_tokenizer(path)`` reads the ``kind`` field and returns
the right class. (A Hugging Face tokenizer.json is read by tokenizer_json.py.)

    tokenizer = ByteBPETokenizer.train(text, vocab_size=512, special_tokens=["<|endoftext|>"])
    ids = tokenizer.encode("Return the value.<|endoftext|>")   # [..., 511] ints in [0, 512)
    tokenizer.decode(ids)                                       # 'Return the value.<|endoftext|>'
    with open("big.txt", encoding="utf-8") as lines:
        for token_id in tokenizer.encode_iterable(lines): ...   # streaming, bounded memory
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from ..atomic import atomic_write_text
from ..files import MiB, read_json, read_text
from .bpe import Merges, apply_merges, pretokenize, unicode_to_bytes
from .bpe_training import learn_merges

# The newest version of the JSON layout: 1 for every tokenizer, 2 for a byte-level BPE with
# special tokens or its own ids. load() refuses a format its class does not read.
TOKENIZER_FORMAT = 2


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of the training text's
    characters, so id order follows Unicode code points."""

    kind = "char"
    formats = (1,)

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
        _write_json(path, {"kind": self.kind, "format": 1, "chars": self.chars})

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
    """Byte-level BPE. Every string is UTF-8 bytes, so anything can be encoded; learned merges
    of adjacent pairs make common words single tokens. Encoding cuts out the special tokens
    (whole, the longest where two start at one place), cuts the rest into GPT-2's pre-tokenized
    pieces, and applies the merges, earliest first, to each piece's bytes.

    Ids, for a trained tokenizer: 0-255 the bytes, 256 + i the i-th merge, then the special
    tokens. A tokenizer read with ``from_vocab_and_merges`` keeps the file's own numbering
    (GPT-2's "!" is id 0); ``vocab`` then lists the bytes of every id.
    """

    kind = "byte_bpe"
    formats = (1, 2)

    def __init__(self, merges: Iterable[tuple[int, int]], special_tokens: Mapping[str, int] | None = None,
                 vocab: Sequence[bytes] | None = None):
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.special_tokens = dict(special_tokens or {})
        self._own_numbering = vocab is not None
        if vocab is None:  # bytes, then one token per merge, then the special tokens
            self._token_bytes = [bytes([b]) for b in range(256)]
            merged_ids = range(256, 256 + len(self.merges))
            for new_id, (a, b) in zip(merged_ids, self.merges):
                if not (0 <= a < new_id and 0 <= b < new_id):
                    raise ValueError(f"ByteBPETokenizer: merge {new_id - 256} joins ({a}, {b}); expected ids "
                                     f"of earlier tokens, in [0, {new_id})")
                self._token_bytes.append(self._token_bytes[a] + self._token_bytes[b])
            self._check_special_ids(range(len(self._token_bytes), len(self._token_bytes) + len(self.special_tokens)))
            self._token_bytes += [token.encode("utf-8") for token in self.special_tokens]
        else:
            self._token_bytes = [bytes(token) for token in vocab]
            self._check_special_ids(range(len(self._token_bytes)))
            merged_ids = self._merged_ids_from_vocab()
        self._byte_ids = self._ids_of_bytes()
        self._merge_table: Merges = {}
        for rank, (pair, new_id) in enumerate(zip(self.merges, merged_ids)):
            self._merge_table.setdefault(pair, (rank, new_id))
        self._special_matcher = _longest_first(self.special_tokens)
        self._piece_cache: dict[str, list[int]] = {}

    def _check_special_ids(self, allowed: range) -> None:
        for token, token_id in self.special_tokens.items():
            if not (isinstance(token, str) and token and type(token_id) is int and token_id in allowed):
                raise ValueError(f"ByteBPETokenizer: special token {token!r} has id {token_id!r}; expected "
                                 f"a non-empty string with an id in [{allowed.start}, {allowed.stop})")
        if sorted(self.special_tokens.values()) != sorted(set(self.special_tokens.values())):
            raise ValueError(f"ByteBPETokenizer: two special tokens share an id in {self.special_tokens}")

    def _merged_ids_from_vocab(self) -> list[int]:
        """The id of each merge's result in the vocabulary; a merge may never make a special token."""
        special_ids = set(self.special_tokens.values())
        id_of = {}
        for token_id, token in enumerate(self._token_bytes):
            if token_id not in special_ids:
                id_of.setdefault(token, token_id)
        merged_ids = []
        for rank, (a, b) in enumerate(self.merges):
            if not (0 <= a < len(self._token_bytes) and 0 <= b < len(self._token_bytes)) or {a, b} & special_ids:
                raise ValueError(f"ByteBPETokenizer: merge {rank} joins ({a}, {b}); expected ids of "
                                 f"non-special tokens in [0, {len(self._token_bytes)})")
            joined = self._token_bytes[a] + self._token_bytes[b]
            if joined not in id_of:
                raise ValueError(f"ByteBPETokenizer: merge {rank} makes {joined!r}, which is not a "
                                 f"(non-special) token of the vocabulary")
            merged_ids.append(id_of[joined])
        return merged_ids

    def _ids_of_bytes(self) -> list[int]:
        special_ids = set(self.special_tokens.values())
        id_of = {}
        for token_id, token in enumerate(self._token_bytes):
            if len(token) == 1 and token_id not in special_ids:
                id_of.setdefault(token[0], token_id)
        missing = sorted(set(range(256)) - id_of.keys())
        if missing:
            raise ValueError(f"ByteBPETokenizer: the vocabulary has no token for the bytes {missing[:10]}; "
                             f"a byte-level vocabulary needs all 256")
        return [id_of[b] for b in range(256)]

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Sequence[str] = ()) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from text (bpe_training.py:
        the most frequent pair first, ties to the smallest pair of ids). Special tokens are cut
        out of the text first, so no merge learns from them or across them; they take the last
        ids. Stops early, with a smaller vocabulary, if the text runs out of pairs."""
        special_tokens = list(dict.fromkeys(special_tokens))
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise ValueError(f"ByteBPETokenizer.train: vocab_size must be an integer >= 256 (the byte "
                             f"alphabet) + {len(special_tokens)} special tokens, got {vocab_size!r}")
        matcher = _longest_first(special_tokens)
        segments = matcher.split(text)[::2] if matcher else [text]  # odd places: the special tokens
        word_counts = Counter(piece.encode("utf-8") for segment in segments for piece in pretokenize(segment))
        merges = learn_merges(word_counts, vocab_size - 256 - len(special_tokens))
        first_special = 256 + len(merges)
        return cls(merges, {token: first_special + i for i, token in enumerate(special_tokens)})

    @classmethod
    def from_vocab_and_merges(cls, vocab_path: str | Path, merges_path: str | Path,
                              special_tokens: Sequence[str] = ()) -> ByteBPETokenizer:
        """A tokenizer from GPT-2's files, keeping their ids: vocab.json maps each token, written
        in GPT-2's printable stand-ins for bytes ("Ġthe"), to its id; merges.txt lists the
        merges in order, "Ġ t" per line, after a "#version" line. ``special_tokens`` names the
        vocabulary's entries to keep whole, such as "<|endoftext|>"."""
        vocab = read_json(vocab_path, "ByteBPETokenizer.from_vocab_and_merges", max_bytes=256 * MiB)
        where = f"ByteBPETokenizer.from_vocab_and_merges: {vocab_path}"
        if not (isinstance(vocab, dict) and all(isinstance(i, int) for i in vocab.values())
                and sorted(vocab.values()) == list(range(len(vocab)))):
            raise ValueError(f"{where}: expected an object of token -> id with the ids 0..N-1 once each")
        char_byte = unicode_to_bytes()
        token_bytes: list[bytes] = [b""] * len(vocab)
        for token, token_id in vocab.items():
            if token in special_tokens:
                token_bytes[token_id] = token.encode("utf-8")
            elif all(char in char_byte for char in token):
                token_bytes[token_id] = bytes(char_byte[char] for char in token)
            else:
                raise ValueError(f"{where}: token {token!r} (id {token_id}) has characters that stand for no byte")
        missing = [token for token in special_tokens if token not in vocab]
        if missing:
            raise ValueError(f"{where}: the special tokens {missing} are not in the vocabulary")
        lines = read_text(merges_path, "ByteBPETokenizer.from_vocab_and_merges", max_bytes=256 * MiB).splitlines()
        merges = []
        for number, line in enumerate(lines, start=1):
            if (number == 1 and line.startswith("#version")) or not line:
                continue
            pair = line.split(" ")
            if len(pair) != 2 or pair[0] not in vocab or pair[1] not in vocab:
                raise ValueError(f"ByteBPETokenizer.from_vocab_and_merges: {merges_path} line {number} is "
                                 f"{line!r:.60}; expected two tokens of the vocabulary")
            merges.append((vocab[pair[0]], vocab[pair[1]]))
        return cls(merges, {token: vocab[token] for token in special_tokens}, token_bytes)

    @property
    def vocab_size(self) -> int:
        return len(self._token_bytes)

    def encode(self, text: str) -> list[int]:
        """The token ids of text; every string can be encoded, and decode(encode(s)) == s.
        A special token in the text is always its own id, as in Hugging Face ``tokenizers``."""
        ids: list[int] = []
        for segment in self._special_matcher.split(text) if self._special_matcher else [text]:
            if segment in self.special_tokens:
                ids.append(self.special_tokens[segment])
            else:
                for piece in pretokenize(segment):
                    ids.extend(self._encode_piece(piece))
        return ids

    def _encode_piece(self, piece: str) -> list[int]:
        piece_ids = self._piece_cache.get(piece)
        if piece_ids is None:
            try:
                data = piece.encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate, e.g. from errors="surrogateescape"
                raise ValueError(f"ByteBPETokenizer.encode: the text holds the lone surrogate "
                                 f"U+{ord(error.object[error.start]):04X}; expected valid Unicode") from None
            piece_ids = apply_merges([self._byte_ids[b] for b in data], self._merge_table)
            if len(self._piece_cache) < 100_000:  # bounded: text is mostly repeated words
                self._piece_cache[piece] = piece_ids
        return piece_ids

    def encode_iterable(self, texts: Iterable[str], chunk_chars: int = 1 << 16) -> Iterator[int]:
        """The ids of the concatenated texts (the lines of an open file, say), yielded as the
        text arrives, equal to ``encode("".join(texts))``, holding about ``chunk_chars``
        characters at a time (more only while one pre-tokenized piece is longer).

        Text is encoded only once more text cannot change it. A special token may still grow
        or begin in the last ``longest special - 1`` characters, so only text before
        ``settled`` counts. Up to the last special token there, all is final. After it, a piece
        is final once two more pieces follow it before ``settled``: deciding where a piece ends,
        GPT-2's pattern never reads past the next two (an apostrophe is "'" alone or the start
        of "'re", which the two characters after it decide; a whitespace run is cut into at
        most two pieces). Pieces are encoded as found, never cut out and pre-tokenized again,
        since a piece's end depends on what follows it ("\\n\\n" is one piece at the end of a
        text, two before a letter)."""
        longest_special = max(map(len, self.special_tokens), default=1)
        buffer = ""
        for text in texts:
            buffer += text
            if len(buffer) < chunk_chars:
                continue
            settled = len(buffer) - longest_special + 1
            done = 0
            if self._special_matcher:
                for match in self._special_matcher.finditer(buffer):
                    if match.start() < settled:
                        done = match.end()
            yield from self.encode(buffer[:done])
            pieces = pretokenize(buffer[done:])
            emitted, end = 0, done  # pieces[:emitted] are final; they end at `end`
            position = done
            for index, piece in enumerate(pieces):
                position += len(piece)
                if position > settled:
                    break
                if index >= 2:
                    emitted, end = index - 1, end + len(pieces[index - 2])
            for piece in pieces[:emitted]:
                yield from self._encode_piece(piece)
            buffer = buffer[end:]
        yield from self.encode(buffer)

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
        """Write the merges as JSON (atomically: a temporary file, then a rename). A tokenizer
        with special tokens or its own numbering writes format 2, which older versions refuse
        rather than misread; a plain one writes format 1 as before."""
        payload = {"kind": self.kind, "format": 1, "merges": self.merges}
        if self.special_tokens or self._own_numbering:
            payload.update(format=2, special_tokens=self.special_tokens)
        if self._own_numbering:
            payload["vocab"] = [token.hex() for token in self._token_bytes]
        _write_json(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        """Read a tokenizer written by ``save``; ValueError for a file of another kind or format."""
        payload = _read_json(path, cls.kind)
        merges = _field(path, payload, "merges", list)
        for index, pair in enumerate(merges):
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)):
                raise ValueError(f"load tokenizer {path}: merge {index} is {pair!r}; expected a pair of integer ids")
        if payload["format"] == 1:
            return cls(merges)
        special_tokens = _field(path, payload, "special_tokens", dict)
        vocab = payload.get("vocab")
        if vocab is not None:
            try:
                vocab = [bytes.fromhex(token) for token in vocab]
            except (TypeError, ValueError):
                raise ValueError(f"load tokenizer {path}: 'vocab' must be a list of hexadecimal strings") from None
        try:
            return cls(merges, special_tokens, vocab)
        except ValueError as error:
            raise ValueError(f"load tokenizer {path}: {error}") from None

    def __repr__(self) -> str:
        return f"ByteBPETokenizer(vocab_size={self.vocab_size}, special_tokens={len(self.special_tokens)})"


TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, ByteBPETokenizer)}


def load_tokenizer(path: str | Path) -> CharTokenizer | ByteBPETokenizer:
    """Load a saved tokenizer of any kind, choosing the class by the file's ``kind`` field."""
    kind = _read_json(path, None)["kind"]
    return TOKENIZERS[kind].load(path)


def _longest_first(tokens: Iterable[str]) -> re.Pattern | None:
    """A pattern that finds the tokens, the longest where two start at one place, and keeps
    them when used with ``split`` (the capturing group)."""
    tokens = sorted(set(tokens), key=lambda token: (-len(token), token))
    return re.compile("(" + "|".join(map(re.escape, tokens)) + ")") if tokens else None


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
    formats = TOKENIZERS[kind].formats
    if payload.get("format") not in formats:
        raise ValueError(f"{what}: format {payload.get('format')!r}, but this version of minitransformer "
                         f"reads {kind!r} tokenizers of format {' or '.join(map(str, formats))}")
    return payload
