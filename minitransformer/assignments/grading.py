"""``grade``: run one assignment's tests against a submission and score them.

The tests never run inside the submission. A fresh workspace is made from the instructor's
project (package, tests including hidden ones, pyproject.toml), the assignment's files are
copied into it from the submission, and pytest runs there in a subprocess with the grading
plugin. So a submission can change neither the tests nor the points, and a crash, an infinite
loop or a broken import costs the submission its points, never the grader its run.

The result is Gradescope's autograder format (results.json): a top-level ``score``, and per
test a ``name``, ``score``, ``max_score``, ``output`` and ``visibility``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import registry
from .markers import student_version
from .releasing import JUNK, project_root

WORKSPACE = ("minitransformer", "tests", "pyproject.toml")
HIDDEN_VISIBILITY = "after_published"  # Gradescope shows hidden tests once grades are published


def submission_file(submission: Path, relative: str) -> Path | None:
    """The submission's copy of a file: at its path in a project copy, or by its bare name
    (Gradescope puts uploaded files side by side in one folder)."""
    for candidate in (submission / relative, submission / Path(relative).name):
        if candidate.is_file():
            return candidate
    return None


def make_workspace(assignment: registry.Assignment, root: Path, submission: Path | None, into: Path) -> list[str]:
    """The instructor's project in ``into``, with the assignment's files from the submission.
    Returns notes for the output (files the submission lacks)."""
    for name in WORKSPACE:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=JUNK)
        elif source.is_file():
            shutil.copy2(source, into / name)
    notes = []
    if submission is None or submission.resolve() == root.resolve():
        return notes
    found = {f: submission_file(submission, f) for f in assignment.files}
    if not any(found.values()):
        raise ValueError(
            f"grade {assignment.id}: {submission} holds none of {', '.join(assignment.files)} "
            "(expected a copy of the project or the files themselves)"
        )
    for relative, path in found.items():
        if path is None:
            # graded as released: that file's part of the assignment scores nothing
            notes.append(f"the submission has no {relative}: graded as released")
            _write_released(assignment, root, into, relative)
        else:
            shutil.copy2(path, into / relative)
    return notes


def _write_released(assignment: registry.Assignment, root: Path, workspace: Path, relative: str) -> None:
    target = workspace / relative
    hint = assignment.hint_for(relative, root)
    student = student_version(target.read_text(encoding="utf-8"), assignment.id, hint, relative)[0]
    target.write_text(student, encoding="utf-8")


def run_tests(selection: str, workspace: Path, test_paths: list[str], timeout: float,
              report: Path) -> tuple[dict | None, str, float]:
    """pytest in a subprocess: (the plugin's report or None, pytest's output, seconds)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "minitransformer.assignments.plugin", "--assignment", selection,
               "--assignment-report", str(report), "--assignment-no-shrink", "-m", "not gpu", *test_paths]
    env = {**os.environ, "PYTHONPATH": str(workspace), "CI": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("HYPOTHESIS_PROFILE", None)  # CI=1 picks the derandomized profile: same grade every run
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True,
                                   timeout=timeout)
        output = completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"the tests did not finish within {timeout:g} s (an infinite loop?)\n"
        output += (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return None, output, time.perf_counter() - started
    seconds = time.perf_counter() - started
    if not report.is_file():
        return None, output, seconds
    result = json.loads(report.read_text(encoding="utf-8"))
    package = Path(result["package"] or "").resolve()
    if package != (workspace / "minitransformer").resolve():
        raise RuntimeError(f"grade: the tests imported minitransformer from {package}, not from the "
                           f"grading workspace {workspace}; uninstall or fix the path")
    return result, output, seconds


def score(assignment: registry.Assignment, report: dict | None, pytest_output: str, notes: list[str],
          seconds: float) -> dict:
    """Gradescope's results.json for one assignment's report."""
    points = float(assignment.points)
    complete = report is not None and report["exitstatus"] in (0, 1) and report["tests"]
    if not complete:
        reason = ("the tests could not run (an import error or a syntax error in the submission?)"
                  if report is None or report["exitstatus"] not in (0, 1, 5) else "no tests were collected")
        return {
            "score": 0.0,
            "execution_time": round(seconds, 1),
            "output": f"Assignment {assignment.id}: 0 / {points:g}: {reason}\n\n{_tail(pytest_output)}",
            "visibility": "visible",
            "stdout_visibility": "visible",
            "tests": [{"name": f"{assignment.id}: the tests run", "score": 0.0, "max_score": points,
                       "status": "failed", "output": _tail(pytest_output), "visibility": "visible"}],
            "extra_data": {"assignment": assignment.id, "max_score": points, "skipped": []},
        }
    graded = [t for t in report["tests"] if t["outcome"] != "skipped"]
    total_weight = sum(t["assignments"][assignment.id] for t in graded) or 1.0
    tests, total, share_so_far = [], 0.0, 0.0
    for number, entry in enumerate(graded, start=1):
        # rounded so that the tests' max_scores add up to the points exactly
        before = round(share_so_far, 4)
        share_so_far += points * entry["assignments"][assignment.id] / total_weight
        max_score = round(round(share_so_far, 4) - before, 4)
        passed = entry["outcome"] == "passed"
        total += max_score if passed else 0.0
        tests.append({
            "name": entry["nodeid"],
            "number": f"{assignment.id[1:]}.{number}",
            "score": max_score if passed else 0.0,
            "max_score": max_score,
            "status": "passed" if passed else "failed",
            "output": "" if passed else _failure_text(entry),
            "visibility": HIDDEN_VISIBILITY if entry["hidden"] else "visible",
        })
    total = round(total, 4)
    passed = sum(t["status"] == "passed" for t in tests)
    summary = [f"Assignment {assignment.id}: {total:g} / {points:g} points, {passed} of {len(tests)} tests passed"]
    summary += [f"note: {n}" for n in notes]
    return {
        "score": total,
        "execution_time": round(seconds, 1),
        "output": "\n".join(summary),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"assignment": assignment.id, "max_score": points,
                       "skipped": [t["nodeid"] for t in report["tests"] if t["outcome"] == "skipped"]},
    }


def _failure_text(entry: dict) -> str:
    if entry["outcome"] == "not run":
        return "did not run (the test session stopped before it)"
    head = f"{entry.get('exception', 'failure')}: {entry.get('message', '')}".strip()
    if entry["outcome"] == "error":
        head = f"error in the test's {entry.get('when', 'setup')}: {head}"
    return f"{head}\n\n{_tail(entry.get('output', ''), 3000)}"


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def grade(assignment_id: str, submission: str | Path | None = None, json_path: str | Path | None = None,
          root: Path | None = None, timeout: float = 900.0) -> dict:
    """Grade a submission (a copy of the project, or a folder with the assignment's files;
    default: this project, the full solution) and return Gradescope's results.json as a dict,
    also written to ``json_path`` when given."""
    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    if not (root / "tests").is_dir():
        raise ValueError(f"grade: {root} has no tests/ folder; run from a source checkout of the project")
    submission = Path(submission) if submission is not None else None
    if submission is not None and not submission.is_dir():
        raise ValueError(f"grade: the submission {submission} is not a folder")
    with tempfile.TemporaryDirectory(prefix=f"grade-{assignment.id}-") as scratch:
        workspace = Path(scratch) / "project"
        workspace.mkdir()
        notes = make_workspace(assignment, root, submission, workspace)
        paths = [p for p in assignment.test_files() if (workspace / p).exists()]
        if (workspace / registry.HIDDEN_TESTS).is_dir():
            paths.append(registry.HIDDEN_TESTS)
        report, output, seconds = run_tests(assignment.id, workspace, paths, timeout, Path(scratch) / "report.json")
    results = score(assignment, report, output, notes, seconds)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def format_table(results: dict) -> str:
    """The results as a table a person reads: one line per test, failures with their reason."""
    rows = []
    for test in results["tests"]:
        mark = "PASS" if test["status"] == "passed" else "FAIL"
        hidden = " (hidden)" if test["visibility"] != "visible" else ""
        rows.append(f"{mark}  {test['score']:6.2f} / {test['max_score']:5.2f}  {test['name']}{hidden}")
        if test["status"] != "passed":
            reason = test["output"].strip().splitlines()[0] if test["output"].strip() else ""
            rows.append(f"      {reason[:150]}")
    for skipped in results["extra_data"].get("skipped", []):
        rows.append(f"SKIP     not scored   {skipped}")
    rows.append("")
    rows.append(results["output"].splitlines()[0])
    rows.extend(line for line in results["output"].splitlines()[1:] if line.startswith("note:"))
    return "\n".join(rows)
