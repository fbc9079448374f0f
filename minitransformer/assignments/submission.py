"""Reading a submission without trusting it: which files it holds, as text, or why not.

A submission is a folder (a copy of the project, a Gradescope upload of bare files, either one
nested a folder or two deeper) or a .zip of one. Only regular files are read: a symbolic link
(``autograd.py -> /etc/shadow``), a file outside the folder, a file over ``MAX_BYTES`` or one
that is not UTF-8 text is refused with a note, never opened through the link. A zip is
unpacked member by member with the same limits (no absolute paths, no "..", no links).
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

MAX_BYTES = 1_000_000  # per submitted file
MAX_ZIP_BYTES = 50_000_000
MAX_ZIP_MEMBERS = 5_000
SKIPPED_FOLDERS = {"__pycache__", ".git", ".hypothesis", ".pytest_cache", "node_modules", "__MACOSX"}


def unpack_zip(archive: Path, into: Path) -> list[str]:
    """Extract a zipped submission safely; returns notes on the members left out."""
    notes, total = [], 0
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise ValueError(f"grade: {archive} has {len(members)} members; expected at most {MAX_ZIP_MEMBERS}")
            for member in members:
                name = member.filename
                parts = Path(name).parts
                mode = member.external_attr >> 16
                if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    notes.append(f"{name}: a path outside the submission: left out")
                    continue
                if stat.S_ISLNK(mode):
                    notes.append(f"{name}: a symbolic link: left out")
                    continue
                if member.is_dir():
                    continue
                total += member.file_size
                if member.file_size > MAX_BYTES or total > MAX_ZIP_BYTES:
                    notes.append(f"{name}: over the size limit ({MAX_BYTES} bytes a file): left out")
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source:
                    data = source.read(MAX_BYTES + 1)
                target.write_bytes(data[:MAX_BYTES])
    except zipfile.BadZipFile as error:
        raise ValueError(f"grade: {archive} is not a readable zip file ({error})") from None
    return notes


def _candidates(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, posix), without descending into links."""
    found = []
    for directory, subfolders, files in os.walk(folder, followlinks=False):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_FOLDERS)
        base = Path(directory).relative_to(folder)
        found += [(base / f).as_posix() for f in sorted(files)]
    return found


def read_regular_file(path: Path, within: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, why it was refused)."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return None, f"cannot be read ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return None, "is a symbolic link (refused: hand in the file itself)"
    if not stat.S_ISREG(info.st_mode):
        return None, "is not a regular file (refused)"
    real_parent = Path(os.path.realpath(path.parent))
    if real_parent != Path(os.path.realpath(within)) and Path(os.path.realpath(within)) not in real_parent.parents:
        return None, "lies outside the submission (refused)"
    if info.st_size > MAX_BYTES:
        return None, f"has {info.st_size} bytes, over the limit of {MAX_BYTES} (refused)"
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        return None, f"cannot be opened ({error.strerror})"
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "is not UTF-8 text (refused)"


def find_files(submission: Path, wanted: list[str]) -> tuple[dict[str, tuple[str | None, str | None]], list[str]]:
    """{wanted path: (text, problem)} for the files found, and notes.

    A file is found at its path in a project copy, or by its name alone (Gradescope puts
    uploads side by side), at any depth: the candidate whose path ends with the longest part of
    the wanted path wins, then the shallowest one."""
    candidates = _candidates(submission)
    found, notes = {}, []
    for relative in wanted:
        parts = Path(relative).parts
        best, best_key = None, None
        for candidate in candidates:
            have = Path(candidate).parts
            if have[-1] != parts[-1]:
                continue
            matched = 0
            while matched < min(len(have), len(parts)) and have[-1 - matched] == parts[-1 - matched]:
                matched += 1
            key = (-matched, len(have))
            if best_key is None or key < best_key:
                best, best_key = candidate, key
        if best is None:
            continue
        if best != relative:
            notes.append(f"{relative}: graded the submission's {best}")
        found[relative] = read_regular_file(submission / best, submission)
    return found, notes
