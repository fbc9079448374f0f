"""Solution regions: find them, and turn a solution file into a student file.

A region is a block of whole lines between two comment lines, at the indentation of the code
they enclose:

    def backward(self, grad):
        \"\"\"docstring (stays in the student copy)\"\"\"
        # BEGIN SOLUTION a2
        a, b = self.saved
        return grad * b, grad * a
        # END SOLUTION a2

In the student copy of assignment a2 the lines between the markers become one
``raise NotImplementedError("a2: ...")`` at the same indentation; every other assignment's
region keeps its code and loses only its two marker lines. Regions do not nest.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION (?P<id>\S+)[ \t]*$")
END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION (?P<id>\S+)[ \t]*$")
_DEFINITION = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+(?P<name>\w+)")


class MarkerError(ValueError):
    """Solution markers that don't pair up: the message names the file and the line."""


@dataclass(frozen=True)
class Region:
    """One solution region: lines ``begin`` and ``end`` (1-based) are the marker lines."""

    path: str
    assignment: str
    begin: int
    end: int
    indent: str
    where: str  # the enclosing definition, e.g. "Mul.backward", or "module level"

    @property
    def code_lines(self) -> int:
        return self.end - self.begin - 1


def find_regions(text: str, path: str = "<text>") -> list[Region]:
    """Every solution region of a source file, in order; raises MarkerError on bad markers."""
    lines = text.splitlines()
    regions, open_begin = [], None
    for number in _comment_lines(text):
        line = lines[number - 1]
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_begin is not None:
                raise MarkerError(
                    f"{path}:{number}: BEGIN SOLUTION {begin['id']} inside the region of "
                    f"{open_begin[1]['id']} opened at line {open_begin[0]}; regions don't nest"
                )
            open_begin = (number, begin)
        elif end:
            if open_begin is None:
                raise MarkerError(f"{path}:{number}: END SOLUTION {end['id']} without a BEGIN")
            start, match = open_begin
            if end["id"] != match["id"]:
                raise MarkerError(
                    f"{path}:{number}: END SOLUTION {end['id']} closes BEGIN SOLUTION "
                    f"{match['id']} of line {start}"
                )
            if end["indent"] != match["indent"]:
                raise MarkerError(
                    f"{path}:{number}: END SOLUTION {end['id']} is not indented like its BEGIN "
                    f"(line {start})"
                )
            regions.append(Region(path, match["id"], start, number, match["indent"],
                                  _enclosing_definition(lines, start, match["indent"])))
            open_begin = None
    if open_begin is not None:
        raise MarkerError(f"{path}:{open_begin[0]}: BEGIN SOLUTION {open_begin[1]['id']} is never closed")
    return regions


def _comment_lines(text: str) -> list[int]:
    """Numbers of the lines that hold only a comment (so a marker quoted in a string or a
    docstring, like the one at the top of this file, is not a marker)."""
    numbers = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and token.line.strip() == token.string.strip():
            numbers.append(token.start[0])
    return numbers


def _enclosing_definition(lines: list[str], line_number: int, indent: str) -> str:
    """The dotted name of the def/class that encloses a line, found by indentation."""
    names, width = [], len(indent.expandtabs())
    for line in reversed(lines[: line_number - 1]):
        match = _DEFINITION.match(line)
        if match and len(match["indent"].expandtabs()) < width:
            names.append(match["name"])
            width = len(match["indent"].expandtabs())
            if width == 0:
                break
    return ".".join(reversed(names)) or "module level"


def student_version(text: str, assignment: str, hint: str, path: str = "<text>") -> tuple[str, list[Region]]:
    """The file as a student of ``assignment`` gets it, and the regions that were removed.

    ``hint`` ends the NotImplementedError's message (e.g. "see lessons/03_tensor_engine.md").
    """
    regions = find_regions(text, path)
    lines = text.splitlines(keepends=True)
    marker_lines = {r.begin for r in regions} | {r.end for r in regions}
    removed = [r for r in regions if r.assignment == assignment]
    removed_lines = {n for r in removed for n in range(r.begin, r.end + 1)}
    out = []
    for number, line in enumerate(lines, start=1):
        region = next((r for r in removed if r.begin == number), None)
        if region is not None:
            message = f"{assignment}: write {region.where} ({hint})".replace('"', "'")
            out.append(f'{region.indent}raise NotImplementedError("{message}")\n')
        elif number not in removed_lines and number not in marker_lines:
            out.append(line)
    student = "".join(out)
    compile(student, path, "exec")  # a marker in the wrong place shows here, not in class
    return student, removed


def without_hidden_tests(text: str, path: str = "<text>") -> str | None:
    """A test file without its ``@pytest.mark.hidden`` tests (functions or classes), or None
    when the whole module is hidden (a module-level ``pytestmark`` that includes it)."""
    tree = ast.parse(text, path)
    drop = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            if _mentions_hidden_mark(node.value):
                return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if any(_mentions_hidden_mark(d) for d in node.decorator_list):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                drop.append((first, node.end_lineno))
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    dropped = {n for first, last in drop for n in range(first, last + 1)}
    return "".join(line for n, line in enumerate(lines, start=1) if n not in dropped)


def _mentions_hidden_mark(node: ast.AST) -> bool:
    """True for ``pytest.mark.hidden`` (or ``mark.hidden``), alone or inside a list."""
    return any(isinstance(n, ast.Attribute) and n.attr == "hidden"
               and isinstance(n.value, ast.Attribute) and n.value.attr == "mark"
               for n in ast.walk(node))


def regions_in_tree(root: Path, package: str = "minitransformer") -> list[Region]:
    """Every solution region in the package's Python files, by path relative to ``root``."""
    regions = []
    for path in sorted((root / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "SOLUTION" in text:
            regions.extend(find_regions(text, path.relative_to(root).as_posix()))
    return regions
