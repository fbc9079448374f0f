"""Tests for minitransformer/data/tokenizer_json.py and tokenizer_pipeline.py on small
hand-written tokenizer.json files whose ids are worked out by hand (no ``tokenizers`` needed;
tests/crosscheck/test_tokenizer_json_hf.py compares with the library itself)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from minitransformer.data import HuggingFaceTokenizer, load_tokenizer_json
from minitransformer.data.bpe import bytes_to_unicode
from minitransformer.data.tokenizer_pipeline import split_on
from minitransformer.data.unicode_regex import compile_pattern

BYTE_CHARS = bytes_to_unicode()  # byte value -> its printable stand-in ("Ġ" for the space)


def added(token_id: int, content: str, **options) -> dict:
    """An "added_tokens" entry with every field written, as the library writes them."""
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True, **options}


def template(bos: str, bos_id: int) -> dict:
    """TemplateProcessing that puts bos before the text (and before each text of a pair)."""
    special, text = {"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}
    return {"type": "TemplateProcessing", "single": [special, text],
            "pair": [special, text, special, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


def gpt2_style(**model_options) -> dict:
    """Ids 0-255 are the bytes; then "he" (256), "Ġt" (257), "Ġthe" (258); two special tokens."""
    vocab = {char: byte for byte, char in BYTE_CHARS.items()}
    vocab.update({"he": 256, "Ġt": 257, "Ġthe": 258})
    return {
        "version": "1.0",
        "added_tokens": [
            added(259, "<|endoftext|>"), added(260, "<|begin|>"),
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": template("<|begin|>", 260),
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        # one merge in the old "a b" form, two in the newer [a, b] form
        "model": {"type": "BPE", "vocab": vocab, "merges": ["h e", ["Ġ", "t"], ["Ġt", "he"]], **model_options},
    }


def sentencepiece_style() -> dict:
    """Llama 2's layout: "▁" for spaces by a normalizer, "<0xNN>" byte fallback, ids worked out:
    <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, "▁" 259, "h" 260, "i" 261, "▁h" 262, "▁hi" 263."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)},
             "▁": 259, "h": 260, "i": 261, "▁h": 262, "▁hi": 263}
    return {
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": template("<s>", 1),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "vocab": vocab, "merges": [["▁", "h"], ["▁h", "i"]],
                  "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True},
    }


@pytest.fixture
def gpt2(tmp_path) -> HuggingFaceTokenizer:
    (tmp_path / "tokenizer.json").write_text(json.dumps(gpt2_style()), encoding="utf-8")
    return load_tokenizer_json(tmp_path)  # the folder


def test_gpt2_style_ids_worked_out_by_hand(gpt2):
    # "the" -> t + "he"; " end" -> "Ġ" e n d (no merge); the special token whole; " the" -> one token
    assert gpt2.encode("the end<|endoftext|> the", add_special_tokens=False) == [
        ord("t"), 256, 32, ord("e"), ord("n"), ord("d"), 259, 258]
    assert gpt2.encode("the") == [260, ord("t"), 256]  # the template's BOS first
    assert gpt2.decode([260, ord("t"), 256, 259, 258]) == "<|begin|>the<|endoftext|> the"
    assert gpt2.decode([260, ord("t"), 256, 259, 258], skip_special_tokens=True) == "the the"


def test_gpt2_style_vocabulary_lookups(gpt2):
    assert gpt2.vocab_size == 261
    assert gpt2.special_tokens == {"<|endoftext|>": 259, "<|begin|>": 260}
    assert gpt2.token_to_id("Ġthe") == 258 and gpt2.id_to_token(258) == "Ġthe"
    assert gpt2.token_to_id("<|begin|>") == 260 and gpt2.id_to_token(260) == "<|begin|>"
    assert gpt2.token_to_id("absent") is None and gpt2.id_to_token(10_000) is None


@given(st.text(max_size=60))
def test_decode_inverts_encode_for_any_text(text):
    tokenizer = HuggingFaceTokenizer(gpt2_style())
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=True) == text.replace(
        "<|endoftext|>", "").replace("<|begin|>", "")


def test_gpt2_pretokenizer_treats_superscript_two_as_a_number(gpt2):
    """\\p{N} holds "²" (No): GPT-2 cuts "x²" into "x" and "²"; with \\d it would be one symbol run."""
    assert compile_pattern(r" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+").findall("x² ½") == ["x", "²", " ½"]


def test_ignore_merges_takes_a_whole_word_from_the_vocabulary():
    config = gpt2_style()
    config["model"]["vocab"]["the"] = 261
    assert HuggingFaceTokenizer(config).encode("the", add_special_tokens=False) == [ord("t"), 256]
    config["model"]["ignore_merges"] = True
    assert HuggingFaceTokenizer(config).encode("the", add_special_tokens=False) == [261]


def test_sentencepiece_style_byte_fallback_ids_worked_out_by_hand():
    tokenizer = HuggingFaceTokenizer(sentencepiece_style())
    # "▁hi▁é": "▁hi" by two merges, "▁" alone, "é" as its UTF-8 bytes C3 A9 -> 3 + 0xC3, 3 + 0xA9
    ids = tokenizer.encode("hi é")
    assert ids == [1, 263, 259, 3 + 0xC3, 3 + 0xA9]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "hi é"
    # Strip drops the one leading space of the whole text, so after "<s>" the space stays
    assert tokenizer.decode(ids) == "<s> hi é"
    assert tokenizer.decode([3 + 0xC3, 263]) == "\ufffd hi"  # half a character: U+FFFD


def test_unknown_characters_fuse_into_one_unk_without_byte_fallback():
    config = sentencepiece_style()
    config["model"]["byte_fallback"] = False
    assert HuggingFaceTokenizer(config).encode("hi éé", add_special_tokens=False) == [263, 259, 0]


def test_added_token_options_lstrip_rstrip_and_single_word():
    config = gpt2_style()
    config["added_tokens"] = [
        added(259, "<mask>", lstrip=True, rstrip=True), added(260, "at", single_word=True, special=False)
    ]
    tokenizer = HuggingFaceTokenizer(config)
    assert tokenizer.encode("t  <mask>  t", add_special_tokens=False) == [ord("t"), 259, ord("t")]
    assert tokenizer.encode("at", add_special_tokens=False) == [260]                     # a word alone
    assert tokenizer.encode("hat", add_special_tokens=False) == [ord("h"), ord("a"), ord("t")]  # inside one


def test_added_tokens_take_the_ids_tokenizers_gives_them():
    """An added token already in the vocabulary keeps the vocabulary's id; a new one gets the
    next free id (AddedVocabulary::add_tokens), whatever the file's "id" field says."""
    config = gpt2_style()
    config["added_tokens"] = [added(7, "he"), added(7, "<new>"), added(7, "<newer>")]
    tokenizer = HuggingFaceTokenizer(config)
    assert [tokenizer.token_to_id(t) for t in ("he", "<new>", "<newer>")] == [256, 259, 260]
    assert tokenizer.special_tokens == {"he": 256, "<new>": 259, "<newer>": 260}


def test_longest_added_token_wins_where_two_start_together():
    config = gpt2_style()
    config["added_tokens"] = [added(259, "<a>"), added(260, "<a><b>")]
    assert HuggingFaceTokenizer(config).encode("<a><b><a>", add_special_tokens=False) == [260, 259]


@pytest.mark.parametrize(("behavior", "pieces"), [
    ("Removed", ["a", "b"]), ("Isolated", ["a", "-", "-", "b"]), ("MergedWithPrevious", ["a-", "-", "b"]),
    ("MergedWithNext", ["a", "-", "-b"]), ("Contiguous", ["a", "--", "b"]),
])
def test_split_behaviors_follow_tokenizers(behavior, pieces):
    """The values of the SplitDelimiterBehavior documentation of ``tokenizers`` for "a--b"."""
    import re
    assert [piece for piece, _ in split_on(re.compile("-"), "a--b", behavior)] == pieces


@pytest.mark.parametrize(("section", "value", "message"), [
    ("pre_tokenizer", {"type": "BertPreTokenizer"}, r"pre_tokenizer type 'BertPreTokenizer' is not supported"),
    ("normalizer", {"type": "Precompiled", "precompiled_charsmap": ""}, r"normalizer type 'Precompiled' is not supported"),
    ("decoder", {"type": "WordPiece"}, r"decoder type 'WordPiece' is not supported"),
    ("post_processor", {"type": "Unknown"}, r"post_processor type 'Unknown' is not supported"),
    ("model", {"type": "Unigram", "vocab": []}, r"model type 'Unigram' is not supported; expected BPE"),
])
def test_unsupported_components_name_the_file_and_the_type(tmp_path, section, value, message):
    config = gpt2_style()
    config[section] = value
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"load_tokenizer_json: .*tokenizer\.json: {message}"):
        load_tokenizer_json(path)


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match=r"load_tokenizer_json: .*missing.json does not exist"):
        load_tokenizer_json(tmp_path / "missing.json")
    config = gpt2_style()
    config["model"]["merges"].append(["x", "y"])
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merge 3 \('x', 'y'\) uses 'xy', which is not in the vocabulary"):
        load_tokenizer_json(tmp_path / "tokenizer.json")
    with pytest.raises(TypeError, match=r"encode expects a str, got bytes"):
        HuggingFaceTokenizer(gpt2_style()).encode(b"bytes")
