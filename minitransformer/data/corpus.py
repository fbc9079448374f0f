"""Text to train on: the built-in corpus of standard-library docstrings, or a user's files.

Every CPython ships its standard library as source, and its docstrings are about 1.5 MB of
English technical prose: enough to train a small language model, with no download. We read
them with ``ast`` (module, class and function docstrings), skip tests and vendored code, and
cache the result, because parsing some 550 files takes a few seconds.

    text = stdlib_docstrings()            # built once, then read from the cache
    text = load_text("shakespeare.txt")   # or a folder of .txt files, for --data PATH
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
import warnings
from pathlib import Path

from ..atomic import atomic_write_text
from ..files import read_bytes

# Bump when the extraction rules change, so caches built by older rules are rebuilt.
CORPUS_FORMAT = 1

# Folders that hold tests, an IDE, third-party packages or build leftovers, not library prose.
SKIPPED_DIRS = frozenset(
    {"test", "tests", "idle_test", "idlelib", "site-packages", "dist-packages", "__pycache__"}
)

DOCUMENT_SEPARATOR = "\n\n"


def cache_dir() -> Path:
    """The folder for built corpora: $MINITRANSFORMER_CACHE, else $XDG_CACHE_HOME/minitransformer,
    else ~/.cache/minitransformer. Tests point MINITRANSFORMER_CACHE at a temporary folder."""
    if os.environ.get("MINITRANSFORMER_CACHE"):
        return Path(os.environ["MINITRANSFORMER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minitransformer"


def stdlib_dir() -> Path:
    """Where the running interpreter's standard library sources live."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_sources(root: str | Path) -> list[Path]:
    """The ``.py`` files under root, sorted by relative path, without tests, idlelib,
    site-packages or caches (folders named in SKIPPED_DIRS, files named ``test_*.py``)."""
    root = Path(root)
    sources = []
    for folder, subfolders, files in os.walk(root):
        # Pruning in place stops os.walk from descending into site-packages and test suites.
        subfolders[:] = [
            name for name in subfolders
            if name not in SKIPPED_DIRS and not name.startswith("config-")
        ]
        for name in files:
            if name.endswith(".py") and not name.startswith("test_"):
                sources.append(Path(folder, name))
    return sorted(sources, key=lambda path: path.relative_to(root).as_posix())


def source_docstrings(path: str | Path) -> list[str]:
    """The module, class and function docstrings of one Python file, in source order, cleaned
    with ``inspect.cleandoc``; an empty list for a file that does not parse (a Python 2
    leftover, an unknown encoding)."""
    try:
        with warnings.catch_warnings():  # old files trigger SyntaxWarnings (invalid escapes)
            warnings.simplefilter("ignore")
            tree = ast.parse(Path(path).read_bytes())  # bytes: ast honours the coding cookie
    except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
        return []
    docstrings = []
    pending = [tree]
    while pending:  # depth-first, so a class's docstring is followed by its methods'
        node = pending.pop()
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=True)  # clean=True: inspect.cleandoc
            if docstring:
                docstrings.append(docstring)
        pending.extend(reversed(list(ast.iter_child_nodes(node))))
    return docstrings


def stdlib_docstrings(cache: bool = True, root: str | Path | None = None) -> str:
    """The default training corpus: every docstring of the standard library, documents
    separated by a blank line, in sorted file order (the same text on every run).

    cache: read the corpus from, and write it to, ``cache_dir()``. The cache file is keyed by
        the Python version and a hash of the source list (each file's path, size and
        modification time: the same test ``.pyc`` files use), so an upgraded interpreter rebuilds it.
    root: read another Python source tree instead of the standard library.
    """
    root = Path(root) if root is not None else stdlib_dir()
    sources = python_sources(root)
    if not sources:
        raise ValueError(
            f"stdlib_docstrings: no Python sources under {root}; this interpreter ships "
            "without its library sources, so pass a text file or folder instead (--data PATH)"
        )
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    cache_file = cache_dir() / f"docstrings-{version}-{_fingerprint(root, sources)}.txt"
    if cache and cache_file.is_file():
        return cache_file.read_text(encoding="utf-8")
    text = DOCUMENT_SEPARATOR.join(doc for path in sources for doc in source_docstrings(path))
    if cache:
        _write_cache(cache_file, text, stale_pattern=f"docstrings-{version}-*.txt")
    return text


def _fingerprint(root: Path, sources: list[Path]) -> str:
    digest = hashlib.sha256(f"format {CORPUS_FORMAT}\n{root.resolve()}\n".encode())
    for path in sources:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _write_cache(cache_file: Path, text: str, stale_pattern: str) -> None:
    """Write to a temporary file and rename it, so a reader never sees half a corpus; then
    remove the corpora of older source lists. A cache we cannot write only costs time."""
    try:
        atomic_write_text(cache_file, text)
    except OSError as error:
        warnings.warn(f"stdlib_docstrings: could not cache the corpus in {cache_file.parent}: {error}")
        return
    for stale in cache_file.parent.glob(stale_pattern):
        if stale != cache_file:
            try:
                stale.unlink()
            except OSError:
                pass  # another process may hold it open; it is only disk space


MAX_TEXT_BYTES = 1 << 30  # 1 GiB of training text: the token ids alone take 8 GiB of int64


def load_text(path: str | Path) -> str:
    """The training text of ``--data PATH``: a UTF-8 text file, or a folder whose ``.txt``
    files (searched recursively, sorted by relative path) are joined with blank lines.

    Raises ValueError, naming the path, for a missing path, an empty file or folder, a file
    that is binary or not UTF-8, anything that is not a regular file (a FIFO or a device:
    reading one would hang or never end), or more than MAX_TEXT_BYTES in all.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"load_text: {path} does not exist; expected a text file or a folder of .txt files")
    if not path.is_dir():
        return _read_text_file(path, MAX_TEXT_BYTES)
    # a folder named "notes.txt" is a folder: rglob descends into it, and we skip its name
    files = sorted((file for file in path.rglob("*.txt") if not file.is_dir()),
                   key=lambda file: file.relative_to(path).as_posix())
    if not files:
        raise ValueError(f"load_text: folder {path} holds no .txt files")
    texts, budget = [], MAX_TEXT_BYTES
    for file in files:
        texts.append(_read_text_file(file, budget))
        budget -= len(texts[-1].encode("utf-8"))
    return DOCUMENT_SEPARATOR.join(texts)


def _read_text_file(path: Path, max_bytes: int) -> str:
    data = read_bytes(path, "load_text", max_bytes, "a UTF-8 text file")
    if not data.strip():
        raise ValueError(f"load_text: {path} is empty; expected some UTF-8 text")
    if b"\0" in data:
        raise ValueError(f"load_text: {path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")  # -sig: drop the byte-order mark some editors write
    except UnicodeDecodeError as error:
        raise ValueError(
            f"load_text: {path} is not UTF-8 text (invalid byte {data[error.start]:#04x} at "
            f"offset {error.start}); convert it, e.g. iconv -t UTF-8"
        ) from None
