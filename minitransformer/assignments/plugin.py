"""The pytest side of grading, loaded by pyproject.toml's ``addopts`` (``-p``).

- marks every test with the assignments it belongs to (``a1``...), from the registry's
  patterns, so ``python -m pytest -m a2`` runs assignment a2's tests and no test file needs
  edits;
- registers the markers ``a1``..., ``hidden`` and ``weight(w)``;
- ``--assignment a2`` keeps only a2's tests; ``--assignment a3,a1:3`` keeps all of a3's tests
  and the first 3 of a1's (the self-check's sample);
- ``--assignment-report FILE`` writes every test's outcome, weight, visibility and, for a
  failure, the exception's type and message, as JSON for the grader.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from . import registry

_REPORT_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("assignments", "course assignments")
    group.addoption("--assignment", metavar="ID[,ID:N...]",
                    help="run only these assignments' tests (ID:N: only the first N of them)")
    group.addoption("--assignment-report", metavar="FILE",
                    help="write each test's outcome and weight as JSON (what `assignments grade` reads)")
    group.addoption("--assignment-no-shrink", action="store_true",
                    help="report hypothesis' first failing example without shrinking it (faster failures)")


def pytest_configure(config):
    lines = [f"{a.id}: a test of assignment {a.id} ({a.title})" for a in registry.ASSIGNMENTS]
    lines += ["hidden: an instructor-only test, graded but never released",
              "weight(w): a test's share of its assignment's points (default 1)"]
    registered = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for line in lines:  # those pyproject.toml does not list already
        if line.split(":")[0].split("(")[0] not in registered:
            config.addinivalue_line("markers", line)
    config.stash[_REPORT_KEY] = {}
    if config.getoption("assignment_no_shrink"):
        # after tests/conftest.py chose its profile: the same settings, minus the shrink phase
        from hypothesis import Phase, settings

        current = settings.default
        settings.register_profile("assignments-no-shrink", parent=current,
                                  phases=[p for p in current.phases if p is not Phase.shrink])
        settings.load_profile("assignments-no-shrink")


def _selection(option: str | None) -> dict[str, int | None] | None:
    if not option:
        return None
    chosen = {}
    for part in option.split(","):
        name, _, limit = part.strip().partition(":")
        registry.get(name)  # an unknown id is an error, not an empty run
        chosen[name] = int(limit) if limit else None
    return chosen


@pytest.hookimpl(tryfirst=True)  # before -m filters on the markers added here
def pytest_collection_modifyitems(config, items):
    chosen = _selection(config.getoption("assignment"))
    kept, dropped, counts = [], [], {}
    report = config.stash[_REPORT_KEY]
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        belongs = registry.assignments_of(item.nodeid, markers)
        for assignment_id in belongs:
            if assignment_id not in markers:
                item.add_marker(assignment_id)
        weight_mark = item.get_closest_marker("weight")
        if chosen is None:
            kept.append(item)
            continue
        wanted = [a for a in belongs if a in chosen
                  and (chosen[a] is None or counts.get(a, 0) < chosen[a])]
        if not wanted:
            dropped.append(item)
            continue
        for assignment_id in wanted:
            counts[assignment_id] = counts.get(assignment_id, 0) + 1
        kept.append(item)
        report[item.nodeid] = {
            "nodeid": item.nodeid,
            "assignments": {a: (float(weight_mark.args[0]) if weight_mark else belongs[a]) for a in wanted},
            "hidden": registry.is_hidden(item.nodeid, markers),
            "outcome": "not run",
        }
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session):
    """Keep in the report only the tests that will run (after -m and -k deselected theirs)."""
    report = session.config.stash[_REPORT_KEY]
    running = {item.nodeid for item in session.items}
    for nodeid in [n for n in report if n not in running]:
        del report[nodeid]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    entry = item.config.stash[_REPORT_KEY].get(item.nodeid)
    if entry is None:
        return
    result = outcome.get_result()
    if result.failed:
        entry["outcome"] = "failed" if call.when == "call" else "error"
        entry["when"] = call.when
        if call.excinfo is not None:
            entry["exception"] = call.excinfo.typename
            entry["message"] = str(call.excinfo.value)[:2000]
        entry["output"] = str(result.longrepr)[-6000:]
    elif result.skipped and entry["outcome"] == "not run":
        entry["outcome"] = "skipped"
        entry["output"] = str(result.longrepr[-1]) if isinstance(result.longrepr, tuple) else str(result.longrepr)
    elif result.passed and call.when == "call" and entry["outcome"] == "not run":
        entry["outcome"] = "passed"


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("assignment_report")
    if not path:
        return
    package = sys.modules.get("minitransformer")
    report = {
        "exitstatus": int(exitstatus),
        "package": str(Path(package.__file__).parent) if package else None,
        "tests": list(session.config.stash[_REPORT_KEY].values()),
    }
    Path(path).write_text(json.dumps(report, indent=1), encoding="utf-8")
