"""``release``: write the student copy of one assignment, in course order.

The copy of assignment aN is the project (package, tests, lessons, pyproject.toml, README) in
which:

- the regions of aN and of every later assignment are stubs that raise ``NotImplementedError``
  with a pointer to their lesson (``YOUR CODE`` markers); the regions of earlier assignments
  hold working code (``GIVEN`` markers): the instructor's solutions, or the student's own
  earlier work carried forward (``carry=``);
- the fast layer (``minitransformer/fast/``) is left out whole, so the student's reference code
  is what runs, and no compiled kernel hands out an assigned function;
- hidden tests (``tests/hidden/``, ``@pytest.mark.hidden`` tests and helpers: the reference
  implementations), the tooling's self-check and the instructors' guide are left out, and so is
  every test file that imports a module the copy lacks;
- links to files the copy lacks become plain text;
- ``STUDENT_README.md`` says what to write, where, for how many points, and how it is graded.

``release`` checks the result: no file of the copy contains the body of a handed-out function
(``leaks``). The grader builds its workspace with the same ``write_view``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import markers, registry
from .leaks import find_leaks

RELEASED = ("minitransformer", "tests", "lessons", "pyproject.toml", "README.md", "LICENSE")
# instructor-only: hidden tests, the self-checks of this tooling, the instructors' guide
NOT_RELEASED = (registry.HIDDEN_TESTS, "lessons/INSTRUCTORS.md")
INSTRUCTOR_TESTS = "tests/test_assignments*.py"
# never copied: caches, and what runs write (lessons/scratch/: a lesson's figures, git-ignored)
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "*.egg-info", "scratch")
TOOLING = "minitransformer/assignments/"  # its docstrings quote markers; never transformed
HANDOUT = "minitransformer/assignments/handout.py"  # which assignment a student copy is
# kept from the fast layer: the thread settings behind mt.set_num_threads, and the package
# that loads whatever op modules are present (none, in a copy); no op's code
FAST_KEPT = ("minitransformer/fast/cpu/__init__.py", "minitransformer/fast/cpu/parallel.py")
FAST_STUB = '''"""The fast layer is left out of this student copy: every op runs its reference code in
minitransformer/ops/, the code the assignments are about."""
'''


def project_root() -> Path:
    """The folder that holds the package, its tests and lessons (a source checkout)."""
    return Path(__file__).resolve().parents[2]


def is_student_copy(root: Path) -> bool:
    return (Path(root) / HANDOUT).is_file()


def check_regions(assignment: registry.Assignment, root: Path) -> list[markers.Region]:
    """The assignment's regions, checked against the registry: each listed file has at least
    one, and no region of the assignment sits in a file the registry does not list."""
    regions = [r for r in markers.regions_in_tree(root) if not r.path.startswith(TOOLING)]
    mine = [r for r in regions if r.assignment == assignment.id and r.kind == "SOLUTION"]
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


def hints(root: Path, path: str) -> dict[str, str]:
    """{assignment id: the lesson pointer of its stubs in ``path``}."""
    return {a.id: a.hint_for(path, root) for a in registry.ASSIGNMENTS}


def view_of_file(text: str, path: str, assignment_id: str, root: Path) -> tuple[str, list[markers.Region]]:
    """A package file as the copy of ``assignment_id`` has it (stubs for it and later ones)."""
    return markers.student_version(text, registry.handed_out_with(assignment_id), hints(root, path), path)


def write_view(assignment_id: str, root: Path, into: Path, names=RELEASED, student: bool = True) -> list[markers.Region]:
    """Copy ``names`` from ``root`` into ``into`` as the copy of ``assignment_id`` sees them and
    return the regions that became stubs. ``student=False`` (the grader's workspace) keeps the
    hidden tests and the instructor files. A root that is itself a student copy is copied as it
    is (a student grading their own work)."""
    root, into = Path(root), Path(into)
    for name in names:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=JUNK, dirs_exist_ok=True, symlinks=False)
        elif source.is_file():
            shutil.copy2(source, into / name)
    if (into / registry.FAST_TESTS).is_dir():  # the fast layer's tests go with it
        shutil.rmtree(into / registry.FAST_TESTS)
    fast = into / registry.FAST_LAYER
    if fast.is_dir():
        shutil.rmtree(fast)
        fast.mkdir()
        (fast / "__init__.py").write_text(FAST_STUB, encoding="utf-8")
        for kept in (name for name in FAST_KEPT if (root / name).is_file()):
            (into / kept).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / kept, into / kept)
    stubbed = []
    if not is_student_copy(root):
        for path in sorted((into / "minitransformer").rglob("*.py")):
            relative = path.relative_to(into).as_posix()
            text = path.read_text(encoding="utf-8")
            if relative.startswith(TOOLING) or "# BEGIN SOLUTION" not in text:
                continue
            student_text, removed = view_of_file(text, relative, assignment_id, root)
            path.write_text(student_text, encoding="utf-8")
            stubbed += removed
    if student:
        _remove_instructor_files(into)
    _remove_tests_that_need_missing_modules(root, into)
    return stubbed


def _remove_instructor_files(out: Path) -> None:
    for name in NOT_RELEASED:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in out.glob(INSTRUCTOR_TESTS):
        path.unlink()
    for path in sorted((out / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "hidden" in text:
            visible = markers.without_hidden_tests(text, path.relative_to(out).as_posix())
            if visible is None:
                path.unlink()
            elif visible != text:
                path.write_text(visible, encoding="utf-8")


def _imported_modules(text: str, path: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _module_exists(root: Path, module: str) -> bool:
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def missing_modules(source: Path, copy: Path, path: Path) -> list[str]:
    """The modules of the project (in ``source``) that a test file imports but the ``copy``
    lacks (``from package import name`` imports a name, not a module, when ``source`` has no
    such module)."""
    text = path.read_text(encoding="utf-8")
    return [m for m in sorted(_imported_modules(text, str(path)))
            if _module_exists(source, m) and not _module_exists(copy, m)]


def _remove_tests_that_need_missing_modules(source: Path, out: Path) -> None:
    for path in sorted((out / "tests").rglob("test_*.py")):
        if missing_modules(source, out, path):
            path.unlink()
    for folder in sorted((out / "tests").iterdir()):  # a test folder left with no tests
        if folder.is_dir() and not list(folder.rglob("test_*.py")):
            shutil.rmtree(folder)


_LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")


def fix_links(out: Path) -> None:
    """Markdown links to files the copy lacks (benchmarks/, INSTRUCTORS.md) become their text."""
    for path in sorted(out.rglob("*.md")):
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match) -> str:
            target = match["target"].split("#", 1)[0]
            if not target or "://" in target or target.startswith("mailto:"):
                return match[0]
            return match[0] if (path.parent / target).exists() else match["text"]

        fixed = _LINK.sub(replace, text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")


def carry_forward(assignment_id: str, root: Path, out: Path, earlier_work: Path) -> list[str]:
    """Put the student's own code for the earlier assignments' regions into the copy, from a
    folder of their earlier submission (a project copy or the files). Returns notes."""
    from .submission import find_files

    earlier = registry.earlier_than(assignment_id)
    files = sorted({f for a in registry.ASSIGNMENTS if a.id in earlier for f in a.files})
    found, notes = find_files(Path(earlier_work), files)
    for relative in files:
        if relative not in found:
            notes.append(f"carry: {earlier_work} has no {relative}: the instructor's code is kept")
            continue
        text, problem = found[relative]
        if problem:
            notes.append(f"carry: {relative}: {problem}: the instructor's code is kept")
            continue
        target = out / relative
        try:
            mine = markers.find_regions(text, relative)
        except markers.MarkerError as error:
            notes.append(f"carry: {error}: the instructor's code is kept")
            continue
        if not mine:
            notes.append(f"carry: {relative} has no BEGIN/END markers: the instructor's code is kept")
            continue
        # the copy's file, with the student's bodies in the regions of earlier assignments
        carried, missing = markers.splice(target.read_text(encoding="utf-8"), text, set(earlier), relative,
                                          skip_stubs=True)
        notes += [f"carry: {m}: the instructor's code is kept" for m in missing]
        target.write_text(carried, encoding="utf-8")
    return notes


def _carry(assignment_id: str, root: Path, out: Path, earlier_work: Path) -> list[str]:
    """``carry_forward`` from a folder or a .zip of one."""
    from .submission import unpack_zip

    if earlier_work.is_file() and earlier_work.suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="carry-") as unpacked:
            notes = unpack_zip(earlier_work, Path(unpacked))
            return notes + carry_forward(assignment_id, root, out, Path(unpacked))
    return carry_forward(assignment_id, root, out, earlier_work)


def release(assignment_id: str, out: str | Path, root: Path | None = None, carry: str | Path | None = None,
            git: bool = False) -> list[markers.Region]:
    """Write the student copy of ``assignment_id`` into the new (or empty) folder ``out`` and
    return the regions that became stubs. ``carry``: a folder with the student's earlier
    submission, whose code replaces the instructor's in the earlier assignments' regions.
    ``git``: make the copy a fresh git repository with one commit."""
    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    check_regions(assignment, root)
    out = Path(out)
    if carry is not None and not (Path(carry).is_dir() or (Path(carry).is_file() and Path(carry).suffix == ".zip")):
        raise ValueError(f"release --carry: {carry} is neither a folder nor a .zip file of an earlier submission")
    if out.exists() and not out.is_dir():
        raise ValueError(f"release: {out} exists and is not a folder; choose a new folder")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"release: {out} exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    # written beside ``out`` and renamed at the end: a failed or interrupted release leaves no
    # half copy (and never one that a leak check refused)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o777 & ~umask)  # a folder as mkdir makes it, not mkdtemp's private one
    try:
        stubbed = _write_copy(assignment, root, partial, carry, git)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return stubbed


def _write_copy(assignment: registry.Assignment, root: Path, out: Path, carry, git: bool) -> list[markers.Region]:
    stubbed = write_view(assignment.id, root, out)
    notes = _carry(assignment.id, root, out, Path(carry)) if carry else []
    (out / HANDOUT).write_text(f'"""Written by `assignments release`: this copy is the handout of {assignment.id}."""\n\n'
                               f'ASSIGNMENT = "{assignment.id}"\n', encoding="utf-8")
    (out / "STUDENT_README.md").write_text(student_readme(assignment, stubbed, root, notes), encoding="utf-8")
    readme = out / "README.md"
    if readme.exists():
        note = (f"> **Student copy of assignment {assignment.id}** ({assignment.title}): start with "
                "[STUDENT_README.md](STUDENT_README.md).\n\n")
        readme.write_text(note + readme.read_text(encoding="utf-8"), encoding="utf-8")
    fix_links(out)
    leaks = find_leaks(root, out, registry.handed_out_with(assignment.id))
    if leaks:
        raise ValueError(f"release {assignment.id}: the copy would contain the code of handed-out functions:\n"
                         + "\n".join(f"  {leak}" for leak in leaks[:20]))
    if git:
        _make_repository(out, assignment)
    return stubbed


def _make_repository(out: Path, assignment: registry.Assignment) -> None:
    (out / ".gitignore").write_text("__pycache__/\n*.egg-info/\n.hypothesis/\n.pytest_cache/\n", encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "minitransformer course", "GIT_AUTHOR_EMAIL": "course@localhost",
           "GIT_COMMITTER_NAME": "minitransformer course", "GIT_COMMITTER_EMAIL": "course@localhost"}
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "commit", "-q", "-m", f"Assignment {assignment.id}: {assignment.title}"]):
        done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"release --git: `{' '.join(command)}` failed: {done.stderr.strip()[:300]}")


def student_readme(assignment: registry.Assignment, stubbed: list[markers.Region], root: Path,
                   notes: list[str] = ()) -> str:
    lessons = " and ".join(f"[{p}]({p})" for p in assignment.lesson_paths(root))
    mine = [r for r in stubbed if r.assignment == assignment.id]
    todo = "\n".join(f"- `{r.path}`: `{r.where}`" for r in mine)
    parts = "\n".join(f"| {part.name} | {part.points} |" for part in assignment.parts)
    files = " ".join(f"`{f}`" for f in assignment.files)
    earlier = registry.earlier_than(assignment.id)
    later = sorted(registry.handed_out_with(assignment.id) - {assignment.id})
    carried = "\n".join(f"- {n}" for n in notes)
    return f"""# Assignment {assignment.id}: {assignment.title}

This folder is the whole minitransformer project, runnable, with the code of this assignment
taken out. Read {lessons} first: the derivations you need are there.

## What to write

Each of these raises `NotImplementedError("{assignment.id}: ...")` between `# BEGIN YOUR CODE
{assignment.id}` and `# END YOUR CODE {assignment.id}`. The signature and the docstring (with
the formula to implement) are in place; replace the `raise` with your code, keep the two marker
lines, and don't change the signatures.

{todo}

| part | points |
| --- | --- |
{parts}
| **total** | **{assignment.points}** |

The code of the earlier assignments ({', '.join(earlier) or 'none'}) is in place between `GIVEN`
markers, so everything they built works. The later assignments' code
({', '.join(later) or 'none'}) is stubbed too; tests that need it are reported as skipped.
{carried}

## Check your work

    pip install -e ".[dev]"
    python -m pytest -m {assignment.id} -q                        # this assignment's tests
    python -m minitransformer assignments grade {assignment.id}   # the same, with points

The second command prints each part with its points and your score out of
{assignment.points}. A failing test's message says what went wrong; the test files under
`tests/` show what is checked (gradient checks against finite differences, properties such as
"softmax rows sum to 1", shapes). The official grade runs these tests plus hidden ones (they
compare with reference implementations), so test your code beyond the visible tests. The
fast layer (compiled kernels) is not part of this copy: your code is what runs.

## Hand in

The file(s) {files}, as they are in this folder (a zip of the whole folder works too). Only
these are taken from your submission, and in them only the `{assignment.id}` regions: your
changes elsewhere, tests included, are not graded. Each test has a time limit.
"""
