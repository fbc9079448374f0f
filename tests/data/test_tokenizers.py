"""Tests for minitransformer/data/tokenizers.py: character and byte-level BPE tokenizers."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitransformer.data.bpe import bytes_to_unicode
from minitransformer.data.bpe_training import learn_merges
from minitransformer.data.corpus import python_sources, source_docstrings, stdlib_dir
from minitransformer.data.tokenizers import (
    TOKENIZER_FORMAT, ByteBPETokenizer, CharTokenizer, load_tokenizer, pretokenize,
)


@pytest.fixture(scope="module")
def corpus_slice() -> str:
    """About 100 kB of real training text: the docstrings of the json and email packages."""
    return "\n\n".join(
        doc for package in ("json", "email")
        for path in python_sources(stdlib_dir() / package) for doc in source_docstrings(path)
    )


@pytest.fixture(scope="module")
def bpe(corpus_slice) -> ByteBPETokenizer:
    return ByteBPETokenizer.train(corpus_slice, vocab_size=400)


# ---------------------------------------------------------------------------------------------
# CharTokenizer

CHAR_TRAINING_TEXT = "To be, or not to be: that is the question.\nÉté 🌍"
char_tokenizer = CharTokenizer.train(CHAR_TRAINING_TEXT)


def test_char_vocabulary_is_the_sorted_set_of_training_characters():
    assert char_tokenizer.chars == sorted(set(CHAR_TRAINING_TEXT))
    assert char_tokenizer.vocab_size == len(set(CHAR_TRAINING_TEXT))
    assert char_tokenizer.encode("\n") == [0]  # the smallest code point gets id 0


@given(st.text(alphabet=sorted(set(CHAR_TRAINING_TEXT))))
def test_char_decode_inverts_encode_over_the_vocabulary(text):
    ids = char_tokenizer.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < char_tokenizer.vocab_size for i in ids)
    assert char_tokenizer.decode(ids) == text


def test_char_encode_lists_the_characters_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"CharTokenizer.encode: 2 character\(s\) not in the vocabulary .*'X', 'z'"):
        char_tokenizer.encode("Xz to be zX")


def test_char_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"CharTokenizer.decode: ids \[-1, 99\] are outside the vocabulary \[0, \d+\)"):
        char_tokenizer.decode([0, 99, -1])


def test_char_tokenizer_rejects_empty_text_and_bad_vocabularies():
    with pytest.raises(ValueError, match="CharTokenizer.train: the text is empty"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match=r"CharTokenizer: vocabulary has duplicate characters \['a'\]"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="CharTokenizer: vocabulary entries must be single characters"):
        CharTokenizer(["ab"])


# ---------------------------------------------------------------------------------------------
# Pre-tokenization and ByteBPETokenizer


@given(st.text())
def test_pretokenization_pieces_join_back_to_the_text(text):
    assert "".join(pretokenize(text)) == text


def test_pretokenization_splits_like_gpt2():
    assert pretokenize("Hello world's 2024 end_of  line!\n") == [
        "Hello", " world", "'s", " 2024", " end", "_", "of", " ", " line", "!", "\n",
    ]


@given(st.text())
def test_bpe_decode_inverts_encode_for_any_string(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text


@pytest.mark.parametrize("text", ["", "é", "naïve café", "🌍🚀 emoji", "日本語のテキスト", "\x00\ufffd", "  \t\n "])
def test_bpe_round_trips_non_ascii_emoji_and_empty_strings(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_encode_of_a_lone_surrogate_is_a_value_error(bpe):
    with pytest.raises(ValueError, match=r"ByteBPETokenizer.encode: the text holds the lone surrogate U\+D800"):
        bpe.encode("ok \ud800")


def test_bpe_encodes_the_empty_string_as_no_tokens(bpe):
    assert bpe.encode("") == []


def test_bpe_merges_make_the_corpus_shorter(bpe, corpus_slice):
    n_bytes = len(corpus_slice.encode("utf-8"))
    n_tokens = len(bpe.encode(corpus_slice))
    assert n_tokens < 0.75 * n_bytes
    assert bpe.vocab_size == 400


def test_bpe_training_is_deterministic(corpus_slice, bpe):
    assert ByteBPETokenizer.train(corpus_slice, vocab_size=400).merges == bpe.merges


def test_bpe_learns_the_classic_example_with_ties_to_the_smallest_pair():
    """Wikipedia's byte-pair-encoding example "aaabdaaabac": 'aa' (4 times) first; then 'ab' and
    'Za' both occur twice and the tie goes to the smaller pair of ids, (97, 98); then Z Y."""
    tokenizer = ByteBPETokenizer.train("aaabdaaabac", vocab_size=259)
    assert tokenizer.merges == [(97, 97), (97, 98), (256, 257)]
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def naive_bpe_merges(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """The textbook trainer: recount every pair from scratch before each merge."""
    words = Counter(tuple(piece.encode("utf-8")) for piece in pretokenize(text))
    merges = []
    while len(merges) < vocab_size - 256:
        pair_counts = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        new_id = 256 + len(merges)
        merges.append(best)
        merged_words = Counter()
        for word, count in words.items():
            merged, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            merged_words[tuple(merged)] += count
        words = merged_words
    return merges


@given(st.text(alphabet="ab c\né", max_size=200), st.integers(256, 300))
def test_incremental_training_learns_the_same_merges_as_recounting(text, vocab_size):
    assert ByteBPETokenizer.train(text, vocab_size).merges == naive_bpe_merges(text, vocab_size)


@given(st.text(alphabet="ab c", max_size=100))
def test_encoding_the_training_text_never_needs_more_tokens_than_bytes(text):
    tokenizer = ByteBPETokenizer.train(text, vocab_size=270)
    assert len(tokenizer.encode(text)) <= len(text.encode("utf-8"))


def test_bpe_stops_early_when_the_text_runs_out_of_pairs():
    assert ByteBPETokenizer.train("ab", vocab_size=1000).vocab_size == 257


def test_bpe_token_bytes_show_what_a_merge_stands_for():
    # "he" and "th" both occur 3 times; the tie goes to the smaller pair, (104, 101) = "he".
    tokenizer = ByteBPETokenizer.train("the the the", vocab_size=300)
    assert [tokenizer.token_bytes(i) for i in range(256, tokenizer.vocab_size)] == [b"he", b"the", b" the"]


def test_bpe_decode_replaces_a_half_character_and_rejects_unknown_ids(bpe):
    assert bpe.decode(list("é".encode("utf-8"))[:1]) == "\ufffd"
    with pytest.raises(ValueError, match=r"ByteBPETokenizer.decode: ids \[400\] are outside the vocabulary \[0, 400\)"):
        bpe.decode([1, 400])


def test_bpe_rejects_a_small_vocab_size_and_merges_of_unknown_ids():
    with pytest.raises(ValueError, match=r"ByteBPETokenizer.train: vocab_size must be an integer >= 256 .* got 100"):
        ByteBPETokenizer.train("text", vocab_size=100)
    with pytest.raises(ValueError, match=r"ByteBPETokenizer: merge 0 joins \(97, 256\); expected ids of earlier tokens, in \[0, 256\)"):
        ByteBPETokenizer([(97, 256)])


# ---------------------------------------------------------------------------------------------
# Saving and loading


def test_save_and_load_round_trip_both_kinds(tmp_path, bpe, corpus_slice):
    sample = corpus_slice[:2000]
    bpe.save(tmp_path / "bpe.json")
    for loaded in (ByteBPETokenizer.load(tmp_path / "bpe.json"), load_tokenizer(tmp_path / "bpe.json")):
        assert isinstance(loaded, ByteBPETokenizer)
        assert loaded.merges == bpe.merges
        assert loaded.encode(sample) == bpe.encode(sample)
    char_tokenizer.save(tmp_path / "char.json")
    loaded = load_tokenizer(tmp_path / "char.json")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.chars == char_tokenizer.chars
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bpe.json", "char.json"]  # no .tmp left


def test_decode_accepts_numpy_ids(bpe):
    ids = np.array(bpe.encode("numpy arrays of ids"), dtype=np.int64)
    assert bpe.decode(ids) == "numpy arrays of ids"
    assert char_tokenizer.decode(np.array([1, 2])) == char_tokenizer.decode([1, 2])


def test_loading_a_file_of_another_kind_is_an_error(tmp_path):
    char_tokenizer.save(tmp_path / "char.json")
    with pytest.raises(ValueError, match=r"load tokenizer .*char\.json: the file holds a 'char' tokenizer, expected 'byte_bpe'"):
        ByteBPETokenizer.load(tmp_path / "char.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"kind": "char", "format": 2, "chars": ["a"]}), r"format 2, but .* reads 'char' tokenizers of format 1"),
        (json.dumps({"kind": "byte_bpe", "format": TOKENIZER_FORMAT + 1, "merges": []}),
         r"format 3, but .* reads 'byte_bpe' tokenizers of format 1 or 2"),
        (json.dumps({"kind": "wordpiece", "format": 1}), r"kind 'wordpiece' is not a tokenizer; expected one of \['byte_bpe', 'char'\]"),
        (json.dumps([1, 2]), r"kind None is not a tokenizer"),
        ("not json", r"load tokenizer: .*: not valid JSON"),
    ],
)
def test_loading_a_foreign_or_newer_file_is_an_error(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_tokenizer(path)


def test_loading_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"load tokenizer: .*missing\.json does not exist"):
        load_tokenizer(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# GPT-2's exact pre-tokenization


@pytest.mark.parametrize(("text", "pieces"), [
    ("x² + y² = z²", ["x", "²", " +", " y", "²", " =", " z", "²"]),   # ² is \p{N} (No), not \d
    ("Ⅻ ½ ٣٤", ["Ⅻ", " ½", " ٣٤"]),                                  # Nl, No, Nd: all numbers
    ("a\x1cb", ["a", "\x1c", "b"]),                                   # not White_Space
])
def test_pretokenization_uses_unicode_number_and_space_classes_as_gpt2(text, pieces):
    assert pretokenize(text) == pieces


# ---------------------------------------------------------------------------------------------
# Special tokens

SPECIALS = ["<|endoftext|>", "<|end|>", "<|end|><|end|>"]


def test_special_tokens_take_the_last_ids_and_stay_whole(corpus_slice):
    tokenizer = ByteBPETokenizer.train(corpus_slice[:5000], vocab_size=280, special_tokens=SPECIALS)
    assert tokenizer.vocab_size == 280
    assert tokenizer.special_tokens == {"<|endoftext|>": 277, "<|end|>": 278, "<|end|><|end|>": 279}
    ids = tokenizer.encode("the cat<|endoftext|>the mat")
    assert ids.count(277) == 1 and tokenizer.decode(ids) == "the cat<|endoftext|>the mat"
    # the longest special token wins where two start at one place
    assert tokenizer.encode("<|end|><|end|><|end|>") == [279, 278]
    assert tokenizer.encode("<|end") == tokenizer.encode("<|") + tokenizer.encode("end")  # a part is text


def test_special_tokens_are_kept_out_of_the_training_text():
    """The merges are those of the text between the special tokens: none spans a special token
    or learns from its characters, however often it occurs."""
    text = "<|endoftext|>the end<|endoftext|><|endoftext|>a new<|endoftext|>start" * 30
    tokenizer = ByteBPETokenizer.train(text, vocab_size=280, special_tokens=["<|endoftext|>"])
    between = Counter(piece.encode("utf-8") for segment in text.split("<|endoftext|>") for piece in pretokenize(segment))
    assert tokenizer.merges == learn_merges(between, 280 - 256 - 1)
    learned = [tokenizer.token_bytes(256 + i) for i in range(len(tokenizer.merges))]
    assert not any(b"<" in token or b"|" in token for token in learned)


def test_a_merge_never_makes_a_special_token():
    tokenizer = ByteBPETokenizer.train("<|x|> " * 50, vocab_size=270, special_tokens=["<|x|>"])
    assert tokenizer.encode("<|x|>") == [tokenizer.special_tokens["<|x|>"]]
    assert tokenizer.special_tokens["<|x|>"] not in tokenizer.encode("<|x| |x|> <x|>")


@given(st.text(alphabet="ab <|>end", max_size=60))
def test_decode_inverts_encode_with_special_tokens(text):
    tokenizer = ByteBPETokenizer.train("ab end <|end|> ba", vocab_size=262, special_tokens=["<|end|>", "<|e"])
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_special_tokens_survive_save_and_load(tmp_path):
    tokenizer = ByteBPETokenizer.train("the cat sat " * 10, vocab_size=270, special_tokens=SPECIALS)
    tokenizer.save(tmp_path / "bpe.json")
    assert json.loads((tmp_path / "bpe.json").read_text(encoding="utf-8"))["format"] == 2
    loaded = load_tokenizer(tmp_path / "bpe.json")
    assert loaded.special_tokens == tokenizer.special_tokens and loaded.merges == tokenizer.merges
    assert loaded.encode("cat<|end|>") == tokenizer.encode("cat<|end|>")


def test_a_tokenizer_without_special_tokens_still_writes_format_1(tmp_path, bpe):
    """Saved runs record their tokenizer file's SHA-256: the same merges give the same bytes."""
    bpe.save(tmp_path / "bpe.json")
    payload = json.loads((tmp_path / "bpe.json").read_text(encoding="utf-8"))
    assert payload == {"kind": "byte_bpe", "format": 1, "merges": [list(pair) for pair in bpe.merges]}


def test_bad_special_tokens_are_errors():
    with pytest.raises(ValueError, match=r"ByteBPETokenizer.train: vocab_size must be an integer >= 256 .* \+ 2 special"):
        ByteBPETokenizer.train("text", vocab_size=257, special_tokens=["<a>", "<b>"])
    with pytest.raises(ValueError, match=r"ByteBPETokenizer: special token '<a>' has id 300; expected .* in \[256, 257\)"):
        ByteBPETokenizer([], {"<a>": 300})
    with pytest.raises(ValueError, match=r"ByteBPETokenizer: two special tokens share an id"):
        ByteBPETokenizer([], {"<a>": 256, "<b>": 256})


# ---------------------------------------------------------------------------------------------
# Streaming: encode_iterable


def test_encode_iterable_on_a_file_larger_than_a_chunk_equals_encode(tmp_path, bpe, corpus_slice):
    text = corpus_slice[:30_000] + "<|endoftext|>" + corpus_slice[:3000]
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    with_special = ByteBPETokenizer(bpe.merges, {"<|endoftext|>": bpe.vocab_size})
    with open(path, encoding="utf-8", newline="") as lines:
        streamed = with_special.encode_iterable(lines, chunk_chars=1000)
        assert iter(streamed) is streamed  # a generator, not a list
        assert list(streamed) == with_special.encode(text)


def test_encode_iterable_reads_lazily_from_an_endless_source(bpe):
    endless = itertools.cycle(["the value of the key\n", "  is returned.\n"])
    first = list(itertools.islice(bpe.encode_iterable(endless, chunk_chars=100), 50))
    assert first == bpe.encode("the value of the key\n  is returned.\n" * 10)[:50]


@given(st.lists(st.text(alphabet="ab \n\t²<|end|>x'r", max_size=12), max_size=12), st.integers(1, 30))
def test_encode_iterable_equals_encode_for_any_cut_of_the_text(chunks, chunk_chars):
    tokenizer = ByteBPETokenizer.train("ab ab\n\n ba <|end|>", vocab_size=262, special_tokens=["<|end|>", "<|e"])
    assert list(tokenizer.encode_iterable(chunks, chunk_chars)) == tokenizer.encode("".join(chunks))


# ---------------------------------------------------------------------------------------------
# GPT-2's vocab.json and merges.txt, with their own ids


def write_gpt2_files(folder):
    """GPT-2's layout by hand: the 188 printable bytes first ("!" is 0), then the other 68 (so
    " " is "Ġ", id 220, as in GPT-2), then "Ġt" 256, "he" 257, "Ġthe" 258, "<|endoftext|>" 259."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    order = printable + [b for b in range(256) if b not in printable]
    chars = bytes_to_unicode()
    vocab = {chars[b]: i for i, b in enumerate(order)}
    vocab.update({"Ġt": 256, "he": 257, "Ġthe": 258, "<|endoftext|>": 259})
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\nĠt he\n", encoding="utf-8")


def test_gpt2_files_keep_their_own_ids(tmp_path):
    write_gpt2_files(tmp_path)
    tokenizer = ByteBPETokenizer.from_vocab_and_merges(tmp_path / "vocab.json", tmp_path / "merges.txt",
                                                       special_tokens=["<|endoftext|>"])
    assert tokenizer.vocab_size == 260
    assert tokenizer.encode("!") == [0] and tokenizer.encode(" ") == [220]
    assert tokenizer.encode(" the<|endoftext|>the") == [258, 259, ord("t") - 33, 257]
    assert tokenizer.decode([258, 259]) == " the<|endoftext|>"
    tokenizer.save(tmp_path / "bpe.json")
    loaded = load_tokenizer(tmp_path / "bpe.json")
    assert loaded.encode(" the the<|endoftext|>") == tokenizer.encode(" the the<|endoftext|>") == [258, 258, 259]


def test_gpt2_files_with_an_unknown_merge_token_are_an_error(tmp_path):
    write_gpt2_files(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nzz q\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt line 3 is 'zz q'; expected two tokens of the vocabulary"):
        ByteBPETokenizer.from_vocab_and_merges(tmp_path / "vocab.json", tmp_path / "merges.txt")
