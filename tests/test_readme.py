"""The README's code runs and prints exactly what the comment beside each print says."""

from __future__ import annotations

import contextlib
import io
import re

from tests.worktree import REPO_ROOT


def test_the_readme_snippet_prints_what_it_computes():
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "README.md", "exec"), {"__name__": "__readme__"})
    lines = printed.getvalue().splitlines()
    expected = re.findall(r"^print\(.*#\s*(.*)$", snippet, flags=re.MULTILINE)  # each print's comment
    assert len(expected) == 4 and lines == expected
