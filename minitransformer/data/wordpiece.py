"""WordPiece: the tokenizer of BERT and its descendants, for pretrained vocabularies (vocab.txt).

Text becomes ids in three steps (Devlin et al. 2018; Wu et al. 2016 for WordPiece):

1. normalise: drop control characters, make every whitespace a space, put spaces around CJK
   ideographs (Chinese text has no spaces, so each character is a word), lower-case, and strip
   accents (decompose with NFD, drop the combining marks: "café" -> "cafe");
2. pre-tokenise: split on whitespace, and make every punctuation character a word of its own;
3. WordPiece: cut each word greedily into the longest pieces found in the vocabulary, left to
   right; pieces after the first carry the prefix "##" ("tokenization" -> "token", "##ization").
   A word with a part no piece matches, or longer than 100 characters, becomes [UNK] as a whole.

Then the sequence is framed as [CLS] tokens [SEP], cut to ``max_length``, and padded with [PAD]
in batches. The special tokens written literally in the text ("[MASK]") keep their ids, as in
the Hugging Face tokenizers. Everything here is plain Python and NumPy: no autograd.

The ids equal those of the Hugging Face tokenizer of the same vocabulary for every Unicode code
point but about 500 assigned in recent Unicode versions (such as U+061D), which its older
character tables classify differently from Python's ``unicodedata``.

    tokenizer = WordPieceTokenizer.from_file("vocab.txt", max_length=256)
    tokenizer.tokenize("Hello, world!")   # ['hello', ',', 'world', '!']
    ids, mask, types = tokenizer.batch_encode(["a sentence", "another one"])
"""

from __future__ import annotations

import os
import re
import unicodedata

import numpy as np

from ..atomic import atomic_write_text
from ..files import MiB, read_text

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
CONTINUATION = "##"
MAX_CHARS_PER_WORD = 100


# --- character classes (BERT's definitions) ---------------------------------------------------

def is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or a Unicode space, line or paragraph separator
    (Zs, Zl, Zp: the no-break space, the em space, U+2028...)."""
    return char in " \t\n\r" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def is_control(char: str) -> bool:
    """A control, format, private-use or surrogate character (Cc, Cf, Co, Cs), except tab,
    newline and CR, which count as whitespace. Unassigned code points (Cn) are kept, as the
    Hugging Face tokenizers keep them (and then map them to [UNK]); BERT's original code drops
    them."""
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs")


def is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*), plus every non-alphanumeric printable ASCII character such as
    "$", "+", "^" and "`", which Unicode files under symbols (S*) but BERT splits off too."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk(char: str) -> bool:
    """A CJK Unified Ideograph (BERT's blocks). Japanese kana and Korean hangul are not in them:
    those scripts are split on spaces and word-pieced like any other.

    Extension E starts at U+2B820, but the Hugging Face tokenizers (whose ids the pretrained
    models were evaluated with) start that range at U+2B920; we follow them, so the 256 code
    points between are treated as ordinary letters."""
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            or 0x2B920 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)


# ASCII text (most text fed to an English model) needs none of the Unicode steps above: no
# accents, no CJK, no exotic spaces. Steps 1 and 2 then become one translation and one regular
# expression, ten times faster than the character loops (tests/data/test_wordpiece.py checks
# that both ways agree on every ASCII text).
_ASCII_CLEANUP = {code: None for code in range(32) if chr(code) not in "\t\n\r"} | {
    127: None, ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}  # drop controls, whitespace -> " "
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9 ]")  # runs of letters and digits; any other
# printable character is punctuation, a word of its own


# --- the tokenizer ----------------------------------------------------------------------------

def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """vocab.txt: one token per line; a token's id is its line number, counting from 0. A file
    that is not a regular UTF-8 text file of at most 64 MiB is a ValueError naming it."""
    vocab: dict[str, int] = {}
    text = read_text(path, "load_vocab", 64 * MiB, "a vocab.txt file, one token per line")
    for index, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")):
        vocab.setdefault(line.rstrip("\r"), index)  # the first line wins when a token repeats
    return vocab


class WordPieceTokenizer:
    """BERT's uncased WordPiece tokenizer over a vocabulary (token -> id).

    ``max_length`` counts [CLS] and [SEP]: longer texts are cut to their first
    ``max_length - 2`` word pieces.
    """

    def __init__(self, vocab: dict[str, int], max_length: int = 512, lowercase: bool = True):
        missing = [token for token in (PAD, UNK, CLS, SEP) if token not in vocab]
        if missing:
            raise ValueError(f"WordPieceTokenizer: vocabulary of {len(vocab)} tokens lacks the "
                             f"special tokens {missing}; expected [PAD], [UNK], [CLS] and [SEP]")
        if max_length < 2:
            raise ValueError(f"WordPieceTokenizer: max_length must be >= 2 (room for [CLS] and "
                             f"[SEP]), got {max_length}")
        self.vocab = vocab
        self.id_to_token = {index: token for token, index in vocab.items()}
        self.max_length = max_length
        self.lowercase = lowercase
        self.pad_id, self.unk_id = vocab[PAD], vocab[UNK]
        self.cls_id, self.sep_id = vocab[CLS], vocab[SEP]
        specials = [token for token in SPECIAL_TOKENS if token in vocab]
        self._special_pattern = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")

    @classmethod
    def from_file(cls, path: str | os.PathLike, max_length: int = 512,
                  lowercase: bool = True) -> WordPieceTokenizer:
        return cls(load_vocab(path), max_length=max_length, lowercase=lowercase)

    @classmethod
    def train_characters(cls, text: str, min_count: int = 2, max_length: int = 512) -> WordPieceTokenizer:
        """A tokenizer whose vocabulary is the special tokens and the characters of ``text``:
        each character seen at least ``min_count`` times at the start of a word ("a") or inside
        one ("##a"), in order of first appearance. Every word then becomes one piece per
        character ("token" -> t ##o ##k ##e ##n), the WordPiece form of a character-level
        tokenizer; rarer characters become [UNK]."""
        counts: dict[str, int] = {}
        for word in cls.split_words(cls(dict.fromkeys(SPECIAL_TOKENS, 0)).normalize(text)):
            for position, char in enumerate(word):
                piece = char if position == 0 else CONTINUATION + char
                counts[piece] = counts.get(piece, 0) + 1
        pieces = [piece for piece, count in counts.items() if count >= min_count]
        if not pieces:
            raise ValueError(f"WordPieceTokenizer.train_characters: no character occurs {min_count} times "
                             "in the text; expected some text to learn from")
        return cls({token: index for index, token in enumerate([*SPECIAL_TOKENS, *pieces])}, max_length)

    def save(self, path: str | os.PathLike) -> None:
        """Write vocab.txt: line i holds the token of id i (what ``from_file`` reads)."""
        tokens = sorted(self.vocab, key=self.vocab.get)
        atomic_write_text(path, "\n".join(tokens) + "\n")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def mask_id(self) -> int:
        if MASK not in self.vocab:
            raise ValueError(f"WordPieceTokenizer: the vocabulary of {self.vocab_size} tokens has no {MASK}; "
                             "masked language modelling needs one")
        return self.vocab[MASK]

    @property
    def special_ids(self) -> list[int]:
        return [self.vocab[token] for token in SPECIAL_TOKENS if token in self.vocab]

    # --- step 1: normalise --------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        if text.isascii():
            text = text.translate(_ASCII_CLEANUP)
            return text.lower() if self.lowercase else text
        return self.normalize_characters(text)

    def normalize_characters(self, text: str) -> str:
        """``normalize`` character by character, for any text."""
        chars = []
        for char in text:
            if char in "\x00\ufffd" or is_control(char):
                continue
            if is_whitespace(char):
                chars.append(" ")
            elif is_cjk(char):
                chars.append(f" {char} ")
            else:
                chars.append(char)
        text = "".join(chars)
        if self.lowercase:  # BERT-uncased: lower-case and strip accents ("Ça" -> "ca")
            # character by character, as the reference does: str.lower() would turn a
            # word-final capital sigma into the final form "ς", which the vocabulary lacks
            text = unicodedata.normalize("NFD", "".join(char.lower() for char in text))
            text = "".join(char for char in text if unicodedata.category(char) != "Mn")
        return text

    # --- step 2: split into words -------------------------------------------------------------
    @staticmethod
    def split_words(text: str) -> list[str]:
        if text.isascii():
            return _ASCII_WORDS.findall(text)
        return WordPieceTokenizer.split_characters(text)

    @staticmethod
    def split_characters(text: str) -> list[str]:
        """``split_words`` character by character, for any text."""
        words, current = [], []
        for char in text:
            if is_whitespace(char) or is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                if not is_whitespace(char):
                    words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
        return words

    # --- step 3: WordPiece --------------------------------------------------------------------
    def word_pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first: take the longest prefix in the vocabulary, then repeat on
        the rest with "##" in front. Greedy is not always the fewest pieces, but it is what
        the vocabulary was built for."""
        if len(word) > MAX_CHARS_PER_WORD:
            return [UNK]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:  # no piece fits here: the whole word is unknown
                return [UNK]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text``, without [CLS]/[SEP] and without truncation."""
        tokens = []
        for part in self._special_pattern.split(text):
            if part in self.vocab and part in SPECIAL_TOKENS:
                tokens.append(part)
                continue
            for word in self.split_words(self.normalize(part)):
                tokens.extend(self.word_pieces(word))
        return tokens

    # --- ids ----------------------------------------------------------------------------------
    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """[CLS] ids(text) [SEP], cut so that the whole is at most ``max_length`` ids."""
        max_length = self.max_length if max_length is None else max_length
        if max_length < 2:
            raise ValueError(f"encode: max_length must be >= 2, got {max_length}")
        ids = [self.vocab.get(token, self.unk_id) for token in self.tokenize(text)]
        return [self.cls_id] + ids[: max_length - 2] + [self.sep_id]

    def batch_encode(self, texts: list[str],
                     max_length: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, attention_mask, token_type_ids), each int64 (B, T), T the longest
        sequence; shorter rows are padded with [PAD] ids and mask 0 (1 marks real tokens)."""
        if isinstance(texts, str):
            raise TypeError("batch_encode: expected a list of strings, got one string; "
                            "use encode(text) or pass [text]")
        return self.pad([self.encode(text, max_length) for text in texts])

    def pad(self, sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded sequences as (input_ids, attention_mask, token_type_ids), padded to the
        longest (see ``batch_encode``)."""
        longest = max((len(ids) for ids in sequences), default=0)
        input_ids = np.full((len(sequences), longest), self.pad_id, dtype=np.int64)  # (B, T)
        attention_mask = np.zeros((len(sequences), longest), dtype=np.int64)  # (B, T)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        token_type_ids = np.zeros_like(input_ids)  # one segment: every token is sentence A
        return input_ids, attention_mask, token_type_ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Ids back to text: pieces joined, "##" continuations glued to the piece before."""
        tokens = [self.id_to_token.get(int(i), UNK) for i in ids]
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in SPECIAL_TOKENS]
        return " ".join(tokens).replace(" " + CONTINUATION, "")
