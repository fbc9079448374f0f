"""The course-assignment tooling (minitransformer/assignments, lessons/INSTRUCTORS.md): markers,
the registry against the package, course-order releases without leaks, and grading that a
submission cannot forge (a symlinked file, an environment secret, a forked child that outlives
the run, a patched comparison function)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.assignments import ASSIGNMENTS, get, grade, markers, registry
from minitransformer.assignments.releasing import TOOLING, check_regions, project_root, release
from tests.hidden.planted_bugs import BUGS  # instructor-only, like this file

ROOT = project_root()
IDS = [a.id for a in ASSIGNMENTS]

SOURCE = '''\
class Mul:
    def backward(self, grad):
        """z = a * b;   dz/da = b,  dz/db = a"""
        # BEGIN SOLUTION a2
        a, b = self.saved
        return grad * b, grad * a
        # END SOLUTION a2


def step(x):
    note = "# BEGIN SOLUTION a9 (quoted in a string: not a marker)"
    # BEGIN SOLUTION a1
    return x - 1
    # END SOLUTION a1
'''


def test_handed_out_regions_become_stubs_and_earlier_ones_stay_given():
    student, stubbed = markers.student_version(SOURCE, {"a2"}, {"a2": "see lessons/03_tensor_engine.md"})
    assert [r.where for r in stubbed] == ["Mul.backward"]
    assert '        raise NotImplementedError("a2: write Mul.backward (see lessons/03_tensor_engine.md)")\n' in student
    assert "self.saved" not in student and "# BEGIN GIVEN a1\n    return x - 1\n" in student
    namespace = {}
    exec(student, namespace)
    with pytest.raises(NotImplementedError, match="a2: write Mul.backward"):
        namespace["Mul"]().backward(1.0)
    # grading puts the instructor's code back into every region but the graded one
    cheated = student.replace("    return x - 1\n", "    return 42\n")
    spliced, notes = markers.splice(cheated, SOURCE, {"a1"})
    assert "return x - 1" in spliced and "return 42" not in spliced and not notes


@pytest.mark.parametrize("text, error", [
    ("# BEGIN SOLUTION a1\nx = 1\n", "is never closed"),
    ("x = 1\n# END SOLUTION a1\n", "without a BEGIN"),
    ("# BEGIN SOLUTION a1\n# BEGIN SOLUTION a2\n", "don't nest"),
    ("# BEGIN SOLUTION a1\nx = 1\n# END SOLUTION a2\n", "closes BEGIN SOLUTION a1"),
    ("if x:\n    # BEGIN SOLUTION a1\n    y = 1\n# END SOLUTION a1\n", "not indented like its BEGIN"),
])
def test_markers_that_dont_pair_up_are_reported_with_their_line(text, error):
    with pytest.raises(markers.MarkerError, match=error):
        markers.find_regions(text, "f.py")


@pytest.mark.parametrize("assignment_id", IDS)
def test_registry_matches_the_regions_with_whole_points(assignment_id):
    assignment = get(assignment_id)
    assert check_regions(assignment, ROOT)
    assert assignment.points == 20 and all(isinstance(p.points, int) and p.points > 0 for p in assignment.parts)
    for lesson in assignment.lesson_paths(ROOT):
        assert (ROOT / lesson).is_file(), lesson


@pytest.fixture(scope="module")
def handouts(tmp_path_factory):
    """The released copy of every assignment: {id: (copy, the regions that became stubs)}.
    Each ``release`` checks its copy for the bodies of the functions it hands out."""
    folder = tmp_path_factory.mktemp("handouts")
    return {a: (folder / a, release(a, folder / a)) for a in IDS}


@pytest.fixture(scope="module")
def expected():
    """Every assignment's tests, from one collection run of the instructor's tree."""
    from minitransformer.assignments.grading import expected_tests_of

    return expected_tests_of(list(ASSIGNMENTS), ROOT)


def test_a_release_hands_out_its_assignment_and_later_ones_and_leaks_nothing(handouts):
    copy, stubbed = handouts["a3"]
    assert {r.assignment for r in stubbed} == {"a3", "a4", "a5", "a6"}
    kinds = {(r.assignment, r.kind) for r in markers.regions_in_tree(copy) if not r.path.startswith(TOOLING)}
    assert {k for _, k in kinds} == {"GIVEN", "YOUR CODE"}
    assert {a for a, k in kinds if k == "GIVEN"} == {"a1", "a2"}
    assert sorted(p.name for p in (copy / "minitransformer" / "fast").iterdir()) == ["__init__.py", "cpu"]
    # of the fast layer only the thread settings stay: no op's implementation, no kernel
    assert sorted(p.name for p in (copy / "minitransformer" / "fast" / "cpu").glob("*.py")) == [
        "__init__.py", "parallel.py"]
    for gone in ("tests/hidden", "tests/fast", "tests/test_benchmarks.py", "tests/test_assignments.py",
                 "lessons/INSTRUCTORS.md"):
        assert not (copy / gone).exists(), gone
    for document in [copy / "README.md", *(copy / "lessons").glob("*.md")]:
        assert "](INSTRUCTORS.md)" not in document.read_text() and "](../benchmarks" not in document.read_text()
    assert "def reference_attention" not in (copy / "tests/ops/test_attention.py").read_text()


def test_every_release_leaks_no_handed_out_body(handouts):
    from minitransformer.assignments.leaks import find_leaks

    for assignment_id, (copy, stubbed) in handouts.items():
        assert {r.assignment for r in stubbed} == registry.handed_out_with(assignment_id)
        assert not find_leaks(ROOT, copy, registry.handed_out_with(assignment_id)), assignment_id
    # the check itself sees a body pasted into a test or a lesson
    copy, _ = handouts["a5"]
    adam = (ROOT / "minitransformer/optim/adam.py").read_text().splitlines(keepends=True)
    region = next(r for r in markers.find_regions("".join(adam)) if r.where == "adam_update")
    lesson = copy / "lessons/07_optimizers.md"
    original = lesson.read_text()
    try:
        lesson.write_text(original + "```python\n" + "".join(region.body(adam)) + "```\n")
        assert any("lessons/07_optimizers.md" in leak and "adam_update" in leak
                   for leak in find_leaks(ROOT, copy, {"a5"}))
    finally:
        lesson.write_text(original)


def _region_bodies(text: str, path: str) -> list[tuple[str, str, str]]:
    lines = text.splitlines(keepends=True)
    return [(r.assignment, r.where, "".join(r.body(lines))) for r in markers.find_regions(text, path)]


def test_a_released_handout_is_graded_as_every_later_assignment_exactly_like_its_own_handout(handouts):
    """A released aN graded as aM (M >= N): what the grader runs of the copy's files (their aM
    regions, the rest from aM's view) is aM's own handout, which scores 0 (the next test)."""
    from minitransformer.assignments.grading import graded_text
    from minitransformer.assignments.releasing import view_of_file

    for n, released in enumerate(IDS):
        copy, _ = handouts[released]
        for graded_as in IDS[n:]:
            assignment = get(graded_as)
            for relative in assignment.files:
                view, _ = view_of_file((ROOT / relative).read_text(), relative, graded_as, ROOT)
                graded, notes = graded_text(assignment, relative, (copy / relative).read_text(), view)
                assert not notes, (released, graded_as, notes)
                assert _region_bodies(graded, relative) == _region_bodies(view, relative), (released, graded_as, relative)
                own = [b for a, _, b in _region_bodies(graded, relative) if a == graded_as]
                assert own and all(b.strip().startswith(f'raise NotImplementedError("{graded_as}: write') for b in own)


@pytest.mark.parametrize("assignment_id", IDS)
def test_a_handout_scores_zero_on_its_assignment(handouts, expected, assignment_id):
    copy, _ = handouts[assignment_id]
    results = grade(assignment_id, copy, expected=expected[assignment_id])
    assert results["score"] == 0, results["output"]
    tests = results["extra_data"]["tests"]
    assert tests and not any(t["passed"] for t in tests)
    assert "note:" not in results["output"], results["output"]  # nothing went wrong: the stubs fail


def test_the_solution_scores_full_marks(tmp_path, expected):
    solution = grade("a2", json_path=tmp_path / "results.json", expected=expected["a2"])
    assert solution["score"] == 20 and sum(t["max_score"] for t in solution["tests"]) == 20
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["score"] == 20 and all(t["status"] == "passed" for t in written["tests"])
    assert {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"} <= set(written)
    assert all({"name", "number", "score", "max_score", "status", "output", "visibility"} <= set(t)
               for t in written["tests"])


def _submission_with(tmp_path, name: str, text: str) -> Path:
    folder = tmp_path / "submission" / "nested" / "deeper"  # an upload with extra folder levels
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    return tmp_path / "submission"


def _with_solution(student: str, solution: str, where: str, body: str | None = None) -> str:
    """``student`` (a handout's file) with the stub of ``where`` replaced by ``body``, or by the
    solution's body of it when ``body`` is None."""
    stub = next(line for line in student.splitlines(keepends=True) if f": write {where} (" in line)
    if body is None:
        region = next(r for r in markers.find_regions(solution) if r.where == where)
        body = "".join(region.body(solution.splitlines(keepends=True)))
    return student.replace(stub, body)


def test_mul_backward_alone_earns_its_point(tmp_path, handouts, expected):
    elementwise = (ROOT / "minitransformer/ops/elementwise.py").read_text()
    student = (handouts["a2"][0] / "minitransformer/ops/elementwise.py").read_text()
    results = grade("a2", _submission_with(tmp_path, "elementwise.py", _with_solution(student, elementwise, "Mul.backward")),
                    expected=expected["a2"])
    by_part = {t["name"].split(" ", 1)[1]: t["score"] for t in results["tests"]}
    assert by_part["Mul.backward"] == 1 and results["score"] == 1


def _tests_of(expected: list[dict], *parts: str) -> list[dict]:
    return [t for t in expected if t["part"] in parts]


def test_a_slow_test_a_syntax_error_or_a_failing_import_costs_only_its_own_tests(tmp_path, handouts, expected):
    """A zip with an extra folder level: elementwise.py whose Neg.backward never returns for
    1-D inputs (one test times out), reduce.py with a syntax error, matmul.py whose import
    fails; each costs the tests that need it, with its own reason, and the rest still count."""
    import zipfile

    copy = handouts["a2"][0]
    solution = {name: (ROOT / f"minitransformer/ops/{name}").read_text() for name in ("elementwise.py", "matmul.py")}
    elementwise = (copy / "minitransformer/ops/elementwise.py").read_text()
    for where in ("Add.backward", "Sub.backward", "Mul.backward"):
        elementwise = _with_solution(elementwise, solution["elementwise.py"], where)
    elementwise = _with_solution(elementwise, "", "Neg.backward", "        while grad.ndim == 1:\n"
                                 "            pass\n        return -grad\n")
    files = {"elementwise.py": elementwise,
             "reduce.py": (copy / "minitransformer/ops/reduce.py").read_text() + "\ndef broken(:\n",
             "matmul.py": _with_solution((copy / "minitransformer/ops/matmul.py").read_text(), solution["matmul.py"],
                                         "MatMul.backward") + "\nundefined_name_at_import\n"}
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in files.items():
            zipped.writestr(f"my-upload/minitransformer-a2/minitransformer/ops/{name}", text)
    tests = _tests_of(expected["a2"], "Add, Sub and Neg.backward", "Mul.backward", "Sum and Mean.backward",
                      "MatMul.backward")
    results = grade("a2", archive, expected=tests, per_test_timeout=3)
    parts = {t["name"].split(" ", 1)[1]: t for t in results["tests"]}
    details = {t["name"]: t for t in results["extra_data"]["tests"]}
    assert parts["Mul.backward"]["score"] == 1  # found in the zip, two folders down
    timed_out = [name for name, t in details.items() if "timed out" in t["output"]]
    assert timed_out == ["tests/assignments/test_a2_backward.py::test_neg_backward[0]"], details
    assert "syntax" not in details[timed_out[0]]["output"].lower() and "3 s" in details[timed_out[0]]["output"]
    add_sub_neg = [t for t in details.values() if t["part"] == "Add, Sub and Neg.backward"]
    assert sum(not t["passed"] for t in add_sub_neg) == 1  # the other Neg test and Add's and Sub's pass
    assert parts["Add, Sub and Neg.backward"]["score"] == round(2 * (len(add_sub_neg) - 1) / len(add_sub_neg), 4)
    assert parts["Sum and Mean.backward"]["score"] == 0 and parts["MatMul.backward"]["score"] == 0
    assert "minitransformer/ops/reduce.py has a SyntaxError at line" in results["output"]
    assert "minitransformer/ops/matmul.py: importing it fails (NameError" in results["output"]
    assert results["score"] == 1 + parts["Add, Sub and Neg.backward"]["score"]


CHEATS = {
    "symlink to a secret": None,  # built in the test
    "reads the environment": "import os\nraise SystemExit(os.environ.get('GRADER_SECRET', ''))\n",
    "patches numpy.testing": "import numpy.testing\nnumpy.testing.assert_allclose = lambda *a, **k: None\n",
    "forks a child that rewrites results": textwrap.dedent('''\
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(3)
            for path in sys.argv:
                pass
            open(os.environ.get("HOME", "/tmp") + "/../forged", "w").write("20")
            os._exit(0)
        '''),
    "exits the test process": "import os\nos._exit(0)\n",
}


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_cheats_score_what_the_honest_handout_earns(tmp_path, monkeypatch, handouts, expected, cheat):
    copy = handouts["a2"][0]
    honest = (copy / "minitransformer/ops/elementwise.py").read_text()
    if cheat == "symlink to a secret":
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET-TEXT")
        folder = tmp_path / "submission"
        folder.mkdir()
        os.symlink(secret, folder / "elementwise.py")
        (folder / "reduce.py").write_text((copy / "minitransformer/ops/reduce.py").read_text())
    else:
        folder = _submission_with(tmp_path, "elementwise.py", CHEATS[cheat] + honest)
    monkeypatch.setenv("GRADER_SECRET", "TOP-SECRET-TEXT")
    # the tests of a2's own test file: each would pass if the cheat worked
    tests = [t for t in expected["a2"] if t["nodeid"].startswith("tests/assignments/")]
    results = grade("a2", folder, json_path=tmp_path / "results.json", expected=tests)
    assert results["score"] == 0, (cheat, results["output"])
    assert "TOP-SECRET-TEXT" not in (tmp_path / "results.json").read_text()


# --- planted bugs: every realistic mistake in tests/hidden/planted_bugs.py costs points ---------

def _part(bug):
    return next(p for p in get(bug.assignment).parts if p.name == bug.part)


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory):
    """One pytest run of the parts' tests with each bug planted in turn (see planted_bugs.py)."""
    files = sorted({t.file for bug in BUGS for t in _part(bug).tests})
    report = tmp_path_factory.mktemp("planted") / "planted.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.hidden.planted_bugs",
                           "--planted-report", str(report), *files], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MINITRANSFORMER_KERNELS": "reference"}, timeout=600)
    assert report.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return {entry["id"]: entry for entry in json.loads(report.read_text())}


def test_the_catalogue_covers_every_assignment_with_distinct_bugs():
    assert len({bug.id for bug in BUGS}) == len(BUGS) >= 60
    assert {bug.assignment for bug in BUGS} == set(IDS)
    without = [f"{a.id} {p.name}" for a in ASSIGNMENTS for p in a.parts
               if not any(bug.assignment == a.id and bug.part == p.name for bug in BUGS)]
    assert not without, f"parts without a planted bug: {without}"


@pytest.mark.parametrize("bug", BUGS, ids=lambda bug: bug.id)
def test_a_planted_bug_costs_points(planted_report, bug):
    entry = planted_report[bug.id]
    assert entry["caught"], (f"{bug.id}: every test of the part {bug.part!r} passes with the bug "
                             f"({entry['tests_tried']} tried): the assignment's tests miss it")
    assert entry["failure"], entry  # the student reads why


def test_a_planted_bug_stays_inside_its_region_and_is_undone():
    from minitransformer.ops import elementwise
    from tests.hidden.planted_bugs import Planted

    bug = next(b for b in BUGS if b.function == "Mul.backward")
    a, b = (mt.tensor(np.array([value]), requires_grad=True, dtype=np.float64) for value in (2.0, 5.0))
    with Planted(bug):
        planted = elementwise.Mul.apply(a, b)._ctx.backward(np.ones(1))
    solution = elementwise.Mul.apply(a, b)._ctx.backward(np.ones(1))
    assert [float(g[0]) for g in planted] == [2.0, 5.0] and [float(g[0]) for g in solution] == [5.0, 2.0]


# --- class operations: the command line -------------------------------------------------------

def _cli(*args) -> int:
    from minitransformer.cli import main

    return main(["assignments", *map(str, args)])


@pytest.mark.parametrize("args, error", [
    (("release", "a9", "--out", "{tmp}/x"), "no assignment 'a9'; expected one of a1"),
    (("release", "a3", "--out", "{tmp}/x", "--carry", "{tmp}/nowhere"), "is neither a folder nor a .zip"),
    (("release", "a3", "--out", "{tmp}/x", "--carry", "{tmp}/bad/garbage.zip"), "garbage.zip is not a readable zip file"),
    (("grade", "a2", "--path", "{tmp}/nowhere"), "the submission {tmp}/nowhere does not exist"),
    (("grade-all", "a2", "--submissions", "{tmp}/nowhere", "--csv", "{tmp}/g.csv"), "does not exist or is not a folder"),
    (("grade-all", "a2", "--submissions", "{tmp}/empty", "--csv", "{tmp}/g.csv"), "holds no submissions"),
    (("gradescope", "a2", "--out", "{tmp}/autograder.tar"), "should name a .zip file"),
])
def test_bad_input_is_one_line_and_exit_status_1(tmp_path, capsys, args, error):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "garbage.zip").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_text("")
    assert _cli(*(a.format(tmp=tmp_path) for a in args)) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and error.format(tmp=tmp_path) in message, message
    assert not (tmp_path / "g.csv").exists() and not (tmp_path / "x").exists()  # nothing half-written
    assert not list(tmp_path.glob(".*partial"))


def test_a_non_positive_timeout_is_refused(capsys):
    with pytest.raises(SystemExit):
        _cli("grade", "a2", "--timeout", "-5")
    assert "expected a positive number of seconds" in capsys.readouterr().err


def test_release_carries_the_students_earlier_work_into_a_fresh_git_repository(tmp_path, handouts):
    earlier = (handouts["a2"][0] / "minitransformer/ops/elementwise.py").read_text()
    mine = "        a, b = self.saved\n        return grad * b, grad * a  # alice's own Mul.backward\n"
    submission = _submission_with(tmp_path, "elementwise.py", _with_solution(earlier, "", "Mul.backward", mine))
    out = tmp_path / "a3-alice"
    assert _cli("release", "a3", "--out", out, "--carry", submission, "--git") == 0
    carried = (out / "minitransformer/ops/elementwise.py").read_text()
    region = next(r for r in markers.find_regions(carried) if r.where == "Mul.backward")
    assert region.kind == "GIVEN" and "alice's own" in "".join(region.body(carried.splitlines(keepends=True)))
    # Sub.backward she left as the stub: a stub is not code, the instructor's is kept
    sub = next(r for r in markers.find_regions(carried) if r.where == "Sub.backward")
    assert "NotImplementedError" not in "".join(sub.body(carried.splitlines(keepends=True)))
    readme = (out / "STUDENT_README.md").read_text()
    assert "has no minitransformer/ops/reduce.py: the instructor's code is kept" in readme
    assert "Sub.backward (a2) is still the stub: the instructor's code is kept" in readme
    log = subprocess.run(["git", "-C", str(out), "log", "--oneline"], capture_output=True, text=True, check=True)
    status = subprocess.run(["git", "-C", str(out), "status", "--porcelain"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 1 and "a3" in log.stdout and status.stdout == ""


def test_grade_all_writes_one_csv_row_and_feedback_per_student_and_resumes(tmp_path, handouts, expected):
    import csv
    import io
    import zipfile

    from minitransformer.assignments.classroom import grade_all

    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    (submissions / "alice" / "autograd.py").write_text((ROOT / "minitransformer/autograd.py").read_text())
    with zipfile.ZipFile(submissions / "bob.zip", "w") as zipped:  # the untouched handout, a folder down
        zipped.writestr("handin/autograd.py", (handouts["a1"][0] / "minitransformer/autograd.py").read_text())
    (submissions / "carol").mkdir()
    (submissions / "carol" / "notes.txt").write_text("I did not finish")
    (submissions / ".DS_Store").write_text("")
    csv_path = tmp_path / "grades.csv"
    log = io.StringIO()
    grade_all("a1", submissions, csv_path, out=log, expected=expected["a1"])
    rows = {row["student"]: row for row in csv.DictReader(csv_path.open())}
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert (rows["alice"]["score"], rows["bob"]["score"], rows["carol"]["score"]) == ("20", "0", "0")
    parts = [f"a1.{n} {p.name}" for n, p in enumerate(get("a1").parts, start=1)]
    assert [rows["alice"][p] for p in parts] == [str(p.points) for p in get("a1").parts]
    assert "holds none of minitransformer/autograd.py" in rows["carol"]["notes"]
    feedback = tmp_path / "feedback"
    assert "not written yet: NotImplementedError: a1: write" in (feedback / "bob.txt").read_text()
    assert json.loads((feedback / "alice.json").read_text())["score"] == 20
    assert log.getvalue().count("(graded)") == 2 and "carol: 0 / 20 (failed)" in log.getvalue()
    # a second run grades nothing again: every submission is unchanged since its results
    again = io.StringIO()
    grade_all("a1", submissions, csv_path, out=again, expected=[])
    assert again.getvalue().count("(kept)") == 3
    assert {row["student"]: row["score"] for row in csv.DictReader(csv_path.open())} == {
        "alice": "20", "bob": "0", "carol": "0"}


def test_the_gradescope_autograder_grades_a_sample_submission_locally(tmp_path):
    import stat
    import zipfile

    archive = tmp_path / "autograder.zip"
    assert _cli("gradescope", "a1", "--out", archive, "--per-test-timeout", "30") == 0
    autograder = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert {"setup.sh", "run_autograder", "pyproject.toml", "tests/hidden/test_a4_reference.py"} <= set(names)
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert stat.S_IMODE(zipped.getinfo("run_autograder").external_attr >> 16) == 0o755
        zipped.extractall(autograder / "source")
    assert "--per-test-timeout 30" in (autograder / "source/run_autograder").read_text()
    # a submission with a planted bug: the second path's gradient overwrites the first
    solution = (ROOT / "minitransformer/autograd.py").read_text()
    (autograder / "submission").mkdir()
    (autograder / "submission" / "autograd.py").write_text(
        solution.replace("input_grad = add_gradients(grads[key], input_grad)", "input_grad = input_grad"))
    done = subprocess.run(["bash", str(autograder / "source/run_autograder")], capture_output=True, text=True,
                          env={**os.environ, "AUTOGRADER_ROOT": str(autograder), "PYTHON": sys.executable},
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((autograder / "results/results.json").read_text())
    scores = {t["name"].split(" ", 1)[1]: t["score"] for t in results["tests"]}
    assert scores["backward: gradients add up"] < 6 and 0 < results["score"] < 20
    assert results["score"] == pytest.approx(sum(scores.values()))
    failed = [t for t in results["extra_data"]["tests"] if not t["passed"]]
    assert "test_gradient_accumulates_when_a_tensor_is_used_twice" in " ".join(t["name"] for t in failed)
    assert all(t["output"] for t in failed)  # the student reads why
    assert all(t["visibility"] == "visible" and t["status"] in ("passed", "failed") for t in results["tests"])


def test_grade_all_goes_on_when_the_grader_fails_on_one_and_retries_it_next_time(tmp_path, monkeypatch):
    import csv

    from minitransformer.assignments import classroom
    from minitransformer.assignments.grading import failure_result

    for student in ("ann", "bob", "cy"):
        (tmp_path / "in" / student).mkdir(parents=True)
        (tmp_path / "in" / student / "autograd.py").write_text(f"# {student}\n")
    calls = []

    def fake_grade(assignment_id, submission, **_):
        calls.append(submission.name)
        if submission.name == "bob" and calls.count("bob") == 1:
            raise RuntimeError("grade: the sandbox failed: out of memory")
        results = failure_result(get(assignment_id), "fake")
        results["score"] = 7.0
        return results

    monkeypatch.setattr(classroom, "grade", fake_grade)
    classroom.grade_all("a1", tmp_path / "in", tmp_path / "grades.csv", expected=[])
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "grades.csv").open())}
    assert (rows["ann"]["score"], rows["bob"]["score"], rows["cy"]["score"]) == ("7", "0", "7")
    assert "the sandbox failed: out of memory" in rows["bob"]["notes"]
    classroom.grade_all("a1", tmp_path / "in", tmp_path / "grades.csv", expected=[])
    assert calls == ["ann", "bob", "cy", "bob"]  # only the grader's failure is graded again
    assert next(r for r in csv.DictReader((tmp_path / "grades.csv").open()) if r["student"] == "bob")["score"] == "7"
