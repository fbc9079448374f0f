"""What ``git status`` says about the repository, to check that a command changed nothing in it."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def tree_state() -> dict[str, str]:
    """{path: status and content hash} of every changed or untracked file git does not ignore:
    empty for a clean checkout. The hash catches a command that rewrites a file that was
    already modified before it ran. Skips the test outside a git checkout."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to compare `git status` with")
    listing = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=REPO_ROOT,
                             capture_output=True, check=True).stdout.decode()
    state = {}
    entries = iter(listing.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":  # a rename or copy: its source path comes next
            next(entries, None)
        file = REPO_ROOT / path
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "-"
        state[path] = f"{status} {digest}"
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose status or content differs between two ``tree_state()``s."""
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
