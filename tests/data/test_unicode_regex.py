"""Tests for minitransformer/data/unicode_regex.py: \\p{...} classes for ``re`` built from
unicodedata, and Oniguruma patterns translated for ``re``."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, strategies as st

from minitransformer.data.unicode_regex import (
    GPT2_PATTERN, _category_runs, compile_pattern, property_ranges, translate,
)


def test_category_table_equals_a_scan_of_every_code_point():
    """The table looks up planes 0-3 and 14 only and takes the rest as known; a full scan with
    this Python's unicodedata must agree, or a newer Unicode version assigned characters there."""
    scanned = "".join(map(unicodedata.category, map(chr, range(sys.maxunicode + 1))))
    expected = [(m.start() // 2, m.end() // 2 - 1, m.group(1)) for m in re.finditer(r"(..)\1*", scanned)]
    merged = []
    for first, last, category in _category_runs():
        if merged and merged[-1][2] == category and merged[-1][1] + 1 == first:
            merged[-1] = (merged[-1][0], last, category)
        else:
            merged.append((first, last, category))
    assert merged == expected


@given(st.characters())
def test_property_classes_hold_exactly_the_characters_of_their_category(char):
    category = unicodedata.category(char)
    for name in ("L", "N", "Lu", "Nd", "P", "Zs"):
        assert bool(re.fullmatch(translate(rf"\p{{{name}}}"), char)) == category.startswith(name)
        assert bool(re.fullmatch(translate(rf"\P{{{name}}}"), char)) != category.startswith(name)
        assert bool(re.fullmatch(translate(rf"[^\p{{{name}}}]"), char)) != category.startswith(name)


@pytest.mark.parametrize(("char", "numeric"), [("²", True), ("½", True), ("Ⅻ", True), ("٣", True), ("x", False)])
def test_p_n_holds_the_numbers_that_backslash_d_misses(char, numeric):
    assert bool(compile_pattern(r"\p{N}").fullmatch(char)) == numeric
    assert bool(re.fullmatch(r"\d", char)) == (unicodedata.category(char) == "Nd")


def test_whitespace_is_unicode_white_space_not_python_isspace():
    """Oniguruma's \\s is the White_Space property: U+001C-U+001F are not in it, though
    Python's \\s and str.isspace() say they are."""
    assert re.fullmatch(r"\s", "\x1c") and "\x1c".isspace()
    assert not compile_pattern(r"\s").fullmatch("\x1c")
    assert compile_pattern(r"\S").fullmatch("\x1c")
    for char in "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000":
        assert compile_pattern(r"\s").fullmatch(char), hex(ord(char))


@given(st.text())
def test_gpt2_pieces_join_back_to_the_text(text):
    assert "".join(compile_pattern(GPT2_PATTERN).findall(text)) == text


def test_gpt2_pattern_splits_numbers_by_category():
    assert compile_pattern(GPT2_PATTERN).findall("x² 12345 Ⅻ's") == ["x", "²", " 12345", " Ⅻ", "'s"]


def test_unknown_property_is_an_error():
    with pytest.raises(ValueError, match=r"\\p\{Greek\} is not a supported property"):
        translate(r"\p{Greek}")


def test_property_ranges_are_sorted_and_disjoint():
    ranges = property_ranges("L")
    assert all(a[1] + 1 < b[0] for a, b in zip(ranges, ranges[1:]))


@pytest.mark.parametrize(("pattern", "text", "pieces"), [
    (r"[a-c\-]+", "abc-d-", ["abc-", "-"]),                 # a range and an escaped dash
    (r"[]x]+", "]x]y", ["]x]"]),                            # "]" first in a class is a character
    (r"[^\r\n\p{L}]+", "ab, 12\ncd", [", 12"]),             # negated union of escapes and a property
    (r"\x{e9}|\u00e8|\x41", "éèAB", ["é", "è", "A"]),       # code-point escapes
    (r"\bis\b", "this is", ["is"]),                         # an anchor is kept
    (r"(?i:'s|'t)", "'S 't", ["'S", "'t"]),                    # case-insensitive group
])
def test_translate_reads_oniguruma_classes_and_escapes(pattern, text, pieces):
    assert compile_pattern(pattern).findall(text) == pieces


def test_astral_characters_match_their_classes():
    """Classes keep their part above U+FFFF apart (for speed); it must still match."""
    assert compile_pattern(r"\p{L}+").findall("𝔘𝔫𝔦 🌍 a") == ["𝔘𝔫𝔦", "a"]
    assert compile_pattern(r"[^\s\p{L}\p{N}]+").findall("𝔘🌍🚀 𝟙") == ["🌍🚀"]


def test_set_operations_are_refused():
    with pytest.raises(ValueError, match=r"nested classes and && .* are not supported"):
        translate(r"[\p{L}&&[^a]]")
