"""The pytest plugin of a grading run, loaded from a copy outside the graded package before
any student code is imported (it imports nothing of minitransformer).

At import it reads its instructions (the HMAC key, the mode, the tests to run) from the pipe
the supervisor (sandbox.py) handed down, and closes it: student code, imported later, finds
neither the key in the environment nor the pipe. It also notes the identity of the functions
tests compare with (``numpy.testing.assert_allclose``...), so a submission that replaces one
is caught.

Modes: "collect" reports every test's node id and marks (the trusted run of the instructor's
tree); "run" runs the given tests and reports, for each, "start" and then "result" with its
outcome and the failure's message (``AssertionError: ...`` with pytest's explanation).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import math
import os

import numpy
import numpy.testing
import pytest


def _read_instructions():
    fds = os.environ.pop("MT_GRADER_FDS", "")
    if not fds:
        raise RuntimeError("grader_plugin: no MT_GRADER_FDS; this plugin runs under assignments/sandbox.py only")
    read_fd, write_fd = (int(x) for x in fds.split(","))
    with os.fdopen(read_fd, "rb") as handle:
        instructions = json.loads(handle.read())
    return instructions, os.fdopen(write_fd, "wb", buffering=0)


def _make_sender(key: bytes, channel):
    sequence = [0]

    def send(**event):
        payload = json.dumps(event).encode()
        head = str(sequence[0]).encode()
        mac = hmac.new(key, head + b" " + payload, hashlib.sha256).hexdigest().encode()
        sequence[0] += 1
        try:
            channel.write(head + b" " + mac + b" " + payload + b"\n")
        except OSError:
            pass

    return send


_instructions, _channel = _read_instructions()
_send = _make_sender(bytes.fromhex(_instructions.pop("key")), _channel)
MODE = _instructions["mode"]
_wanted = set(_instructions["tests"])
_outcomes: dict[str, dict] = {}

# what tests compare with: a submission that swaps one of these makes every later pass void
_WATCHED = {
    "numpy.testing.assert_allclose": (numpy.testing, "assert_allclose"),
    "numpy.testing.assert_array_equal": (numpy.testing, "assert_array_equal"),
    "numpy.testing.assert_equal": (numpy.testing, "assert_equal"),
    "numpy.allclose": (numpy, "allclose"), "numpy.isclose": (numpy, "isclose"),
    "numpy.array_equal": (numpy, "array_equal"), "numpy.all": (numpy, "all"), "numpy.any": (numpy, "any"),
    "numpy.ndarray.__eq__": (numpy.ndarray, "__eq__"), "math.isclose": (math, "isclose"),
    "pytest.approx": (pytest, "approx"), "pytest.raises": (pytest, "raises"), "pytest.fail": (pytest, "fail"),
    "pytest.skip": (pytest, "skip"), "builtins.isinstance": (builtins, "isinstance"),
    "builtins.all": (builtins, "all"), "builtins.any": (builtins, "any"), "builtins.abs": (builtins, "abs"),
    "builtins.len": (builtins, "len"), "builtins.sum": (builtins, "sum"),
}
_ORIGINAL = {name: getattr(owner, attr) for name, (owner, attr) in _WATCHED.items()}


def _tampered() -> list[str]:
    return [name for name, (owner, attr) in _WATCHED.items() if getattr(owner, attr, None) is not _ORIGINAL[name]]


def _marks(item) -> dict:
    marks = {}
    for mark in item.iter_markers():
        value = mark.args[0] if mark.args else True
        marks.setdefault(mark.name, value if isinstance(value, (str, int, float, bool)) else True)
    return marks


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # after tests/conftest.py chose its profile: the same settings, minus the shrink phase, so a
    # failing submission grades as fast as a passing one
    try:
        from hypothesis import Phase, settings
    except ImportError:
        return
    current = settings.default
    settings.register_profile("grading", parent=current,
                              phases=[p for p in current.phases if p is not Phase.shrink])
    settings.load_profile("grading")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    if MODE == "collect":
        from _pytest.skipping import evaluate_skip_marks

        listed = []
        for item in items:
            skipped = evaluate_skip_marks(item)
            listed.append({"nodeid": item.nodeid, "marks": _marks(item),
                           "skipped": skipped.reason if skipped else None})
        _send(event="collected", items=listed)
        return
    kept = [item for item in items if item.nodeid in _wanted]
    dropped = [item for item in items if item.nodeid not in _wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    _send(event="collected", items=[{"nodeid": item.nodeid} for item in kept])


def pytest_collectreport(report):
    if report.failed:
        _send(event="collect error", nodeid=report.nodeid, message=str(report.longrepr)[-4000:])


def pytest_runtest_logstart(nodeid, location):
    _outcomes[nodeid] = {"outcome": "passed"}
    _send(event="start", nodeid=nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    entry = _outcomes.setdefault(item.nodeid, {"outcome": "passed"})
    if entry["outcome"] != "passed":
        return
    if report.failed:
        entry["outcome"] = "failed" if call.when == "call" else "error"
        entry["when"] = call.when
        if call.excinfo is not None:
            entry["exception"] = call.excinfo.typename
            entry["message"] = call.excinfo.exconly()[:3000]
            entry["cause"] = _stub_in_chain(call.excinfo.value)
        entry["output"] = str(report.longrepr)[-4000:]
    elif report.skipped:
        entry["outcome"] = "skipped"
        entry["message"] = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)[:500]


def _stub_in_chain(exception) -> str | None:
    """The message of a NotImplementedError in the exception's chain (a stub), if any."""
    seen = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        if type(exception) is NotImplementedError:
            return str(exception)[:300]
        exception = exception.__cause__ or exception.__context__
    return None


def pytest_runtest_logfinish(nodeid, location):
    entry = _outcomes.get(nodeid, {"outcome": "passed"})
    tampered = _tampered()
    if tampered:
        entry = {"outcome": "failed", "exception": "Tampering",
                 "message": "the submission replaced " + ", ".join(tampered) + " (what the tests check with)"}
    _send(event="result", nodeid=nodeid, **entry)
