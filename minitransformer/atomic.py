"""Writing files so that a crash never leaves half of one.

Write to a temporary file beside the target, flush it to the disk, then rename it over the
target: a rename within one folder is atomic, so a reader sees the old file or the new one,
never a mixture, and an interrupted write leaves no stray temporary file behind.

The temporary file is created with mode 0o666 less the process's umask, as ``open()`` creates
any file (usually 0644), so every file of a run folder has the same permissions whether it was
written atomically or not. (``tempfile.mkstemp`` would make it 0600, readable by its owner only.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", encoding: str | None = None):
    """Open a temporary file for writing; on leaving the block without an error it replaces
    ``path``, on an error it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _create_temporary(path)
    try:
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty ``.NAME.RANDOM.tmp`` beside ``path``, opened for writing (O_EXCL: never one
    that exists already)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
