"""``grade``: run one assignment's tests against a submission and score them per part.

The process that scores and writes results.json never imports student code:

1. a workspace is made from the instructor's project as the assignment's copy sees it
   (``releasing.write_view``: earlier assignments' solutions, stubs for later ones, no fast
   layer) plus every test, hidden ones included;
2. the assignment's files are read from the submission (``submission.find_files``: regular
   files only, size-limited, at any folder depth, or from a zip) and written into it; in each,
   the regions of other assignments get the workspace's code back (``markers.splice``), so a
   file is graded on its assignment's regions only. A file with a syntax error, or one whose
   import fails, is graded as released (its tests score 0) and the others still count;
3. the instructor's tree, not the submission, says which tests there are (a trusted
   collection run), and the supervisor (``sandbox.py``) runs them with a clean environment
   (``MINITRANSFORMER_KERNELS=reference``, no inherited variables), a per-test time limit and
   a total one, every process it started killed at the end;
4. each test's outcome comes back signed over a pipe; only then are the points computed and
   results.json written, at a path no student process was told.

Points: each part's whole points are shared among its tests (``registry.share``), so a part
scores its share of the tests it passes and the total is exact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from . import markers, registry
from .releasing import is_student_copy, project_root, view_of_file, write_view
from .submission import find_files, unpack_zip

WORKSPACE = ("minitransformer", "tests", "pyproject.toml")
PER_TEST_TIMEOUT = 60.0  # seconds
TOTAL_TIMEOUT = 540.0  # under Gradescope's default autograder limit of 10 minutes
STARTUP_TIMEOUT = 120.0  # from starting pytest to its first test
HERE = Path(__file__).resolve().parent
BOOTSTRAP = ("import sys; sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)]; import mt_grader_plugin; "
             "import pytest; sys.exit(pytest.main(sys.argv[1:], plugins=[mt_grader_plugin]))")
IMPORT_CHECK = "import sys; sys.path.insert(0, sys.argv[1]); import minitransformer"


def clean_environment(scratch: Path) -> dict:
    """What student code sees of the environment: nothing of the grader's, beyond PATH."""
    import os

    home, tmp = scratch / "home", scratch / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "TMPDIR": str(tmp),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "CI": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0", "MINITRANSFORMER_KERNELS": "reference", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(home), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def supervise(job: dict) -> dict:
    """Run a job under sandbox.py (a separate process of the standard library only)."""
    done = subprocess.run([sys.executable, "-I", str(HERE / "sandbox.py")], input=json.dumps(job),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"grade: the sandbox failed: {done.stderr.strip()[-1000:]}")
    return json.loads(done.stdout)


def _job(scratch: Path, workspace: Path, mode: str, test_paths: list[str], tests: list[str] = (),
         per_test_timeout: float = PER_TEST_TIMEOUT, total_timeout: float = TOTAL_TIMEOUT) -> dict:
    plugin_dir = scratch / f"grader-{mode}"
    plugin_dir.mkdir(exist_ok=True)
    shutil.copy(HERE / "grader_plugin.py", plugin_dir / "mt_grader_plugin.py")
    ini = plugin_dir / "pytest.ini"
    ini.write_text("[pytest]\naddopts =\n", encoding="utf-8")
    argv = [sys.executable, "-I", "-c", BOOTSTRAP, str(plugin_dir), str(workspace),
            "-q", "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", str(workspace),
            "--confcutdir", str(workspace), "-W", "ignore::pytest.PytestUnknownMarkWarning",
            *(["--collect-only"] if mode == "collect" else []), *test_paths]
    return {"argv": argv, "cwd": str(workspace), "env": clean_environment(scratch), "mode": mode,
            "tests": list(tests), "output": str(scratch / f"{mode}-output.txt"),
            "per_test_timeout": per_test_timeout, "total_timeout": total_timeout,
            "startup_timeout": STARTUP_TIMEOUT}


def test_paths(assignment: registry.Assignment, tree: Path) -> list[str]:
    paths = [p for p in assignment.test_files() if (tree / p).exists()]
    if (tree / registry.HIDDEN_TESTS).is_dir():
        paths.append(registry.HIDDEN_TESTS)
    return paths


def files_of(tests: list[dict]) -> list[str]:
    """The test files that hold these tests: all a grading run needs to collect."""
    return sorted({test["nodeid"].split("::", 1)[0] for test in tests})


def expected_tests(assignment: registry.Assignment, root: Path) -> list[dict]:
    """The assignment's tests as the instructor's tree has them (node id, part, weight,
    hidden), from a collection run of that tree: a submission cannot add or hide any."""
    return expected_tests_of([assignment], root)[assignment.id]


def expected_tests_of(assignments: list[registry.Assignment], root: Path) -> dict[str, list[dict]]:
    """``expected_tests`` of several assignments, from one collection run (collecting imports
    the test modules only, so the view of the first assignment serves them all)."""
    with tempfile.TemporaryDirectory(prefix="collect-") as scratch:
        scratch = Path(scratch)
        workspace = scratch / "project"
        workspace.mkdir()
        write_view(assignments[0].id, root, workspace, WORKSPACE, student=False)
        paths = sorted({p for a in assignments for p in test_paths(a, workspace)})
        result = supervise(_job(scratch, workspace, "collect", paths))
    items = [item for event in result["runs"][0]["events"] if event.get("event") == "collected"
             for item in event["items"]]
    found = {}
    for assignment in assignments:
        tests = []
        for item in items:
            marks, nodeid = item["marks"], item["nodeid"]
            part = assignment.part_of(nodeid, marks)
            if part is None or "gpu" in marks or item["skipped"]:
                continue
            weight = marks.get("weight", 1)
            tests.append({"nodeid": nodeid, "part": part.name, "hidden": registry.is_hidden(nodeid, marks),
                          "weight": weight if isinstance(weight, (int, float)) and weight > 0 else 1})
        if not tests:
            raise RuntimeError(f"grade {assignment.id}: collecting the instructor's tests found none:\n"
                               f"{result.get('output_tail', '')[-3000:]}")
        found[assignment.id] = tests
    return found


def _refuse_self_import(submission: Path, root: Path) -> None:
    """The grader must not be the submission's own package (``cd submission; python -m ...``)."""
    package = HERE.parent
    for inside, name in ((package, "the running minitransformer package"), (root, "the instructor's project")):
        if inside.resolve() == submission.resolve() or submission.resolve() in inside.resolve().parents:
            raise ValueError(
                f"grade: {name} ({inside}) lies inside the submission {submission}: the grader would run the "
                "submission's own code. Run it from the instructor's checkout: `cd` out of the submission "
                "and use the `minitransformer` command or `python -I -m minitransformer`"
            )


def _import_error_file(output: str, workspace: Path, files: list[str]) -> str | None:
    """The submitted file in which an import traceback ends."""
    last = None
    for line in output.splitlines():
        for relative in files:
            if f'File "{workspace / relative}"' in line:
                last = relative
    return last


def graded_text(assignment: registry.Assignment, relative: str, submitted: str, view: str) -> tuple[str, list[str]]:
    """A submitted file as it is graded: the assignment's own regions as the student wrote them,
    every other region with the code of the workspace's ``view`` of that file (so a released
    copy of an earlier assignment, graded as this one, runs exactly this one's handout)."""
    others = {a.id for a in registry.ASSIGNMENTS} - {assignment.id}
    try:
        spliced, missing = markers.splice(submitted, view, others, relative)
    except markers.MarkerError as error:
        return submitted, [f"{error}: the file is graded as it is"]
    return spliced, [f"{m}: that region is graded as written" for m in missing]


def prepare_submission(assignment: registry.Assignment, root: Path, submission: Path, workspace: Path,
                       scratch: Path) -> list[str]:
    """Write the submission's files into the workspace; returns notes for the output."""
    found, notes = find_files(submission, list(assignment.files))
    if not found:
        raise ValueError(f"grade {assignment.id}: {submission} holds none of {', '.join(assignment.files)} "
                         "(expected a copy of the project, the files themselves, or a zip of either)")
    for relative in assignment.files:
        target = workspace / relative
        text, problem = found.get(relative, (None, "is missing"))
        if text is not None:
            try:
                compile(text, relative, "exec")
            except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
                line = getattr(error, "lineno", None)
                text, problem = None, f"has a {type(error).__name__} at line {line}: {getattr(error, 'msg', error)}"
        if text is None:
            notes.append(f"{relative} {problem}: graded as released (the tests that need it score 0)")
            continue
        spliced, file_notes = graded_text(assignment, relative, text, target.read_text(encoding="utf-8"))
        notes += file_notes
        target.write_text(spliced, encoding="utf-8")
    # an import that fails (a NameError at module level...) costs only its file
    for _ in assignment.files:
        job = _job(scratch, workspace, "run", [], [], total_timeout=60)
        done = subprocess.run([sys.executable, "-I", "-c", IMPORT_CHECK, str(workspace)], cwd=workspace,
                              env=job["env"], capture_output=True, text=True, timeout=120,
                              start_new_session=True)
        if done.returncode == 0:
            break
        culprit = _import_error_file(done.stderr, workspace, list(assignment.files))
        if culprit is None:
            notes.append("importing the package fails: " + done.stderr.strip().splitlines()[-1][:300])
            break
        error = done.stderr.strip().splitlines()[-1][:300]
        notes.append(f"{culprit}: importing it fails ({error}): graded as released (the tests that need it score 0)")
        original = root / culprit
        if not is_student_copy(root):
            (workspace / culprit).write_text(view_of_file(original.read_text(encoding="utf-8"), culprit,
                                                          assignment.id, root)[0], encoding="utf-8")
        else:
            shutil.copy(original, workspace / culprit)
    return notes


def _outcomes(result: dict, per_test_timeout: float, total_timeout: float) -> tuple[dict, list[str]]:
    """{node id: entry} from the supervisor's runs, and notes (collection errors, forgeries)."""
    outcomes, notes, collect_errors = {}, [], []
    for run in result["runs"]:
        for event in run["events"]:
            if event.get("event") == "result":
                outcomes[event["nodeid"]] = event
            elif event.get("event") == "collect error":
                collect_errors.append(event)
        if run["forged"]:
            notes.append(f"{run['forged']} message(s) on the results channel were not the grader's: ignored")
        ended = run["ended"] or {}
        test = ended.get("test")
        if ended.get("why") == "timeout":
            outcomes[test] = {"outcome": "timeout", "message": f"timed out: still running after "
                              f"{per_test_timeout:g} s (an infinite loop, or far too slow?)"}
        elif ended.get("why") == "crash":
            outcomes[test] = {"outcome": "crashed", "message": "the test process died during this test (exit "
                              f"code {ended.get('returncode')}): os._exit, a crash or running out of memory?"}
        elif ended.get("why") == "time limit":
            notes.append(f"the grading time limit of {total_timeout:g} s ran out")
            if test:
                outcomes[test] = {"outcome": "timeout", "message": "stopped: the grading time limit ran out"}
        elif ended.get("why") == "startup timeout":
            notes.append(f"the tests did not start within {STARTUP_TIMEOUT:g} s (an import that never ends?)")
    for error in collect_errors:
        head = error["message"].strip().splitlines()[-1][:300] if error["message"].strip() else ""
        notes.append(f"could not collect {error['nodeid']}: {head}")
    return outcomes, notes


def _message(entry: dict | None, reason_not_run: str) -> str:
    if entry is None:
        return f"did not run: {reason_not_run}"
    outcome = entry["outcome"]
    if outcome == "skipped":
        return f"skipped (counts as failed: the official grade runs this test): {entry.get('message', '')}"
    if outcome in ("timeout", "crashed"):
        return entry["message"]
    if entry.get("cause"):
        return f"not written yet: NotImplementedError: {entry['cause']}"
    head = entry.get("message") or entry.get("exception", "failure")
    if outcome == "error":
        head = f"error in the test's {entry.get('when', 'setup')}: {head}"
    return head


def score(assignment: registry.Assignment, tests: list[dict], outcomes: dict, notes: list[str],
          seconds: float, reason_not_run: str = "the test session stopped before it") -> dict:
    """Gradescope's results.json: one entry per part, with each test's result in its output."""
    entries, details, total = [], [], Fraction(0)
    for number, part in enumerate(assignment.parts, start=1):
        mine = [t for t in tests if t["part"] == part.name]
        shares = registry.share(part.points, [t["weight"] for t in mine])
        earned, lines = Fraction(0), []
        for test, share in zip(mine, shares):
            entry = outcomes.get(test["nodeid"])
            passed = entry is not None and entry["outcome"] == "passed"
            earned += share if passed else 0
            message = "" if passed else _message(entry, reason_not_run)
            label = test["nodeid"] + (" (hidden)" if test["hidden"] else "")
            lines.append(f"{'PASS' if passed else 'FAIL'}  {label}" + (f"\n      {_first_lines(message)}" if message else ""))
            details.append({"name": test["nodeid"], "part": part.name, "passed": passed,
                            "points": float(share), "hidden": test["hidden"],
                            "output": "" if passed or test["hidden"] else message[:3000]})
        if not mine:
            lines.append("no test of this part ran on this machine (its points are lost, not moved)")
        total += earned
        entries.append({
            "name": f"{assignment.id}.{number} {part.name}",
            "number": f"{assignment.id[1:]}.{number}",
            "score": round(float(earned), 4),
            "max_score": part.points,
            "status": "passed" if earned == part.points and mine else "failed",
            "output": "\n".join(lines),
            "visibility": "visible",
        })
    passed = sum(d["passed"] for d in details)
    summary = [f"Assignment {assignment.id}: {float(total):g} / {assignment.points} points, "
               f"{passed} of {len(details)} tests passed"]
    summary += [f"note: {n}" for n in notes]
    return {
        "score": round(float(total), 4),
        "execution_time": round(seconds, 1),
        "output": "\n".join(summary),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": entries,
        "extra_data": {"assignment": assignment.id, "max_score": assignment.points, "tests": details},
    }


def _first_lines(text: str, lines: int = 6) -> str:
    kept = text.strip().splitlines()[:lines]
    return "\n      ".join(line[:200] for line in kept)


def failure_result(assignment: registry.Assignment, message: str) -> dict:
    """results.json for a submission that could not be graded at all: 0, and why."""
    return {"score": 0.0, "execution_time": 0.0, "output": f"Assignment {assignment.id}: 0 / {assignment.points}: {message}",
            "visibility": "visible", "stdout_visibility": "hidden",
            "tests": [{"name": f"{assignment.id}.{n} {p.name}", "number": f"{assignment.id[1:]}.{n}", "score": 0.0,
                       "max_score": p.points, "status": "failed", "output": message, "visibility": "visible"}
                      for n, p in enumerate(assignment.parts, start=1)],
            "extra_data": {"assignment": assignment.id, "max_score": assignment.points, "tests": []}}


def write_results(results: dict, json_path: str | Path) -> None:
    from ..atomic import atomic_write_text

    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(json_path), json.dumps(results, indent=2) + "\n")


def grade(assignment_id: str, submission: str | Path | None = None, json_path: str | Path | None = None,
          root: Path | None = None, timeout: float = TOTAL_TIMEOUT, per_test_timeout: float = PER_TEST_TIMEOUT,
          expected: list[dict] | None = None) -> dict:
    """Grade a submission (a copy of the project, a folder with the assignment's files, or a
    zip of either; default: ``root`` itself) and return Gradescope's results.json as a dict,
    also written to ``json_path`` when given (even when the submission cannot be graded: then
    with 0 points and the reason, and the ValueError is raised after)."""
    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    if not (root / "tests").is_dir():
        raise ValueError(f"grade: {root} has no tests/ folder; run from a source checkout of the project")
    try:
        results = _grade(assignment, Path(submission) if submission is not None else None, root, timeout,
                         per_test_timeout, expected)
    except ValueError as error:
        if json_path is not None:
            write_results(failure_result(assignment, str(error)), json_path)
        raise
    if json_path is not None:
        write_results(results, json_path)
    return results


def _grade(assignment, submission, root, timeout, per_test_timeout, expected) -> dict:
    started = time.perf_counter()
    if submission is not None and not submission.exists():
        raise ValueError(f"grade: the submission {submission} does not exist")
    if submission is not None and submission.is_dir() and submission.resolve() != root.resolve():
        _refuse_self_import(submission, root)
    tests = expected if expected is not None else expected_tests(assignment, root)
    with tempfile.TemporaryDirectory(prefix=f"grade-{assignment.id}-") as scratch:
        scratch = Path(scratch)
        workspace = scratch / "project"
        workspace.mkdir()
        write_view(assignment.id, root, workspace, WORKSPACE, student=False)
        notes = []
        if submission is None or submission.resolve() == root.resolve():
            # the tree's own files: the instructor's solution, or a student's work in their copy
            if not is_student_copy(root):
                _restore_solution(assignment, root, workspace)
        else:
            if submission.is_file() and submission.suffix == ".zip":
                unpacked = scratch / "unpacked"
                unpacked.mkdir()
                notes += unpack_zip(submission, unpacked)
                submission = unpacked
            elif not submission.is_dir():
                raise ValueError(f"grade: the submission {submission} is neither a folder nor a .zip file")
            notes += prepare_submission(assignment, root, submission, workspace, scratch)
        job = _job(scratch, workspace, "run", files_of(tests), [t["nodeid"] for t in tests],
                   per_test_timeout=per_test_timeout, total_timeout=timeout)
        result = supervise(job) if tests else {"runs": []}
    outcomes, run_notes = _outcomes(result, per_test_timeout, timeout)
    reason = "the test session stopped before it"
    if run_notes and not outcomes:
        reason = run_notes[-1]
    elif not outcomes:
        reason = "the tests could not run: " + (result.get("output_tail", "").strip().splitlines() or ["?"])[-1][:300]
    return score(assignment, tests, outcomes, notes + run_notes, time.perf_counter() - started, reason)


def _restore_solution(assignment: registry.Assignment, root: Path, workspace: Path) -> None:
    """The workspace with the instructor's solution of the assignment's own regions."""
    others = {a.id for a in registry.ASSIGNMENTS} - {assignment.id}
    for relative in assignment.files:
        view = (workspace / relative).read_text(encoding="utf-8")
        solution = (root / relative).read_text(encoding="utf-8")
        spliced, _ = markers.splice(solution, view, others, relative)
        (workspace / relative).write_text(spliced, encoding="utf-8")


def format_table(results: dict) -> str:
    """The results as a person reads them: each part with its points, then its tests."""
    rows = []
    for entry in results["tests"]:
        rows.append(f"{entry['score']:6.2f} / {entry['max_score']:<3}  {entry['name']}")
        rows.extend(f"    {line}" for line in entry["output"].splitlines())
    rows.append("")
    rows.extend(results["output"].splitlines())
    return "\n".join(rows)
