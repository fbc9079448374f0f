"""Operations on a whole class: grade a folder of submissions, build a Gradescope autograder.

``grade_all`` grades every submission in a folder (one subfolder or .zip per student) with the
same sandboxed ``grade``, into one CSV of points per part and a feedback folder (each
student's table as text and their results.json). The instructor's tests are collected once; a
submission that cannot be graded gets 0 and its reason, and the others go on. Each student's
results are written as soon as they are graded, so an interrupted run resumes where it stopped:
a student whose submission is unchanged since their results were written is not graded again.

``build_gradescope`` writes the autograder zip: the instructor's project (hidden tests
included) under the names Gradescope expects, with ``setup.sh`` (install) and
``run_autograder`` (grade /autograder/submission into /autograder/results/results.json) at
its top. ``run_autograder`` reads ``AUTOGRADER_ROOT`` (default /autograder) and ``PYTHON``
(default python3), so the same zip runs locally against a sample submission.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path

from . import registry
from .grading import PER_TEST_TIMEOUT, TOTAL_TIMEOUT, expected_tests, failure_result, format_table, grade
from .releasing import JUNK, RELEASED, is_student_copy, project_root

SKIPPED_ENTRIES = {"__MACOSX", ".DS_Store"}


def submissions_in(folder: Path) -> dict[str, Path]:
    """{student: submission}: each subfolder or .zip of ``folder``, named by its stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"grade-all: the submissions folder {folder} does not exist or is not a folder")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIPPED_ENTRIES or entry.is_symlink():
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix == ".zip"):
            student = entry.stem if entry.is_file() else entry.name
            if student in found:
                raise ValueError(f"grade-all: {folder} holds two submissions of {student!r} "
                                 f"({found[student].name} and {entry.name}); keep one")
            found[student] = entry
    if not found:
        raise ValueError(f"grade-all: {folder} holds no submissions (expected one folder or .zip per student)")
    return found


def fingerprint(submission: Path) -> str:
    """A hash of a submission's names and bytes (regular files only), to tell it unchanged."""
    digest = hashlib.sha256()
    paths = [submission] if submission.is_file() else sorted(p for p in submission.rglob("*"))
    for path in paths:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            continue
        digest.update(path.relative_to(submission).as_posix().encode() if path != submission else b"")
        digest.update(info.st_size.to_bytes(8, "little"))
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _previous(results_path: Path, print_: str) -> dict | None:
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if results.get("extra_data", {}).get("submission_sha256") == print_ else None


def grade_all(assignment_id: str, submissions: str | Path, csv_path: str | Path, feedback: str | Path | None = None,
              root: Path | None = None, timeout: float = TOTAL_TIMEOUT, per_test_timeout: float = PER_TEST_TIMEOUT,
              out=None, expected: list[dict] | None = None) -> list[dict]:
    """Grade every submission in ``submissions``; write ``csv_path`` (one row per student) and,
    in ``feedback`` (default: "feedback" beside the CSV), ``<student>.txt`` and
    ``<student>.json``. Returns the rows. ``expected``: the assignment's tests, when already
    collected (``grading.expected_tests``)."""
    from ..atomic import atomic_write_text

    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    students = submissions_in(Path(submissions))
    csv_path = Path(csv_path)
    feedback = Path(feedback) if feedback else csv_path.parent / "feedback"
    if csv_path.suffix.lower() != ".csv":
        raise ValueError(f"grade-all: --csv {csv_path} should name a .csv file")
    feedback.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, (student, submission) in enumerate(students.items(), start=1):
        print_ = fingerprint(submission)
        results = _previous(feedback / f"{student}.json", print_)
        status = "kept"
        if results is None:
            expected = expected if expected is not None else expected_tests(assignment, root)
            try:
                results = grade(assignment.id, submission, root=root, timeout=timeout,
                                per_test_timeout=per_test_timeout, expected=expected)
                status = "graded"
            except ValueError as error:  # the submission's fault: kept until it changes
                results, status = failure_result(assignment, f"could not be graded: {error}"), "failed"
            except (RuntimeError, OSError) as error:  # the grader's: tried again by the next run
                results, status = failure_result(assignment, f"could not be graded: {error}"), "error"
            if status != "error":
                results["extra_data"]["submission_sha256"] = print_
            atomic_write_text(feedback / f"{student}.txt", format_table(results) + "\n")
            atomic_write_text(feedback / f"{student}.json", json.dumps(results, indent=2) + "\n")
        if out is not None:
            print(f"[{number}/{len(students)}] {student}: {results['score']:g} / {assignment.points} ({status})",
                  file=out, flush=True)
        rows.append(_row(assignment, student, results))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(csv_path, text.getvalue())
    return rows


def _row(assignment: registry.Assignment, student: str, results: dict) -> dict:
    row = {"student": student, "score": f"{results['score']:g}", "max_score": assignment.points}
    for entry in results["tests"]:
        row[entry["name"]] = f"{entry['score']:g}"
    notes = [line[len("note: "):] for line in results["output"].splitlines() if line.startswith("note: ")]
    if not results["extra_data"]["tests"]:  # not graded: the reason is the output itself
        notes = [results["output"].split(": ", 2)[-1]]
    row["notes"] = " | ".join(note[:300] for note in notes)
    return row


# --- Gradescope -------------------------------------------------------------------------------

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image: install the project (the
# grader and the instructor's tests) from /autograder/source.
set -euo pipefail
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update && apt-get install -y python3 python3-pip
fi
cd /autograder/source
python3 -m pip install -e ".[dev]"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission: grade {id} ({title})
# from $AUTOGRADER_ROOT/submission into $AUTOGRADER_ROOT/results/results.json. A submission
# that cannot be graded still gets a results.json (0 points and the reason).
set -u
AUTOGRADER_ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{PYTHON:-python3}}"
mkdir -p "$AUTOGRADER_ROOT/results"
cd "$AUTOGRADER_ROOT/source"
"$PYTHON" -m minitransformer assignments grade {id} --path "$AUTOGRADER_ROOT/submission" \\
    --json "$AUTOGRADER_ROOT/results/results.json" --timeout {timeout:g} --per-test-timeout {per_test:g}
status=$?
# the table went to the log; the score is in results.json whatever the exit status
test -s "$AUTOGRADER_ROOT/results/results.json" || exit "$status"
"""

SCRIPTS = ("setup.sh", "run_autograder")


def build_gradescope(assignment_id: str, out: str | Path, root: Path | None = None,
                     timeout: float = TOTAL_TIMEOUT, per_test_timeout: float = PER_TEST_TIMEOUT) -> list[str]:
    """Write Gradescope's autograder zip for ``assignment_id`` to ``out``; returns its names."""
    from ..atomic import atomic_write_bytes

    assignment = registry.get(assignment_id)
    root = Path(root) if root else project_root()
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ValueError(f"gradescope: --out {out} should name a .zip file")
    if is_student_copy(root) or not (root / registry.HIDDEN_TESTS).is_dir():
        raise ValueError(f"gradescope: {root} is not the instructor's project (no {registry.HIDDEN_TESTS}/, or a "
                         "student copy); build the autograder from the checkout with the solutions")
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        scripts = {"setup.sh": SETUP_SH, "run_autograder": RUN_AUTOGRADER.format(
            id=assignment.id, title=assignment.title, timeout=timeout, per_test=per_test_timeout)}
        for name, text in scripts.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            zipped.writestr(info, text)
            names.append(name)
        for name in RELEASED:
            source = root / name
            files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
            for path in files:
                relative = path.relative_to(root)
                if JUNK(str(path.parent), [path.name]) or any(JUNK(str(root), [part]) for part in relative.parts):
                    continue
                zipped.write(path, relative.as_posix())
                names.append(relative.as_posix())
    atomic_write_bytes(out, buffer.getvalue())
    return names
