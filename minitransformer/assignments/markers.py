"""Solution regions: find them, and turn a solution file into a student file.

A region is a block of whole lines between two comment lines, at the indentation of the code
they enclose:

    def backward(self, grad):
        \"\"\"docstring (stays in the student copy)\"\"\"
        # BEGIN SOLUTION a2
        a, b = self.saved
        return grad * b, grad * a
        # END SOLUTION a2

A student copy turns the regions it hands out (its own assignment's and every later one's)
into a stub between ``# BEGIN YOUR CODE a2`` / ``# END YOUR CODE a2`` markers:

    def backward(self, grad):
        \"\"\"docstring (stays in the student copy)\"\"\"
        # BEGIN YOUR CODE a2
        raise NotImplementedError("a2: write Mul.backward (see lessons/03_tensor_engine.md)")
        # END YOUR CODE a2

and keeps the code of the regions it does not hand out (earlier assignments) between
``# BEGIN GIVEN a1`` / ``# END GIVEN a1`` markers. The markers of a student copy let the
grader put back the instructor's code for every region of another assignment in a submitted
file (``splice``), so a file is graded on its assignment's regions only, and let a release
carry a student's earlier work forward. Regions do not nest.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

# SOLUTION: the instructor's code. In a student copy, YOUR CODE: a stub (or what the student
# wrote in its place); GIVEN: an earlier assignment's code.
KINDS = ("SOLUTION", "YOUR CODE", "GIVEN")
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN (?P<kind>SOLUTION|YOUR CODE|GIVEN) (?P<id>a\d+)[ \t]*$")
END = re.compile(r"^(?P<indent>[ \t]*)# END (?P<kind>SOLUTION|YOUR CODE|GIVEN) (?P<id>a\d+)[ \t]*$")
STUB = re.compile(r'^[ \t]*raise NotImplementedError\("(?P<id>a\d+): write ')
_DEFINITION = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+(?P<name>\w+)")


class MarkerError(ValueError):
    """Solution markers that don't pair up: the message names the file and the line."""


@dataclass(frozen=True)
class Region:
    """One region: lines ``begin`` and ``end`` (1-based) are the marker lines."""

    path: str
    assignment: str
    begin: int
    end: int
    indent: str
    where: str  # the enclosing definition, e.g. "Mul.backward", or "module level"
    kind: str = "SOLUTION"  # or "YOUR CODE" (a student copy)

    @property
    def code_lines(self) -> int:
        return self.end - self.begin - 1

    def body(self, lines: list[str]) -> list[str]:
        """The lines between the markers (``lines`` with their line ends, as the file's)."""
        return lines[self.begin:self.end - 1]


def find_regions(text: str, path: str = "<text>") -> list[Region]:
    """Every region of a source file, in order; raises MarkerError on bad markers."""
    lines = text.splitlines()
    regions, open_begin = [], None
    for number in _comment_lines(text, path):
        line = lines[number - 1]
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_begin is not None:
                raise MarkerError(
                    f"{path}:{number}: BEGIN {begin['kind']} {begin['id']} inside the region of "
                    f"{open_begin[1]['id']} opened at line {open_begin[0]}; regions don't nest"
                )
            open_begin = (number, begin)
        elif end:
            if open_begin is None:
                raise MarkerError(f"{path}:{number}: END {end['kind']} {end['id']} without a BEGIN")
            start, match = open_begin
            if (end["id"], end["kind"]) != (match["id"], match["kind"]):
                raise MarkerError(
                    f"{path}:{number}: END {end['kind']} {end['id']} closes BEGIN {match['kind']} "
                    f"{match['id']} of line {start}"
                )
            if end["indent"] != match["indent"]:
                raise MarkerError(
                    f"{path}:{number}: END {end['kind']} {end['id']} is not indented like its BEGIN "
                    f"(line {start})"
                )
            regions.append(Region(path, match["id"], start, number, match["indent"],
                                  _enclosing_definition(lines, start, match["indent"]), match["kind"]))
            open_begin = None
    if open_begin is not None:
        raise MarkerError(f"{path}:{open_begin[0]}: BEGIN {open_begin[1]['kind']} {open_begin[1]['id']} "
                          "is never closed")
    return regions


def _comment_lines(text: str, path: str) -> list[int]:
    """Numbers of the lines that hold only a comment (so a marker quoted in a string or a
    docstring, like the ones at the top of this file, is not a marker)."""
    numbers = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and token.line.strip() == token.string.strip():
                numbers.append(token.start[0])
    except (tokenize.TokenError, IndentationError, SyntaxError) as error:
        raise MarkerError(f"{path}: cannot be read as Python ({error})") from None
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


def stub_line(region: Region, hint: str) -> str:
    message = f"{region.assignment}: write {region.where} ({hint})".replace('"', "'")
    return f'{region.indent}raise NotImplementedError("{message}")\n'


def student_version(text: str, handed_out: set[str] | frozenset[str], hints: dict[str, str],
                    path: str = "<text>") -> tuple[str, list[Region]]:
    """The file as a student copy has it, and the regions that became stubs.

    Regions of the assignments in ``handed_out`` become one ``raise NotImplementedError`` between
    ``YOUR CODE`` markers; ``hints[assignment]`` ends its message (e.g. "see
    lessons/03_tensor_engine.md"). Every other region keeps its code between ``GIVEN`` markers.
    """
    regions = find_regions(text, path)
    lines = text.splitlines(keepends=True)
    stubbed = [r for r in regions if r.assignment in handed_out]
    by_begin = {r.begin: r for r in regions}
    out, skip_until = [], 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        region = by_begin.get(number)
        if region is None:
            out.append(line)
        elif region.assignment in handed_out:
            out += [f"{region.indent}# BEGIN YOUR CODE {region.assignment}\n",
                    stub_line(region, hints[region.assignment]),
                    f"{region.indent}# END YOUR CODE {region.assignment}\n"]
            skip_until = region.end
        else:
            out += [f"{region.indent}# BEGIN GIVEN {region.assignment}\n", *region.body(lines),
                    f"{region.indent}# END GIVEN {region.assignment}\n"]
            skip_until = region.end
    student = "".join(out)
    compile(student, path, "exec")  # a marker in the wrong place shows here, not in class
    return student, stubbed


def is_stub(body: list[str]) -> bool:
    """Whether a region's body is only the stub a release put there (nothing written)."""
    code = [line for line in body if line.strip() and not line.lstrip().startswith("#")]
    return len(code) == 1 and STUB.match(code[0]) is not None


def splice(base: str, donor: str, assignments: set[str] | frozenset[str], path: str = "<text>",
           skip_stubs: bool = False) -> tuple[str, list[str]]:
    """``base`` with the body of each of its regions of ``assignments`` replaced by the body of
    the matching region of ``donor`` (same assignment and definition, in order).

    Returns the text and notes for the regions that found no partner. The grader calls it with
    a student's file as ``base`` and the instructor's view of that file as ``donor``, for every
    assignment but the graded one. ``skip_stubs``: a donor region that is still a stub leaves
    the base's body in place (a release carrying a student's earlier work keeps the
    instructor's code where they wrote none), with a note.
    """
    base_regions, donor_regions = find_regions(base, path), find_regions(donor, path)
    base_lines, donor_lines = base.splitlines(keepends=True), donor.splitlines(keepends=True)
    partners: dict[tuple[str, str], list[Region]] = {}
    for region in donor_regions:
        partners.setdefault((region.assignment, region.where), []).append(region)
    replaced, notes, skip_until, out = {}, [], 0, []
    for region in base_regions:
        if region.assignment not in assignments:
            continue
        candidates = partners.get((region.assignment, region.where), [])
        if candidates and skip_stubs and is_stub(candidates[0].body(donor_lines)):
            candidates.pop(0)
            notes.append(f"{path}: {region.where} ({region.assignment}) is still the stub")
        elif candidates:
            replaced[region.begin] = (region, candidates.pop(0))
        else:
            notes.append(f"{path}: the {region.assignment} region in {region.where} has no partner")
    for number, line in enumerate(base_lines, start=1):
        if number <= skip_until:
            continue
        out.append(line)
        if number in replaced:
            mine, theirs = replaced[number]
            out += theirs.body(donor_lines)
            out.append(base_lines[mine.end - 1])
            skip_until = mine.end
    return "".join(out), notes


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


def relabel(text: str, kinds: dict[str, str], path: str = "<text>") -> str:
    """The text with the markers of each assignment in ``kinds`` turned to that kind."""
    lines = text.splitlines(keepends=True)
    for region in find_regions(text, path):
        kind = kinds.get(region.assignment)
        if kind is not None:
            for number, word in ((region.begin, "BEGIN"), (region.end, "END")):
                lines[number - 1] = f"{region.indent}# {word} {kind} {region.assignment}\n"
    return "".join(lines)


def regions_in_tree(root: Path, package: str = "minitransformer") -> list[Region]:
    """Every region in the package's Python files, by path relative to ``root``."""
    regions = []
    for path in sorted((root / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "# BEGIN " in text:
            regions.extend(find_regions(text, path.relative_to(root).as_posix()))
    return regions
