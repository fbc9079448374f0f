"""The pytest side of the assignments for everyday runs, loaded by pyproject.toml's ``addopts``.

- marks every test with the assignment it grades (``a1``...), from the registry's parts, so
  ``python -m pytest -m a2`` runs assignment a2's tests and no test file needs edits;
- registers the marks ``a1``..., ``hidden``, ``part(name)`` and ``weight(w)``;
- ``--assignment a2`` keeps only a2's tests; ``--assignment a3,a1:3`` keeps all of a3's tests
  and the first 3 of a1's (the self-check's sample);
- in a student copy (one with ``assignments/handout.py``), a test that stops on the stub of a
  *later* assignment is reported as skipped ("needs a5, a later assignment"), so the copy's
  suite shows the student's own failures only.

Grading does not load this plugin: it runs its own (``grader_plugin.py``) in a sandbox.
"""

from __future__ import annotations

import pytest

from . import registry

try:
    from . import handout  # written into a student copy by ``release``
except ImportError:  # the instructor's project
    handout = None


def pytest_addoption(parser):
    group = parser.getgroup("assignments", "course assignments")
    group.addoption("--assignment", metavar="ID[,ID:N...]",
                    help="run only these assignments' tests (ID:N: only the first N of them)")


def pytest_configure(config):
    lines = [f"{a.id}: a test of assignment {a.id} ({a.title})" for a in registry.ASSIGNMENTS]
    lines += ["hidden: an instructor-only test, graded but never released",
              "part(name): the part of its assignment a test grades",
              "weight(w): a test's share of its part's points (default 1)"]
    registered = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for line in lines:  # those pyproject.toml does not list already
        if line.split(":")[0].split("(")[0] not in registered:
            config.addinivalue_line("markers", line)


def marks_of(item) -> dict:
    """A test's marks as the registry reads them: {"a2": True, "part": "Mul.backward", ...}."""
    marks = {}
    for mark in item.iter_markers():
        marks.setdefault(mark.name, mark.args[0] if mark.args else True)
    return marks


def assignment_of(nodeid: str, marks: dict) -> str | None:
    return next((a.id for a in registry.ASSIGNMENTS if a.part_of(nodeid, marks)), None)


def _selection(option: str | None) -> dict[str, int | None] | None:
    if not option:
        return None
    chosen = {}
    for part in option.split(","):
        name, _, limit = part.strip().partition(":")
        registry.get(name)  # an unknown id is an error, not an empty run
        chosen[name] = int(limit) if limit else None
    return chosen


@pytest.hookimpl(tryfirst=True)  # before -m filters on the marks added here
def pytest_collection_modifyitems(config, items):
    chosen = _selection(config.getoption("assignment"))
    kept, dropped, counts = [], [], {}
    for item in items:
        assignment_id = assignment_of(item.nodeid, marks_of(item))
        if assignment_id is not None:
            item.add_marker(assignment_id)
        if chosen is None:
            continue
        limit = chosen.get(assignment_id, 0) if assignment_id else 0
        if assignment_id in chosen and (limit is None or counts.get(assignment_id, 0) < limit):
            counts[assignment_id] = counts.get(assignment_id, 0) + 1
            kept.append(item)
        else:
            dropped.append(item)
    if chosen is not None and dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def later_stub(exception: BaseException | None) -> str | None:
    """The id of a later assignment whose stub raised ``exception`` (or caused it), else None."""
    later = registry.handed_out_with(handout.ASSIGNMENT) - {handout.ASSIGNMENT}
    seen = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        if isinstance(exception, NotImplementedError):
            assignment_id = str(exception).split(":", 1)[0]
            if assignment_id in later:
                return assignment_id
        exception = exception.__cause__ or exception.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if handout is None or call.excinfo is None:
        return
    report = outcome.get_result()
    needs = later_stub(call.excinfo.value)
    if report.failed and needs:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: needs {needs}'s code, a later assignment")
