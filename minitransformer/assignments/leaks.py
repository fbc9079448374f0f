"""Does a student copy contain the code of a function it hands out?

The body of every handed-out region of the instructor's tree is cut into its significant lines
(whitespace collapsed, comments dropped, at least ``MIN_CHARS`` long: ``return grad, grad``
alone proves nothing). A file of the copy leaks a body when it holds ``WINDOW`` consecutive
significant lines of it in the same order (or the whole body, when it is shorter): a fast
kernel, a docstring example, a lesson's code block or a test that repeats the solution.
"""

from __future__ import annotations

from pathlib import Path

from . import markers

MIN_CHARS = 24
WINDOW = 3
SCANNED = (".py", ".md", ".txt", ".toml", ".cfg", ".ipynb", ".json", ".sh")


def _normal(line: str) -> str:
    code = line.split("#", 1)[0] if "#" in line and not line.lstrip().startswith(("'", '"')) else line
    return " ".join(code.split())


def significant(lines) -> list[str]:
    return [n for n in (_normal(line) for line in lines) if len(n) >= MIN_CHARS]


def handed_out_bodies(root: Path, assignments: set[str]) -> list[tuple[markers.Region, list[str]]]:
    bodies = []
    for region in markers.regions_in_tree(root):
        if region.assignment in assignments and region.kind == "SOLUTION":
            lines = (root / region.path).read_text(encoding="utf-8").splitlines()
            body = significant(region.body(lines))
            if body:
                bodies.append((region, body))
    return bodies


def find_leaks(root: Path, copy: Path, assignments: set[str]) -> list[str]:
    """"file:line: the code of Mul.backward (a2)" for each place ``copy`` repeats a body."""
    bodies = handed_out_bodies(Path(root), assignments)
    windows: dict[tuple[str, ...], markers.Region] = {}
    for region, body in bodies:
        size = min(WINDOW, len(body))
        for start in range(len(body) - size + 1):
            windows.setdefault(tuple(body[start:start + size]), region)
    sizes = sorted({len(w) for w in windows})
    leaks = []
    for path in sorted(Path(copy).rglob("*")):
        if not path.is_file() or path.suffix not in SCANNED:
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        numbered = [(number, _normal(line)) for number, line in enumerate(lines, start=1)]
        numbered = [(number, text) for number, text in numbered if len(text) >= MIN_CHARS]
        texts = [text for _, text in numbered]
        for size in sizes:
            for start in range(len(texts) - size + 1):
                region = windows.get(tuple(texts[start:start + size]))
                if region is not None:
                    where = path.relative_to(copy).as_posix()
                    leaks.append(f"{where}:{numbered[start][0]}: the code of {region.where} ({region.assignment})")
                    break
    return leaks
