"""Every relative link in the course (lessons/*.md) and the README points to a file that exists.

Lessons link to the modules that implement a formula and to the tests that verify it; a renamed
file must not leave a dead link behind. Absolute URLs (http, https, mailto) and in-page anchors
are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted((REPO_ROOT / "lessons").glob("*.md")) + [REPO_ROOT / "README.md"]

# [text](target) and ![alt](target); the target stops at whitespace or ")" (an optional "title" follows)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def _links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link outside fenced code blocks."""
    links, in_code = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.strip()):
            in_code = not in_code
            continue
        if in_code:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        links += [(number, target) for target in LINK.findall(line)]
    return links


def _is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("#")


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d.exists()], ids=lambda p: p.name)
def test_relative_links_point_to_existing_files(document: Path):
    broken = []
    for number, target in _links(document):
        if not _is_relative(target):
            continue
        relative = target.split("#", 1)[0].split("?", 1)[0]
        if relative and not (document.parent / relative).exists():
            broken.append(f"{document.relative_to(REPO_ROOT)}:{number}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_link_pattern_finds_links_and_images():
    text = 'see [the op](../minitransformer/ops/attention.py) and ![map](figures/09_a.png "title")'
    assert [m for m in LINK.findall(text)] == ["../minitransformer/ops/attention.py", "figures/09_a.png"]
