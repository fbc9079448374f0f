"""Tests for minitransformer/data/corpus.py: docstring extraction, the cache, and load_text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minitransformer.data.corpus import (
    cache_dir, load_text, python_sources, source_docstrings, stdlib_docstrings,
)

MODULE_SOURCE = '''"""Module docstring."""


class Parser:
    """Parse things.

    Details:
        indented lines keep their relative indent.
    """

    def feed(self, data):
        """Feed data to the parser."""

        def helper():
            """Nested helper."""

    async def close(self):
        """Close the parser."""


def undocumented():
    pass
'''


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.fixture
def source_tree(tmp_path) -> Path:
    """A small stand-in for the standard library, with everything the extractor must skip."""
    root = tmp_path / "lib"
    write(root / "b_module.py", MODULE_SOURCE)
    write(root / "a_module.py", '"""First by sorted path."""\n')
    write(root / "pkg" / "__init__.py", '"""A package."""\n')
    write(root / "pkg" / "latin.py", '# -*- coding: latin-1 -*-\n"""Caf\xe9 au lait."""\n'.encode("latin-1"))
    write(root / "pkg" / "python2.py", 'print "old"\n"""Never seen."""\n')
    write(root / "pkg" / "test_pkg.py", '"""A test module."""\n')
    for skipped in ("test", "tests", "idlelib", "site-packages", "__pycache__", "pkg/tests"):
        write(root / skipped / "inside.py", '"""Skipped folder."""\n')
    return root


def test_python_sources_skips_tests_idlelib_site_packages_and_caches(source_tree):
    names = [path.relative_to(source_tree).as_posix() for path in python_sources(source_tree)]
    assert names == ["a_module.py", "b_module.py", "pkg/__init__.py", "pkg/latin.py", "pkg/python2.py"]


def test_source_docstrings_are_in_source_order_and_cleaned(source_tree):
    assert source_docstrings(source_tree / "b_module.py") == [
        "Module docstring.",
        "Parse things.\n\nDetails:\n    indented lines keep their relative indent.",
        "Feed data to the parser.",
        "Nested helper.",
        "Close the parser.",
    ]


def test_source_docstrings_honour_the_coding_cookie_and_skip_unparsable_files(source_tree):
    assert source_docstrings(source_tree / "pkg" / "latin.py") == ["Café au lait."]
    assert source_docstrings(source_tree / "pkg" / "python2.py") == []


def test_corpus_joins_documents_with_blank_lines_in_sorted_file_order(source_tree):
    text = stdlib_docstrings(cache=False, root=source_tree)
    documents = text.split("\n\n")
    assert documents[:2] == ["First by sorted path.", "Module docstring."]
    assert documents[-2:] == ["A package.", "Café au lait."]
    assert "Skipped folder." not in text and "A test module." not in text


def test_the_cache_is_written_atomically_and_then_reused(source_tree):
    text = stdlib_docstrings(root=source_tree)
    cached = list(cache_dir().iterdir())
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    assert len(cached) == 1 and cached[0].name.startswith(f"docstrings-{version}-")
    assert cached[0].read_text(encoding="utf-8") == text
    # A second call must read the file, not rebuild: a marked cache comes back as it is.
    cached[0].write_text("from the cache", encoding="utf-8")
    assert stdlib_docstrings(root=source_tree) == "from the cache"


def test_a_changed_source_makes_the_cache_stale(source_tree):
    stdlib_docstrings(root=source_tree)
    old_cache = next(cache_dir().iterdir())
    write(source_tree / "a_module.py", '"""First, and now longer."""\n')
    text = stdlib_docstrings(root=source_tree)
    assert text.startswith("First, and now longer.")
    assert [path.name for path in cache_dir().iterdir()] != [old_cache.name]  # old one removed
    assert len(list(cache_dir().iterdir())) == 1


def test_cache_false_writes_nothing(source_tree):
    stdlib_docstrings(cache=False, root=source_tree)
    assert not cache_dir().exists()


def test_cache_dir_follows_xdg_when_not_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("MINITRANSFORMER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "minitransformer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "minitransformer"


def test_a_tree_without_sources_is_an_error_that_suggests_data(tmp_path):
    with pytest.raises(ValueError, match=r"stdlib_docstrings: no Python sources under .*--data PATH"):
        stdlib_docstrings(root=tmp_path)


def test_an_unwritable_cache_only_warns(source_tree, monkeypatch, tmp_path):
    blocker = write(tmp_path / "not_a_folder", "a file where the cache folder should be")
    monkeypatch.setenv("MINITRANSFORMER_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="could not cache the corpus"):
        text = stdlib_docstrings(root=source_tree)
    assert text.startswith("First by sorted path.")


def test_the_real_standard_library_gives_about_a_megabyte_and_a_half_of_prose():
    text = stdlib_docstrings()
    assert 1_000_000 < len(text.encode("utf-8")) < 3_000_000
    assert "Return" in text and "asyncio" in text
    assert [path.suffix for path in cache_dir().iterdir()] == [".txt"]  # no temporary files left


# load_text: the --data PATH of the command line.

def test_load_text_reads_a_utf8_file_and_drops_a_byte_order_mark(tmp_path):
    assert load_text(write(tmp_path / "a.txt", "héllo 🌍\n")) == "héllo 🌍\n"
    assert load_text(write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello")) == "hello"


def test_load_text_joins_a_folders_txt_files_in_sorted_order(tmp_path):
    write(tmp_path / "b.txt", "second")
    write(tmp_path / "a.txt", "first")
    write(tmp_path / "sub" / "c.txt", "third")
    write(tmp_path / "notes.md", "not text data")
    assert load_text(tmp_path) == "first\n\nsecond\n\nthird"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"load_text: .*empty\.txt is empty"),
        (b"  \n", r"load_text: .*empty\.txt is empty"),
        (b"ab\0cd", r"load_text: .*empty\.txt looks binary"),
        (b"caf\xe9", r"load_text: .*empty\.txt is not UTF-8 text \(invalid byte 0xe9 at offset 3\)"),
    ],
)
def test_load_text_rejects_empty_binary_and_non_utf8_files(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        load_text(write(tmp_path / "empty.txt", content))


def test_load_text_rejects_a_missing_path_and_a_folder_without_txt(tmp_path):
    with pytest.raises(ValueError, match=r"load_text: .*nowhere does not exist"):
        load_text(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"load_text: folder .* holds no \.txt files"):
        load_text(tmp_path)

