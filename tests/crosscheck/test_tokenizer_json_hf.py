"""Optional cross-check against Hugging Face ``tokenizers`` (skipped when it is not installed):
tokenizer.json files built locally with each model family's exact normalizer, pre-tokenizer,
post-processor, decoder and special tokens (GPT-2, SmolLM2, Llama 3, Qwen2, Llama 2 and
Mistral), read by minitransformer.data.load_tokenizer_json, must give the library's ids and
decodes on a multilingual text and on held-back texts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitransformer.data import load_tokenizer_json
from minitransformer.data.unicode_regex import GPT2_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN

tokenizers = pytest.importorskip("tokenizers")

TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. It's the dog's bone; they'll say we've won, I'm sure.
Café, naïve, résumé, Straße, Ærø, São Paulo, Zürich; élève à l'école, où est-il?
日本語のテキストを読みます。東京は大きい都市です。中文文本也在这里。한국어 문장도 있습니다.
Emoji: 🌍🚀😀👍🏽 and flags 🇫🇷🇯🇵. Numbers: 12345, 3.14159, x² + y² = z², ½, Ⅻ, ٣٤٥.
def main():\n    return {"key": [1, 2, 3]}  # code with   spaces\tand tabs\r\n
"""

MULTILINGUAL_TEXT = (
    "Hello world! Don't panic, WE'LL see: it's 12345 or x² ≈ 1.5e-10.  Two  spaces,\n\n"
    "three   spaces\ttab\r\nCRLF. Café naïve Zürich Ærø. 日本語のテキスト 中文 한국어 "
    "🌍🚀 👍🏽 🇯🇵 ½ Ⅻ ٣٤٥ ①②. <|endoftext|>after<|im_start|>user\nhi<|im_end|> <s>x</s>"
    "   trailing   "
)

HELD_BACK_TEXTS = [
    "", " ", "\n", "a", "²", "   leading", "trailing\n\n", "I'M HERE", "Ǆemo ǅ ǆ", "ﬁnancial ﬀ",
    "\u00a0non-breaking\u2009thin\u3000ideographic", "\x1c\x1d\x1e\x1f separators", "🏳️‍🌈 zero-width\u200djoiner",
    "Ελληνικά κείμενα, русский текст, עברית, العربية", "<|endoftext|><|endoftext|>", "x<|im_end|>y",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝟙𝟚𝟛", "tabs\t\t\tand\u000bvertical", "12345678901234567890", "e\u0301 combining",
]

BYTE_LEVEL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _train(pre_tokenizer, special_tokens: list[str], vocab_size: int, **trainer_options) -> dict:
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                            show_progress=False, **trainer_options)
    tokenizer.train_from_iterator(TRAINING_TEXT.splitlines() * 3, trainer)
    return json.loads(tokenizer.to_str())


@pytest.fixture(scope="module")
def byte_level_model() -> dict:
    """A byte-level BPE (GPT-2's alphabet of 256 stand-in characters) as tokenizer.json."""
    return _train(tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False), BYTE_LEVEL_SPECIALS, 700,
                  initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())


@pytest.fixture(scope="module")
def sentencepiece_model() -> dict:
    """A sentencepiece-style BPE ("▁" for spaces) with the 256 "<0xNN>" byte-fallback tokens."""
    config = _train(tokenizers.pre_tokenizers.Metaspace(), ["<unk>", "<s>", "</s>"], 400)
    vocab = config["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    config["model"].update(unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    return config


def _split(pattern: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def _byte_level(add_prefix_space=False, use_regex=True) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def _template(bos: str, bos_id: int) -> dict:
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


SENTENCEPIECE_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
    {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def family_config(family: str, byte_level_model: dict, sentencepiece_model: dict) -> dict:
    """The tokenizer.json of a family: its published pipeline around a locally trained model."""
    if family in ("llama2", "mistral"):
        config = json.loads(json.dumps(sentencepiece_model))
        config["post_processor"] = _template("<s>", config["model"]["vocab"]["<s>"])
        if family == "llama2":  # the "legacy" layout: a normalizer does the spaces
            config["normalizer"] = {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
            config["pre_tokenizer"] = None
            config["decoder"] = SENTENCEPIECE_DECODER
        else:  # newer files: a Metaspace pre-tokenizer that prepends "▁" only at the start
            config["normalizer"] = None
            config["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
            config["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
        return config
    config = json.loads(json.dumps(byte_level_model))
    config["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    config["normalizer"] = None
    config["post_processor"] = _byte_level()
    if family == "gpt2":
        config["pre_tokenizer"] = _byte_level()
    elif family == "gpt2-prefix-space":  # e.g. RoBERTa-like files
        config["pre_tokenizer"] = _byte_level(add_prefix_space=True)
    elif family == "smollm2":
        config["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, _byte_level()]}
    elif family == "llama3":
        config["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [_split(LLAMA3_PATTERN), _byte_level(use_regex=False)]}
        config["post_processor"] = {"type": "Sequence", "processors": [
            _byte_level(add_prefix_space=True), _template("<|im_start|>", config["model"]["vocab"]["<|im_start|>"])]}
        config["model"]["ignore_merges"] = True
    elif family == "qwen2":
        config["normalizer"] = {"type": "NFC"}
        config["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [_split(QWEN2_PATTERN), _byte_level(use_regex=False)]}
    return config


FAMILIES = ["gpt2", "gpt2-prefix-space", "smollm2", "llama3", "qwen2", "llama2", "mistral"]


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, byte_level_model, sentencepiece_model, tmp_path_factory):
    """(ours, theirs) for one family, ours read from a tokenizer.json file in a folder."""
    config = family_config(request.param, byte_level_model, sentencepiece_model)
    folder = tmp_path_factory.mktemp(request.param)
    (folder / "tokenizer.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return load_tokenizer_json(folder), tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))


def assert_same(ours, theirs, text: str) -> None:
    for add_special_tokens in (True, False):
        expected = theirs.encode(text, add_special_tokens=add_special_tokens).ids
        assert ours.encode(text, add_special_tokens=add_special_tokens) == expected, (text, add_special_tokens)
    ids = theirs.encode(text).ids
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip), (text, skip)


def test_multilingual_text_gives_the_ids_and_text_of_tokenizers(pair):
    ours, theirs = pair
    assert_same(ours, theirs, MULTILINGUAL_TEXT)
    assert_same(ours, theirs, TRAINING_TEXT)


@pytest.mark.parametrize("text", HELD_BACK_TEXTS)
def test_held_back_texts_give_the_ids_and_text_of_tokenizers(pair, text):
    assert_same(*pair, text)


@settings(max_examples=40)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_text_gives_the_ids_of_tokenizers(pair, text):
    assert_same(*pair, text)


def test_vocabulary_and_special_tokens_agree(pair):
    ours, theirs = pair
    assert ours.vocab_size == theirs.get_vocab_size(with_added_tokens=True)
    vocab = theirs.get_vocab(with_added_tokens=True)
    assert all(ours.token_to_id(token) == i and ours.id_to_token(i) == token for token, i in vocab.items())
    specials = {t.content: i for i, t in theirs.get_added_tokens_decoder().items() if t.special}
    assert ours.special_tokens == specials


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN])
def test_pretokenization_patterns_split_like_tokenizers(pattern):
    """The Oniguruma patterns, translated for ``re`` with classes from unicodedata, cut text
    exactly where the library's Split pre-tokenizer does ("²" is \\p{N}, not \\d)."""
    from minitransformer.data.unicode_regex import compile_pattern
    split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(pattern), "isolated")
    for text in [MULTILINGUAL_TEXT, TRAINING_TEXT, *HELD_BACK_TEXTS]:
        assert [m.group(0) for m in compile_pattern(pattern).finditer(text)] == [
            piece for piece, _ in split.pre_tokenize_str(text)]
