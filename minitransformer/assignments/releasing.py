"""``release``: write the student copy of one assignment.

The copy is the project (package, tests, lessons, pyproject.toml, README) with that
assignment's solution regions replaced by ``raise NotImplementedError(...)``, every other
assignment's solutions kept (only their marker lines go), hidden tests and instructor files
left out, the fast layer's implementations of the ops the student writes left out too (so
their code is what runs), and a STUDENT_README.md that says what to write, where, and how it is graded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import markers, registry

RELEASED = ("minitransformer", "tests", "lessons", "pyproject.toml", "README.md", "LICENSE")
# instructor-only: hidden tests, the self-check of this tooling, the instructors' guide
NOT_RELEASED = (registry.HIDDEN_TESTS, "tests/test_assignments.py", "lessons/INSTRUCTORS.md")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "*.egg-info")
TOOLING = "minitransformer/assignments/"  # its docstrings quote markers; never transformed


def project_root() -> Path:
    """The folder that holds the package, its tests and lessons (a source checkout)."""
    return Path(__file__).resolve().parents[2]


def check_regions(assignment: registry.Assignment, root: Path) -> list[markers.Region]:
    """The assignment's regions, checked against the registry: each listed file has at least
    one, and no region of the assignment sits in a file the registry does not list."""
    regions = [r for r in markers.regions_in_tree(root) if not r.path.startswith(TOOLING)]
    mine = [r for r in regions if r.assignment == assignment.id]
    if not mine:
        raise ValueError(
            f"release {assignment.id}: {root} has no '# BEGIN SOLUTION {assignment.id}' regions; "
            "release from the instructor's copy (a student copy has its solutions removed)"
        )
    without = [f for f in assignment.files if f not in {r.path for r in mine}]
    unlisted = sorted({r.path for r in mine} - set(assignment.files))
    if without or unlisted:
        raise ValueError(
            f"release {assignment.id}: the registry and the markers disagree: listed files without a "
            f"region {without}, regions in files not listed {unlisted}"
        )
    unknown = sorted({r.assignment for r in regions} - {a.id for a in registry.ASSIGNMENTS})
    if unknown:
        raise ValueError(f"release: solution regions name unknown assignments {unknown}")
    return mine


def release(assignment_id: str, out: str | Path, root: Path | None = None) -> list[markers.Region]:
    """Write the student copy of ``assignment_id`` into the new (or empty) folder ``out`` and
    return the regions that were removed."""
    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    removed = check_regions(assignment, root)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"release: {out} exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in RELEASED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=JUNK, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, out / name)
    for name in (*NOT_RELEASED, *assignment.fast_files):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    for path in sorted((out / "minitransformer").rglob("*.py")):
        relative = path.relative_to(out).as_posix()
        text = path.read_text(encoding="utf-8")
        if relative.startswith(TOOLING) or "SOLUTION" not in text:
            continue
        student, _ = markers.student_version(text, assignment.id, assignment.hint_for(relative, root), relative)
        path.write_text(student, encoding="utf-8")
    for path in sorted((out / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "hidden" in text:
            visible = markers.without_hidden_tests(text, path.relative_to(out).as_posix())
            if visible is None:
                path.unlink()
            elif visible != text:
                path.write_text(visible, encoding="utf-8")

    (out / "STUDENT_README.md").write_text(student_readme(assignment, removed, root), encoding="utf-8")
    readme = out / "README.md"
    if readme.exists():
        note = (f"> **Student copy of assignment {assignment.id}** ({assignment.title}): start with "
                "[STUDENT_README.md](STUDENT_README.md).\n\n")
        readme.write_text(note + readme.read_text(encoding="utf-8"), encoding="utf-8")
    return removed


def student_readme(assignment: registry.Assignment, removed: list[markers.Region], root: Path) -> str:
    lessons = " and ".join(f"[{p}]({p})" for p in assignment.lesson_paths(root))
    todo = "\n".join(f"- `{r.path}`: `{r.where}`" for r in removed)
    files = " ".join(f"`{f}`" for f in assignment.files)
    return f"""# Assignment {assignment.id}: {assignment.title}

This folder is the whole minitransformer project, runnable, with the code of this assignment
taken out. Read {lessons} first: the derivations you need are there.

## What to write

Each of these raises `NotImplementedError("{assignment.id}: ...")` until you write it. The
signature and the docstring (with the formula to implement) are in place; replace the `raise`
with your code, and don't change the signatures.

{todo}

Everything else works already, including the earlier assignments' code, so you can use the
public API (`import minitransformer as mt`) to experiment while you write.

## Check your work

    pip install -e ".[dev]"
    python -m pytest -m {assignment.id} -q                        # this assignment's tests
    python -m minitransformer assignments grade {assignment.id}   # the same, with points

The second command prints every test with its points and your score out of
{assignment.points:g}. A failing test's message says what went wrong; the test files under `tests/` show
what is checked (gradient checks against finite differences, properties such as "softmax rows
sum to 1", values against NumPy).

## Hand in

The file(s) {files}. Only these are taken from your submission: your changes elsewhere,
tests included, are not graded. Your grade is the share of the tests you pass, with the same
tests as here plus some the instructor keeps back, so test your code beyond the visible tests.
"""
