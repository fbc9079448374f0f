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
code points (about 0.4 s, on the first pattern that needs it, then cached), and ``re`` compiles
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
import itertools
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

_TOKEN = re.compile(r"\\[pP]\{\^?(\w+)\}|\\.|\[|\]|[^\\\[\]]+", re.DOTALL)


@functools.cache
def _category_runs() -> tuple[tuple[int, int, str], ...]:
    """(first, last, category) for every run of code points sharing a general category."""
    runs = []
    category_of = unicodedata.category
    code_points = range(sys.maxunicode + 1)
    for category, group in itertools.groupby(code_points, key=lambda c: category_of(chr(c))):
        first = next(group)
        last = first
        for last in group:
            pass
        runs.append((first, last, category))
    return tuple(runs)


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


def _class_body(ranges) -> str:
    """The inside of a ``[...]`` class for these ranges, every code point escaped."""
    return "".join(f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}"
                   for first, last in ranges)


def _escape_ranges(escape: str) -> tuple[list[tuple[int, int]], bool]:
    """(ranges, negated) of a class escape, or None when the escape is not a class."""
    word = [*property_ranges("L"), *property_ranges("M"), *property_ranges("Nd"),
            *property_ranges("Pc")]  # Oniguruma's Unicode \w
    table = {"\\s": (list(WHITE_SPACE), False), "\\S": (list(WHITE_SPACE), True),
             "\\w": (word, False), "\\W": (word, True),
             "\\d": (list(property_ranges("Nd")), False), "\\D": (list(property_ranges("Nd")), True)}
    return table.get(escape)


@functools.cache
def translate(pattern: str) -> str:
    """An Oniguruma pattern rewritten for ``re`` with explicit Unicode classes (see the module
    docstring); ValueError naming an unsupported property."""
    out: list[str] = []
    depth = 0  # inside [...] when > 0 (nested classes are not used by the patterns we read)
    for match in _TOKEN.finditer(pattern):
        token = match.group(0)
        if token == "[":
            depth += 1
            out.append(token)
            continue
        if token == "]" and depth:
            depth -= 1
            out.append(token)
            continue
        if match.group(1) is not None or _escape_ranges(token) is not None:
            if match.group(1) is not None:
                negated = token[1] == "P" or token[3] == "^"
                ranges = list(property_ranges(match.group(1)))
            else:
                ranges, negated = _escape_ranges(token)
            if depth:  # inside a class: a negated escape becomes its complement's ranges
                out.append(_class_body(_complement(ranges) if negated else ranges))
            else:
                out.append(("[^" if negated else "[") + _class_body(ranges) + "]")
            continue
        out.append(token)
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
