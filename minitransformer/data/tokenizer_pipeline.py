"""The steps of a Hugging Face tokenizer.json around its model: normalizers, pre-tokenizers,
post-processors and decoders, each built from its JSON object.

The pipeline of ``tokenizers`` (huggingface.co/docs/tokenizers/pipeline) for one text:

    normalizer      text -> text                     NFC, "Hello" -> "▁Hello", ...
    pre_tokenizer   text -> pieces                    the regex split, bytes -> "Ġ"-characters
    model           each piece -> ids                 BPE merges (tokenizer_json.py)
    post_processor  ids -> ids                        the BOS token add_special_tokens adds
    decoder         tokens -> text                    the inverse of the byte/space mapping

Each ``build_*`` function returns a plain function; the JSON field names and defaults are
those of tokenizers/src/{normalizers,pre_tokenizers,processors,decoders}. A type we do not
implement is a ValueError naming the file and the type.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from .bpe import bytes_to_unicode, unicode_to_bytes
from .unicode_regex import GPT2_PATTERN, WHITE_SPACE, compile_pattern, is_numeric, is_white_space

# A piece of text on its way through the pre-tokenizers: (text, starts the input?). Metaspace's
# prepend_scheme "first" adds "▁" only to a piece at the very start of the input.
Piece = tuple[str, bool]
Normalizer = Callable[[str], str]
PreTokenizer = Callable[[list[Piece]], list[Piece]]
PostProcessor = Callable[[list[int]], list[int]]
Decoder = Callable[[list[str]], list[str]]

_WHITE_SPACE_CHARS = "".join(chr(c) for first, last in WHITE_SPACE for c in range(first, last + 1))


def _unsupported(where: str, step: str, config) -> ValueError:
    kind = config.get("type") if isinstance(config, dict) else config
    return ValueError(f"{where}: {step} type {kind!r} is not supported")


def _pattern(where: str, config) -> re.Pattern:
    """A {"String": literal} or {"Regex": oniguruma pattern} object as a compiled ``re``."""
    if isinstance(config, dict) and isinstance(config.get("String"), str):
        return re.compile(re.escape(config["String"]))
    if isinstance(config, dict) and isinstance(config.get("Regex"), str):
        return compile_pattern(config["Regex"])
    raise ValueError(f"{where}: pattern {config!r:.80} must be {{'String': ...}} or {{'Regex': ...}}")


# ---------------------------------------------------------------------------------------------
# Normalizers: str -> str


def build_normalizer(config: dict | None, where: str) -> Normalizer | None:
    if config is None:
        return None
    kind = config.get("type")
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda text: unicodedata.normalize(kind, text)
    if kind == "Lowercase":
        return str.lower
    if kind == "Strip":  # Rust's trim: Unicode White_Space, not Python's isspace
        left, right = config.get("strip_left", True), config.get("strip_right", True)
        return lambda text: _strip(text, left, right)
    if kind == "Replace":
        pattern, content = _pattern(where, config.get("pattern")), config.get("content", "")
        return lambda text: pattern.sub(lambda _: content, text)
    if kind == "Prepend":  # sentencepiece's dummy prefix "▁", on non-empty text only
        prefix = config.get("prepend", "")
        return lambda text: prefix + text if text else text
    if kind == "Sequence":
        steps = [build_normalizer(step, where) for step in config.get("normalizers", [])]

        def normalize(text: str) -> str:
            for step in steps:
                text = step(text)
            return text
        return normalize
    raise _unsupported(where, "normalizer", config)


def _strip(text: str, left: bool, right: bool) -> str:
    if left:
        text = text.lstrip(_WHITE_SPACE_CHARS)
    if right:
        text = text.rstrip(_WHITE_SPACE_CHARS)
    return text


# ---------------------------------------------------------------------------------------------
# Pre-tokenizers: pieces -> smaller pieces


def build_pre_tokenizer(config: dict | None, where: str) -> PreTokenizer | None:
    if config is None:
        return None
    kind = config.get("type")
    if kind == "ByteLevel":
        return _byte_level(config.get("add_prefix_space", True), config.get("use_regex", True))
    if kind == "Split":
        pattern = _pattern(where, config.get("pattern"))
        behavior = config.get("behavior", "Isolated")
        if behavior not in _MERGE_BEHAVIORS:
            raise ValueError(f"{where}: Split behavior {behavior!r} is not one of {sorted(_MERGE_BEHAVIORS)}")
        invert = bool(config.get("invert", False))
        return _each_piece(lambda text: split_on(pattern, text, behavior, invert))
    if kind == "Digits":  # Rust's char::is_numeric: "²" counts as a digit here
        behavior = "Isolated" if config.get("individual_digits", False) else "Contiguous"
        return _each_piece(lambda text: split_by_predicate(text, is_numeric, behavior))
    if kind == "Metaspace":
        return _metaspace(config, where)
    if kind == "WhitespaceSplit":
        return _each_piece(lambda text: split_by_predicate(text, is_white_space, "Removed"))
    if kind == "Sequence":
        steps = [build_pre_tokenizer(step, where) for step in config.get("pretokenizers", [])]

        def pre_tokenize(pieces: list[Piece]) -> list[Piece]:
            for step in steps:
                pieces = step(pieces)
            return pieces
        return pre_tokenize
    raise _unsupported(where, "pre_tokenizer", config)


def _each_piece(split: Callable[[str], list[tuple[str, int]]]) -> PreTokenizer:
    """A pre-tokenizer from a function text -> [(sub-piece, its start in text)]."""
    def pre_tokenize(pieces: list[Piece]) -> list[Piece]:
        return [(sub, starts and start == 0) for text, starts in pieces for sub, start in split(text)]
    return pre_tokenize


_MERGE_BEHAVIORS = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"}


def split_on(pattern: re.Pattern, text: str, behavior: str, invert: bool = False) -> list[tuple[str, int]]:
    """text cut at the matches of pattern, each match handled as ``behavior`` says (the
    SplitDelimiterBehavior of ``tokenizers``): dropped, its own piece, glued to the previous or
    the next piece, or glued to neighbouring matches. Returns (piece, start) pairs, no empties."""
    spans, position = [], 0  # (start, end, is the delimiter?) covering the text
    for match in pattern.finditer(text):
        if match.start() == match.end():
            continue
        if match.start() > position:
            spans.append((position, match.start(), invert))
        spans.append((match.start(), match.end(), not invert))
        position = match.end()
    if position < len(text):
        spans.append((position, len(text), invert))
    return _merge_spans(text, spans, behavior)


def split_by_predicate(text: str, predicate: Callable[[str], bool], behavior: str) -> list[tuple[str, int]]:
    """Like ``split_on``, each character for which predicate holds being one delimiter."""
    spans, position = [], 0
    for i, char in enumerate(text):
        if predicate(char):
            if position < i:
                spans.append((position, i, False))
            spans.append((i, i + 1, True))
            position = i + 1
    if position < len(text):
        spans.append((position, len(text), False))
    return _merge_spans(text, spans, behavior)


def _merge_spans(text: str, spans: list[tuple[int, int, bool]], behavior: str) -> list[tuple[str, int]]:
    """The pieces that ``behavior`` makes of spans (start, end, is a delimiter), which cover text.
    A delimiter glues to a neighbour only if that neighbour is not a delimiter too, as in
    ``NormalizedString::split`` of ``tokenizers``."""
    if behavior == "Removed":
        kept = [(start, end) for start, end, delimiter in spans if not delimiter]
    elif behavior == "Isolated":
        kept = [(start, end) for start, end, _ in spans]
    elif behavior == "MergedWithNext":  # scan right to left, gluing a delimiter onto what follows
        kept, next_is_delimiter = [], False
        for start, end, delimiter in reversed(spans):
            if delimiter and not next_is_delimiter and kept:
                kept[-1] = (start, kept[-1][1])
            else:
                kept.append((start, end))
            next_is_delimiter = delimiter
        kept.reverse()
    else:  # MergedWithPrevious, Contiguous: scan left to right
        kept, previous_is_delimiter = [], False
        for start, end, delimiter in spans:
            glue = (delimiter and not previous_is_delimiter if behavior == "MergedWithPrevious"
                    else delimiter == previous_is_delimiter)
            if glue and kept:
                kept[-1] = (kept[-1][0], end)
            else:
                kept.append((start, end))
            previous_is_delimiter = delimiter
    return [(text[start:end], start) for start, end in kept if end > start]


def _byte_level(add_prefix_space: bool, use_regex: bool) -> PreTokenizer:
    """GPT-2's pre-tokenizer: a space before each piece (if asked), the GPT-2 regex split (if
    asked), then each UTF-8 byte written as its printable stand-in character."""
    regex = compile_pattern(GPT2_PATTERN)
    byte_char = bytes_to_unicode()

    def pre_tokenize(pieces: list[Piece]) -> list[Piece]:
        result = []
        for text, starts in pieces:
            if add_prefix_space and not text.startswith(" "):
                text = " " + text
            subs = [(m.group(0), m.start()) for m in regex.finditer(text)] if use_regex else [(text, 0)]
            result.extend(("".join(byte_char[b] for b in sub.encode("utf-8")), starts and start == 0)
                          for sub, start in subs if sub)
        return result
    return pre_tokenize


def _metaspace(config: dict, where: str) -> PreTokenizer:
    """Sentencepiece style: spaces become "▁" (U+2581), a "▁" is prepended (always, or only at
    the start of the input), and with split=True each "▁" starts a new piece."""
    replacement = config.get("replacement", "▁")
    scheme = _prepend_scheme(config, where)
    split = config.get("split", True)
    marker = re.compile(re.escape(replacement))

    def pre_tokenize(pieces: list[Piece]) -> list[Piece]:
        result = []
        for text, starts in pieces:
            text = text.replace(" ", replacement)
            if not text.startswith(replacement) and (scheme == "always" or (scheme == "first" and starts)):
                text = replacement + text
            subs = split_on(marker, text, "MergedWithNext") if split else [(text, 0)]
            result.extend((sub, starts and start == 0) for sub, start in subs)
        return result
    return pre_tokenize


def _prepend_scheme(config: dict, where: str) -> str:
    scheme = config.get("prepend_scheme")
    if scheme is None:  # files written before prepend_scheme existed
        scheme = "always" if config.get("add_prefix_space", True) else "never"
    if scheme not in ("always", "first", "never"):
        raise ValueError(f"{where}: Metaspace prepend_scheme {scheme!r} is not always, first or never")
    return scheme


# ---------------------------------------------------------------------------------------------
# Post-processors: the ids of the text -> with the special tokens add_special_tokens adds


def build_post_processor(config: dict | None, where: str) -> PostProcessor | None:
    if config is None:
        return None
    kind = config.get("type")
    if kind == "ByteLevel":  # only trims offsets, which we do not return
        return lambda ids: ids
    if kind == "TemplateProcessing":
        return _template(config, where)
    if kind in ("BertProcessing", "RobertaProcessing"):  # [CLS] A [SEP], as [token, id] pairs
        cls_id, sep_id = config["cls"][1], config["sep"][1]
        return lambda ids: [cls_id, *ids, sep_id]
    if kind == "Sequence":
        steps = [build_post_processor(step, where) for step in config.get("processors", [])]

        def process(ids: list[int]) -> list[int]:
            for step in steps:
                ids = step(ids)
            return ids
        return process
    raise _unsupported(where, "post_processor", config)


def _template(config: dict, where: str) -> PostProcessor:
    """TemplateProcessing's "single" template, e.g. [<|begin_of_text|>, $A]."""
    special = config.get("special_tokens", {})
    parts: list[list[int] | None] = []  # ids of a special token, or None for the text's ids
    for item in config.get("single", []):
        if "Sequence" in item:
            parts.append(None)
        elif "SpecialToken" in item and item["SpecialToken"].get("id") in special:
            parts.append(list(special[item["SpecialToken"]["id"]]["ids"]))
        else:
            raise ValueError(f"{where}: TemplateProcessing item {item!r:.80} names no known special token")

    def process(ids: list[int]) -> list[int]:
        return [i for part in parts for i in (ids if part is None else part)]
    return process


# ---------------------------------------------------------------------------------------------
# Decoders: list of tokens -> list of strings, joined at the end


def build_decoder(config: dict | None, where: str) -> Decoder | None:
    if config is None:
        return None
    kind = config.get("type")
    if kind == "ByteLevel":
        return _byte_level_decode
    if kind == "Replace":
        pattern, content = _pattern(where, config.get("pattern")), config.get("content", "")
        return lambda tokens: [pattern.sub(lambda _: content, token) for token in tokens]
    if kind == "ByteFallback":
        return _byte_fallback_decode
    if kind == "Fuse":
        return lambda tokens: ["".join(tokens)]
    if kind == "Strip":
        content, start, stop = config.get("content", " "), config.get("start", 0), config.get("stop", 0)
        return lambda tokens: [_strip_count(token, content, start, stop) for token in tokens]
    if kind == "Metaspace":
        replacement, scheme = config.get("replacement", "▁"), _prepend_scheme(config, where)
        # The first token loses its replacement characters (the prepended "▁"), unless never prepended.
        return lambda tokens: [token.replace(replacement, "" if i == 0 and scheme != "never" else " ")
                               for i, token in enumerate(tokens)]
    if kind == "BPEDecoder":  # end-of-word suffix such as "</w>" -> a space, none after the last
        suffix = config.get("suffix", "</w>")
        return lambda tokens: [token.replace(suffix, "" if i == len(tokens) - 1 else " ")
                               for i, token in enumerate(tokens)]
    if kind == "Sequence":
        steps = [build_decoder(step, where) for step in config.get("decoders", [])]

        def decode(tokens: list[str]) -> list[str]:
            for step in steps:
                tokens = step(tokens)
            return tokens
        return decode
    raise _unsupported(where, "decoder", config)


def _byte_level_decode(tokens: list[str]) -> list[str]:
    """Each token's stand-in characters back to bytes (a token with any other character, such as
    an added "<|im_start|>"-like token in another script, keeps its own UTF-8 bytes)."""
    char_byte = unicode_to_bytes()
    data = bytearray()
    for token in tokens:
        if all(char in char_byte for char in token):
            data.extend(char_byte[char] for char in token)
        else:
            data.extend(token.encode("utf-8"))
    return [data.decode("utf-8", errors="replace")]


_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _byte_fallback_decode(tokens: list[str]) -> list[str]:
    """Runs of "<0xE2>"-style byte tokens back to text; bytes that are not valid UTF-8 become one
    U+FFFD each, as in ``tokenizers``."""
    result, pending = [], bytearray()

    def flush():
        if pending:
            try:
                result.append(pending.decode("utf-8"))
            except UnicodeDecodeError:
                result.extend("\ufffd" for _ in pending)
            pending.clear()
    for token in tokens:
        byte = _BYTE_TOKEN.fullmatch(token)
        if byte:
            pending.append(int(byte.group(1), 16))
        else:
            flush()
            result.append(token)
    flush()
    return result


def _strip_count(token: str, content: str, start: int, stop: int) -> str:
    """token without up to ``start`` leading and ``stop`` trailing copies of ``content``."""
    begin = 0
    while begin < start and token[begin:begin + 1] == content:
        begin += 1
    end = len(token)
    while len(token) - end < stop and end > begin and token[end - 1:end] == content:
        end -= 1
    return token[begin:end]
