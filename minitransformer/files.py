"""Reading input files with bounds: only regular files, and never more bytes than a limit.

A path on the command line can name anything: a folder, a FIFO (reading it waits forever for
a writer), a device such as /dev/zero (endless bytes), or a file far larger than memory. Every
loader reads through ``read_bytes``, which checks the kind and the size first, so each of those
becomes a one-line error naming the file instead of a hang, a MemoryError or a traceback.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MiB = 1 << 20


def check_regular_file(path: str | os.PathLike, what: str, expected: str = "a file") -> os.stat_result:
    """The stat of ``path`` after checking it is a regular file (symlinks to one are fine);
    otherwise a ValueError naming ``what``, the path and the ``expected`` kind of file."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{what}: {path} does not exist; expected {expected}") from None
    except OSError as error:
        raise ValueError(f"{what}: cannot read {path} ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{what}: {path} is a folder; expected {expected}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what}: {path} is not a regular file (a FIFO, socket or device); expected {expected}")
    return info


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int, expected: str = "a file") -> bytes:
    """The contents of a regular file of at most ``max_bytes`` bytes."""
    info = check_regular_file(path, what, expected)
    if info.st_size > max_bytes:
        raise ValueError(f"{what}: {path} is {info.st_size / MiB:,.1f} MiB; the limit is "
                         f"{max_bytes / MiB:,.0f} MiB")
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # + 1: a file that grew after stat still fails
    except OSError as error:
        raise ValueError(f"{what}: cannot read {path} ({error.strerror})") from None
    if len(data) > max_bytes:
        raise ValueError(f"{what}: {path} holds more than {max_bytes / MiB:,.0f} MiB")
    return data


def read_text(path: str | os.PathLike, what: str, max_bytes: int, expected: str = "a UTF-8 text file") -> str:
    """A UTF-8 text file (a byte-order mark is dropped) of at most ``max_bytes`` bytes."""
    data = read_bytes(path, what, max_bytes, expected)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what}: {path} is not UTF-8 text (invalid byte {data[error.start]:#04x} at "
                         f"offset {error.start})") from None


def parse_json(text: str, what: str):
    """Strict JSON: no NaN or Infinity constants, no key given twice in an object, and nesting
    too deep for the parser is an error rather than a RecursionError."""

    def no_constant(name):
        raise ValueError(f"{what}: {name} is not a JSON number")

    def unique_keys(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise ValueError(f"{what}: key {key!r} appears twice in one object")
            seen[key] = value
        return seen

    try:
        return json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise ValueError(f"{what}: not valid JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply") from None


def read_json(path: str | os.PathLike, what: str, max_bytes: int = 64 * MiB):
    """The parsed contents of a strict JSON file (see ``parse_json``) of at most ``max_bytes``."""
    return parse_json(read_text(path, what, max_bytes, "a JSON file"), f"{what}: {path}")
