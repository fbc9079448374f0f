"""Reading a Hugging Face ``tokenizer.json``: the tokenizer of GPT-2, Llama 3, Qwen2, SmolLM2,
Mistral and most published models, with the same ids as the ``tokenizers`` library.

    tokenizer = load_tokenizer_json("path/to/model")      # the folder or the file itself
    ids = tokenizer.encode("Hello, world!")                 # BOS included if the file adds one
    tokenizer.decode(ids, skip_special_tokens=True)         # 'Hello, world!'

What ``encode`` does, in the order of ``tokenizers`` (AddedVocabulary::extract_and_normalize,
then Tokenizer::encode_single_sequence):

1. Added tokens that are matched on the raw text ("normalized": false, every special token such
   as "<|begin_of_text|>") are cut out first, the longest first where two start at one place.
2. The normalizer runs on each remaining piece, then the added tokens matched on normalized
   text are cut out of it.
3. The pre-tokenizer cuts each piece into words; the BPE model turns each word into ids.
4. With ``add_special_tokens`` the post-processor adds its tokens (Llama 3's BOS).

The steps around the model live in tokenizer_pipeline.py. Not implemented: the "truncation"
and "padding" settings (a caller cuts or pads the ids), BPE dropout, and models other than BPE
(WordPiece has its own class, wordpiece.py; Unigram is not read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ..files import MiB, read_json
from .bpe import Merges, apply_merges
from .tokenizer_pipeline import (
    Piece, build_decoder, build_normalizer, build_post_processor, build_pre_tokenizer,
)
from .unicode_regex import is_white_space

MAX_FILE_BYTES = 256 * MiB  # Llama 3's tokenizer.json is 9 MB; the largest published ones ~35 MB


class AddedToken(NamedTuple):
    """One entry of tokenizer.json's "added_tokens" (field names as there)."""
    id: int
    content: str
    single_word: bool = False  # matched only with no letter or digit on either side
    lstrip: bool = False       # the match swallows the whitespace before it
    rstrip: bool = False       # ... and after it
    normalized: bool = True    # matched in the normalized text rather than the raw text
    special: bool = False      # dropped by decode(skip_special_tokens=True)


class BPEModel:
    """tokenizer.json's "model" of type BPE: a vocabulary of token strings and a ranked list
    of merges. Each pre-tokenized word starts as one token per character (or, with
    byte_fallback, one "<0xNN>" token per byte of a character not in the vocabulary), then
    ``apply_merges`` joins pairs in rank order."""

    def __init__(self, config: dict, where: str):
        if config.get("type", "BPE") != "BPE":
            raise ValueError(f"{where}: model type {config.get('type')!r} is not supported; expected BPE")
        if config.get("dropout") not in (None, 0, 0.0):
            raise ValueError(f"{where}: BPE dropout {config['dropout']!r} is not supported (it makes encoding random)")
        vocab = config.get("vocab")
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise ValueError(f"{where}: model.vocab must be an object of token -> integer id")
        self.vocab: dict[str, int] = vocab
        self.tokens = {i: token for token, i in vocab.items()}
        self.unk_token = config.get("unk_token")
        self.byte_fallback = bool(config.get("byte_fallback", False))
        self.fuse_unk = bool(config.get("fuse_unk", False))
        self.ignore_merges = bool(config.get("ignore_merges", False))
        self.prefix = config.get("continuing_subword_prefix") or ""
        self.suffix = config.get("end_of_word_suffix") or ""
        self.merges = self._merge_table(config.get("merges", []), where)
        self._cache: dict[str, list[int]] = {}

    def _merge_table(self, merges: list, where: str) -> Merges:
        table: Merges = {}
        for rank, merge in enumerate(merges):
            # "a b" in older files, ["a", "b"] since tokenizers 0.20 (tokens may hold spaces)
            pair = merge.split(" ") if isinstance(merge, str) else merge
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise ValueError(f"{where}: merge {rank} is {merge!r:.80}; expected 'a b' or ['a', 'b']")
            left, right = pair
            merged = left + right[len(self.prefix):]
            for token in (left, right, merged):
                if token not in self.vocab:
                    raise ValueError(f"{where}: merge {rank} ({left!r}, {right!r}) uses {token!r}, which is not in the vocabulary")
            table.setdefault((self.vocab[left], self.vocab[right]), (rank, self.vocab[merged]))
        return table

    def tokenize(self, word: str) -> list[int]:
        """The ids of one pre-tokenized word (cached: text repeats its words)."""
        ids = self._cache.get(word)
        if ids is None:
            ids = self._tokenize(word)
            if len(self._cache) < 100_000:
                self._cache[word] = ids
        return ids

    def _tokenize(self, word: str) -> list[int]:
        if self.ignore_merges and word in self.vocab:  # Llama 3: a whole word in the vocabulary wins
            return [self.vocab[word]]
        ids: list[int] = []
        unknown = False  # the last id is an unk that fuse_unk may extend
        for i, char in enumerate(word):
            symbol = (self.prefix if i else "") + char + (self.suffix if i == len(word) - 1 else "")
            if symbol in self.vocab:
                ids.append(self.vocab[symbol])
                unknown = False
                continue
            if self.byte_fallback:
                byte_tokens = [f"<0x{byte:02X}>" for byte in symbol.encode("utf-8")]
                if all(token in self.vocab for token in byte_tokens):
                    ids.extend(self.vocab[token] for token in byte_tokens)
                    unknown = False
                    continue
            if self.unk_token is not None and self.unk_token in self.vocab:
                if not (unknown and self.fuse_unk):
                    ids.append(self.vocab[self.unk_token])
                unknown = True
            # with neither a byte token nor an unk token the character is dropped, as in tokenizers
        return apply_merges(ids, self.merges)


class HuggingFaceTokenizer:
    """A tokenizer read from a tokenizer.json; see the module docstring."""

    def __init__(self, config: dict, where: str = "tokenizer.json"):
        if not isinstance(config, dict):
            raise ValueError(f"{where}: expected a JSON object at the top level")
        self.where = where
        self.model = BPEModel(_object(config, "model", where), where)
        self.normalizer = build_normalizer(config.get("normalizer"), where)
        self.pre_tokenizer = build_pre_tokenizer(config.get("pre_tokenizer"), where)
        self.post_processor = build_post_processor(config.get("post_processor"), where)
        self.decoder = build_decoder(config.get("decoder"), where)
        self.added_tokens: list[AddedToken] = []
        self._added_by_content: dict[str, AddedToken] = {}
        for entry in config.get("added_tokens", []):
            token = _added_token(entry, where)
            token = token._replace(id=self._id_for_added(token.content))
            self.added_tokens.append(token)
            self._added_by_content.setdefault(token.content, token)
        self._added_by_id = {token.id: token for token in self.added_tokens}
        self._raw_matcher = _matcher(token.content for token in self.added_tokens if not token.normalized)
        # Tokens matched in normalized text are looked for in their normalized form.
        self._normalized_forms = {self._normalize(token.content): token
                                  for token in self.added_tokens if token.normalized}
        self._normalized_matcher = _matcher(self._normalized_forms)

    def _id_for_added(self, content: str) -> int:
        """The id ``tokenizers`` gives an added token (AddedVocabulary::add_tokens): its id if
        it is known already, else the next id after the vocabulary and the added tokens. Files
        the library wrote have the same number in the token's "id" field."""
        if content in self._added_by_content:
            return self._added_by_content[content].id
        if content in self.model.vocab:
            return self.model.vocab[content]
        largest = max((token.id for token in self.added_tokens), default=-1)
        return largest + 1 if largest >= len(self.model.vocab) else len(self.model.vocab)

    def _normalize(self, text: str) -> str:
        return self.normalizer(text) if self.normalizer else text

    @property
    def vocab_size(self) -> int:
        """The number of distinct tokens, the model's and the added ones (``tokenizers``'
        get_vocab_size(with_added_tokens=True)). A model's embedding may have more rows."""
        return len(self.model.vocab.keys() | self._added_by_content.keys())

    @property
    def special_tokens(self) -> dict[str, int]:
        """The added tokens marked special, content -> id."""
        return {token.content: token.id for token in self.added_tokens if token.special}

    def token_to_id(self, token: str) -> int | None:
        added = self._added_by_content.get(token)
        return added.id if added else self.model.vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        added = self._added_by_id.get(token_id)
        return added.content if added else self.model.tokens.get(token_id)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The ids of text, as ``tokenizers``' ``encode(text).ids``."""
        if not isinstance(text, str):
            raise TypeError(f"{self.where}: encode expects a str, got {type(text).__name__}")
        ids: list[int] = []
        for segment in self._segments(text):
            if isinstance(segment, int):
                ids.append(segment)
                continue
            pieces = self.pre_tokenizer([segment]) if self.pre_tokenizer else [segment]
            for word, _ in pieces:
                ids.extend(self.model.tokenize(word))
        if add_special_tokens and self.post_processor:
            ids = self.post_processor(ids)
        return ids

    def _segments(self, text: str) -> list[int | Piece]:
        """text as added-token ids and normalized pieces between them (steps 1 and 2)."""
        segments: list[int | Piece] = []
        for piece in _split_added(text, self._raw_matcher, self._added_by_content):
            if isinstance(piece, int):
                segments.append(piece)
                continue
            normalized, starts = self._normalize(piece[0]), piece[1]
            for part in _split_added(normalized, self._normalized_matcher, self._normalized_forms):
                segments.append(part if isinstance(part, int) else (part[0], starts and part[1]))
        return segments

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """The text of ids. As in ``tokenizers``, an id with no token (Qwen2's embedding has more
        rows than its vocabulary) is skipped; a negative id is a ValueError."""
        tokens = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id < 0:
                raise ValueError(f"{self.where}: decode got the negative id {token_id}")
            added = self._added_by_id.get(token_id)
            if added is not None and skip_special_tokens and added.special:
                continue
            token = added.content if added is not None else self.model.tokens.get(token_id)
            if token is not None:
                tokens.append(token)
        if self.decoder is None:
            return " ".join(tokens)
        return "".join(self.decoder(tokens))

    def __repr__(self) -> str:
        return f"HuggingFaceTokenizer({self.where}, vocab_size={self.vocab_size})"


def load_tokenizer_json(path: str | Path) -> HuggingFaceTokenizer:
    """The tokenizer of a tokenizer.json file, or of the tokenizer.json inside a folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    where = f"load_tokenizer_json: {path}"
    return HuggingFaceTokenizer(read_json(path, "load_tokenizer_json", max_bytes=MAX_FILE_BYTES), where)


def _object(config: dict, name: str, where: str) -> dict:
    value = config.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {name!r} must be a JSON object, got {value!r:.80}")
    return value


def _added_token(entry, where: str) -> AddedToken:
    if not (isinstance(entry, dict) and isinstance(entry.get("id"), int)
            and isinstance(entry.get("content"), str) and entry["content"]):
        raise ValueError(f"{where}: added token {entry!r:.80} needs an integer 'id' and a non-empty 'content'")
    fields = {name: bool(entry[name]) for name in AddedToken._fields[2:] if name in entry}
    return AddedToken(entry["id"], entry["content"], **fields)


def _matcher(contents: Iterable[str]) -> re.Pattern | None:
    """One alternation of the tokens, longest first: at the leftmost place where any token
    starts, the longest one matches (aho-corasick's LeftmostLongest in ``tokenizers``)."""
    contents = sorted(set(contents), key=lambda c: (-len(c), c))
    return re.compile("|".join(map(re.escape, contents))) if contents else None


def _split_added(text: str, matcher: re.Pattern | None, tokens: dict[str, AddedToken]) -> list[int | Piece]:
    """text cut into added-token ids and the (text, starts at 0?) pieces between them, with
    single_word, lstrip and rstrip as ``AddedVocabulary::find_matches`` applies them."""
    if matcher is None:
        return [(text, True)] if text else []
    result: list[int | Piece] = []
    done = 0  # text[:done] is already in result
    for match in matcher.finditer(text):
        start, stop = match.span()
        if start < done:
            continue  # inside the whitespace an rstrip already took
        token = tokens[match.group(0)]
        if token.single_word and ((start > 0 and _is_word_char(text[start - 1]))
                                  or (stop < len(text) and _is_word_char(text[stop]))):
            continue
        if token.lstrip:
            while start > done and is_white_space(text[start - 1]):
                start -= 1
        if token.rstrip:
            while stop < len(text) and is_white_space(text[stop]):
                stop += 1
        if start > done:
            result.append((text[done:start], done == 0))
        result.append(token.id)
        done = stop
    if done < len(text):
        result.append((text[done:], done == 0))
    return result


def _is_word_char(char: str) -> bool:
    return char.isalnum()
