"""Unicode property classes (\\p{L}, \\p{N}, ...) for the standard library's ``re``.

Pre-tokenizers split text with patterns such as GPT-2's ``?\\p{L}+| ?\\p{N}+``, written for
Oniguruma, the regular-expression engine of Hugging Face ``tokenizers``. Python's ``re`` has
no ``\\p{...}``, and its nearest classes are not the same sets: ``\\d`` is only the decimal
digits (Nd), so "²" (No, "other number") or "Ⅻ" (Nl) is not a digit to ``re`` but is \\p{N};
``[^\\W\\d_]`` (letters) also drops letters that are numeric; ``\\s`` includes the separators
U+001C-U+001F, which Unicode's White_Space property (Oniguruma's ``\\s``) does not.

Three ways out: depend on the third-party ``regex`` package (the runtime may not), scan the
text by hand in Python (slow), or build each class once as an explicit character class of
code-point ranges from ``unicodedata`` and hand it to ``re``. We do the last: one pass over the
code points (about 0.1 s, on the first pattern that needs it, then cached), and ``re`` compiles
a large class into a lookup table, so matching stays as fast as with ``\\w``.

``translate(pattern)`` rewrites an Oniguruma pattern into an equivalent ``re`` pattern: it
replaces ``\\p{X}``, ``\\P{X}``, ``\\s``, ``\\S``, ``\\w``, ``\\W`` and ``\\d`` (inside and outside
``[...]``) by explicit ranges and keeps everything else (alternation, lookahead, ``(?i:...)``,
quantifiers), which both engines read alike.

Where the tables can differ: ``unicodedata`` follows the Unicode version of the running
Python (14.0 in Python 3.11, 15.0 in 3.12, 15.1 in 3.13), Oniguruma its own. A character
assigned in a newer version (e.g. the CJK Extension H ideographs of Unicode 15.0) is "not a
letter" (Cn, unassigned) to an older table, so such rare characters can split differently.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# Unicode's White_Space property (PropList.txt), which Oniguruma's \s and Rust's
# char::is_whitespace use. Stable since Unicode 6.3 (when U+180E left it).
WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
               (0x3000, 0x3000))

# The pre-tokenization patterns of the models we read, verbatim from their tokenizer.json.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
                  r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                 r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


# Planes 4-13 hold no characters and planes 15-16 only private use (Co) with two
# noncharacters (Cn) at the end of each, in every Unicode version so far, so only planes 0-3 and
# 14 are looked up (a quarter of the code points: the table takes 0.1 s instead of 0.4 s).
# tests/data/test_unicode_regex.py checks this against a scan of every code point.
_LOOKED_UP = (range(0x00000, 0x40000), range(0xE0000, 0xF0000))
_KNOWN_RUNS = ((0x40000, 0xDFFFF, "Cn"), (0xF0000, 0xFFFFD, "Co"), (0xFFFFE, 0xFFFFF, "Cn"),
               (0x100000, 0x10FFFD, "Co"), (0x10FFFE, 0x10FFFF, "Cn"))


@functools.cache
def _category_runs() -> tuple[tuple[int, int, str], ...]:
    """(first, last, category) for every run of code points sharing a general category."""
    runs = list(_KNOWN_RUNS)
    for block in _LOOKED_UP:
        # Two letters per code point ("Lu", "Nd", ...) in one string, then a run of equal
        # categories is a regex match "(..)\1*": C-speed loops instead of a Python loop.
        categories = "".join(map(unicodedata.category, map(chr, block)))
        for match in re.finditer(r"(..)\1*", categories):
            runs.append((block.start + match.start() // 2, block.start + match.end() // 2 - 1, match.group(1)))
    return tuple(sorted(runs))


@functools.cache
def property_ranges(name: str) -> tuple[tuple[int, int], ...]:
    """The code-point ranges of a general category ("Lu", "Nd") or its major class ("L", "N")."""
    if not (len(name) in (1, 2) and name[0] in "LMNPSZC"):
        raise ValueError(f"unicode_regex: \\p{{{name}}} is not a supported property; expected a "
                         f"general category such as L, N, Lu or Nd")
    ranges: list[tuple[int, int]] = []
    for first, last, category in _category_runs():
        if category.startswith(name):
            if ranges and ranges[-1][1] + 1 == first:
                ranges[-1] = (ranges[-1][0], last)
            else:
                ranges.append((first, last))
    return tuple(ranges)


def _complement(ranges) -> list[tuple[int, int]]:
    result, start = [], 0
    for first, last in sorted(ranges):
        if first > start:
            result.append((start, first - 1))
        start = max(start, last + 1)
    if start <= sys.maxunicode:
        result.append((start, sys.maxunicode))
    return result


def _class_expression(ranges) -> str:
    """A ``re`` expression matching one character of ``ranges``.

    ``re`` compiles the part of a class below U+10000 into a lookup table but tests the ranges
    above it one by one, for every character that is not in the table: with the 300 astral
    ranges of \p{L}, matching ran three times slower. So the astral part is its own class,
    tried only after a one-range test that the character is astral at all.
    """
    ranges = _complement(_complement(ranges))  # sorted and merged
    bmp = [(first, min(last, 0xFFFF)) for first, last in ranges if first <= 0xFFFF]
    astral = [(max(first, 0x10000), last) for first, last in ranges if last > 0xFFFF]
    parts = []
    if bmp:
        parts.append("[" + _class_body(bmp) + "]")
    if astral:
        parts.append("(?=[\U00010000-\U0010ffff])[" + _class_body(astral) + "]")
    if not parts:
        return "(?!)"  # the empty set
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _class_body(ranges) -> str:
    """The inside of a ``[...]`` class for these ranges, every code point escaped."""
    return "".join(f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}"
                   for first, last in ranges)


_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "e": "\x1b"}
_ESCAPE = re.compile(r"\\(?:([pP])\{(\^?)(\w+)\}|([sSwWdD])|x\{([0-9a-fA-F]+)\}|x([0-9a-fA-F]{2})"
                     r"|u([0-9a-fA-F]{4})|(.))", re.DOTALL)


def _escape_class(match: re.Match) -> list[tuple[int, int]] | None:
    """The ranges of a class escape (\\p{L}, \\P{N}, \\s, \\W, ...), or None for an escaped character."""
    if match.group(1):
        ranges = list(property_ranges(match.group(3)))
        negated = (match.group(1) == "P") != (match.group(2) == "^")
    elif match.group(4):
        letter = match.group(4)
        ranges = {"s": list(WHITE_SPACE),
                  "w": [*property_ranges("L"), *property_ranges("M"), *property_ranges("Nd"),
                        *property_ranges("Pc")],  # Oniguruma's Unicode \w
                  "d": list(property_ranges("Nd"))}[letter.lower()]
        negated = letter.isupper()
    else:
        return None
    return _complement(ranges) if negated else ranges


def _escape_char(match: re.Match) -> str:
    """The character an escape such as \\n, \\x41, \\u00e9 or \\- stands for."""
    hex_digits = match.group(5) or match.group(6) or match.group(7)
    if hex_digits:
        return chr(int(hex_digits, 16))
    return _SIMPLE_ESCAPES.get(match.group(8), match.group(8))


def _parse_class(pattern: str, start: int) -> tuple[list[tuple[int, int]], int]:
    """The ranges of the bracket class starting at pattern[start] == "[" and the index after it."""
    i = start + 1
    negated = pattern.startswith("^", i)
    i += negated
    ranges: list[tuple[int, int]] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        first = False
        if pattern[i] == "[" or pattern.startswith("&&", i):
            raise ValueError(f"unicode_regex: nested classes and && in {pattern!r:.80} are not supported")
        if pattern[i] == "\\":
            escape = _ESCAPE.match(pattern, i)
            if escape is None:
                raise ValueError(f"unicode_regex: the pattern {pattern!r:.80} ends in a backslash")
            i = escape.end()
            escaped_ranges = _escape_class(escape)
            if escaped_ranges is not None:
                ranges.extend(escaped_ranges)
                continue
            low = _escape_char(escape)
        else:
            low, i = pattern[i], i + 1
        high = low
        if pattern.startswith("-", i) and i + 1 < len(pattern) and pattern[i + 1] != "]":
            if pattern[i + 1] == "\\":
                escape = _ESCAPE.match(pattern, i + 1)
                high, i = _escape_char(escape), escape.end()
            else:
                high, i = pattern[i + 1], i + 2
        ranges.append((ord(low), ord(high)))
    if i >= len(pattern):
        raise ValueError(f"unicode_regex: unterminated [ in {pattern!r:.80}")
    return (_complement(ranges) if negated else ranges), i + 1


@functools.cache
def translate(pattern: str) -> str:
    """An Oniguruma pattern rewritten for ``re``: every bracket class and every class escape
    (\\p{X}, \\P{X}, \\s, \\S, \\w, \\W, \\d, \\D) becomes explicit code-point ranges (see
    ``_class_expression``); the rest (alternation, groups, lookahead, (?i:...), quantifiers),
    which both engines read alike, is kept. ValueError naming an unsupported property."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            ranges, i = _parse_class(pattern, i)
            out.append(_class_expression(ranges))
        elif pattern[i] == "\\":
            escape = _ESCAPE.match(pattern, i)
            if escape is None:
                raise ValueError(f"unicode_regex: the pattern {pattern!r:.80} ends in a backslash")
            escaped_ranges = _escape_class(escape)
            if escaped_ranges is not None:
                out.append(_class_expression(escaped_ranges))
            elif escape.group(8) is not None and escape.group(8).isalnum() and escape.group(8) not in _SIMPLE_ESCAPES:
                out.append(escape.group(0))  # an anchor or reference such as \\b, \\A, \\1
            else:
                out.append(re.escape(_escape_char(escape)))
            i = escape.end()
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern:
    """``translate(pattern)`` compiled; ValueError if ``re`` cannot read the result."""
    try:
        return re.compile(translate(pattern))
    except re.error as error:
        raise ValueError(f"unicode_regex: cannot compile the pattern {pattern!r:.80} ({error})") from None


def is_numeric(char: str) -> bool:
    """Rust's ``char::is_numeric``: general category Nd, Nl or No (so "²" is numeric)."""
    return unicodedata.category(char)[0] == "N"


def is_white_space(char: str) -> bool:
    """Unicode's White_Space property (Rust's ``char::is_whitespace``)."""
    code = ord(char)
    return any(first <= code <= last for first, last in WHITE_SPACE)
