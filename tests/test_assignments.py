"""The course-assignment tooling (minitransformer/assignments, lessons/INSTRUCTORS.md).

For every assignment: its released copy imports, every one of its tests fails with the
NotImplementedError of a removed region (not with some other crash), a sample of the tests of
the assignments that don't build on it still passes there, and the full solution scores full
marks. Then the whole cycle of one assignment (a2) through the command line: release, grade
the untouched copy (0 points), grade the solution (all points), write back one function
(partial credit), and the results.json fields a course platform reads.

The released copies run a sample of the other assignments' tests, not all: a released copy
differs from the solution only inside the removed regions, and the solution passes every test
(checked here too), so a few tests per other assignment are enough to show that no other
assignment's code went missing with it (see lessons/INSTRUCTORS.md).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from minitransformer.assignments import ASSIGNMENTS, get, grade, markers
from minitransformer.assignments.grading import run_tests
from minitransformer.assignments.releasing import TOOLING, check_regions, project_root, release
from minitransformer.cli import main

ROOT = project_root()
IDS = [a.id for a in ASSIGNMENTS]
SAMPLE = 3  # tests per other assignment in a released copy
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


# --- markers --------------------------------------------------------------------------------

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
    # BEGIN SOLUTION a5
    return x - 1
    # END SOLUTION a5
'''


def test_a_region_becomes_one_raise_and_keeps_signature_and_docstring():
    student, removed = markers.student_version(SOURCE, "a2", "see lessons/03_tensor_engine.md")
    assert [r.where for r in removed] == ["Mul.backward"]
    assert '        """z = a * b;   dz/da = b,  dz/db = a"""\n' \
           '        raise NotImplementedError("a2: write Mul.backward (see lessons/03_tensor_engine.md)")\n' in student
    assert "self.saved" not in student and "SOLUTION a" not in student.replace("SOLUTION a9", "")
    assert "    return x - 1\n" in student  # another assignment's solution stays, without markers
    namespace = {}
    exec(student, namespace)
    with pytest.raises(NotImplementedError, match="a2: write Mul.backward"):
        namespace["Mul"]().backward(1.0)


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


def test_hidden_tests_are_cut_out_of_a_test_file():
    text = textwrap.dedent('''\
        import pytest


        def test_visible():
            pass


        @pytest.mark.hidden
        @pytest.mark.parametrize("n", [1, 2])
        def test_secret(n):
            pass


        def test_also_visible():
            pass
        ''')
    visible = markers.without_hidden_tests(text)
    assert "test_secret" not in visible and "test_visible" in visible and "test_also_visible" in visible
    assert markers.without_hidden_tests("import pytest\npytestmark = [pytest.mark.hidden]\n") is None


# --- the registry against the package ----------------------------------------------------------

@pytest.mark.parametrize("assignment_id", IDS)
def test_registry_matches_the_solution_regions_and_the_lessons(assignment_id):
    assignment = get(assignment_id)
    regions = check_regions(assignment, ROOT)  # raises if files and regions disagree
    assert regions
    for lesson in assignment.lesson_paths(ROOT):
        assert (ROOT / lesson).is_file(), lesson
    for tests in assignment.tests:
        assert (ROOT / tests.file).is_file(), tests.pattern
    assert set(assignment.uses) <= set(IDS) - {assignment_id}


def test_list_shows_every_assignment(capsys):
    assert main(["assignments", "list"]) == 0
    out = capsys.readouterr().out
    for assignment in ASSIGNMENTS:
        assert assignment.id in out and assignment.title in out and assignment.files[0] in out


# --- every assignment: the released copy, and the solution's grade -----------------------------

@pytest.mark.parametrize("assignment_id", IDS)
def test_the_full_solution_scores_full_marks(assignment_id):
    results = grade(assignment_id)
    assignment = get(assignment_id)
    failed = [t["name"] for t in results["tests"] if t["status"] != "passed"]
    assert not failed and results["score"] == assignment.points, results["output"]
    names = [t["name"] for t in results["tests"]] + results["extra_data"]["skipped"]
    for tests in assignment.tests:  # every pattern still picks tests (none renamed away)
        if tests.file.startswith("tests/crosscheck/") and not any(n.startswith(tests.file) for n in names):
            continue  # PyTorch missing: the cross-checks skip as a module
        assert any(tests.matches(n) for n in names), f"{tests.pattern} matches no test"


@pytest.mark.parametrize("assignment_id", IDS)
def test_a_released_copy_fails_exactly_the_assignments_tests(assignment_id, tmp_path):
    copy = tmp_path / "student"
    removed = release(assignment_id, copy)
    assert not [f for f in get(assignment_id).fast_files if (copy / f).exists()]  # its ops run as written
    assert {r.path for r in removed} == set(get(assignment_id).files)
    assert not [r for r in markers.regions_in_tree(copy) if not r.path.startswith(TOOLING)]
    assert not (copy / "tests" / "hidden").exists() and (copy / "STUDENT_README.md").is_file()

    independent = [a.id for a in ASSIGNMENTS if a.id != assignment_id and assignment_id not in a.uses]
    selection = ",".join([assignment_id] + [f"{other}:{SAMPLE}" for other in independent])
    paths = sorted({f for a in ASSIGNMENTS for f in a.test_files()})
    # run_tests also checks that the tests imported the released copy's package
    report, output, _ = run_tests(selection, copy, paths, timeout=600, report=tmp_path / "report.json")
    assert report is not None and report["exitstatus"] in (0, 1), output
    own = [t for t in report["tests"] if assignment_id in t["assignments"] and t["outcome"] != "skipped"]
    assert own, output
    not_stubbed = [(t["nodeid"], t["outcome"], t.get("exception"), t.get("message", "")[:200]) for t in own
                   if t.get("exception") != "NotImplementedError"
                   or not t["message"].startswith(f"{assignment_id}: write ")]
    assert not not_stubbed, "tests that don't fail on the removed code:\n" + "\n".join(map(str, not_stubbed))
    others = [t for t in report["tests"] if assignment_id not in t["assignments"]]
    broken = [(t["nodeid"], t["outcome"], t.get("message", "")[:200]) for t in others
              if t["outcome"] not in ("passed", "skipped")]
    assert not broken, "other assignments' tests broken by the release:\n" + "\n".join(map(str, broken))
    assert {a for t in others for a in t["assignments"]} >= set(independent)


# --- the whole cycle of one assignment, through the command line ---------------------------------

def check_results_json(path: Path, points: float) -> dict:
    results = json.loads(path.read_text())
    assert isinstance(results["score"], (int, float)) and results["visibility"] in VISIBILITIES
    assert isinstance(results["output"], str) and results["tests"]
    for test in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"] and test["visibility"] in VISIBILITIES
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(points, abs=1e-9)
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"], abs=1e-9)
    return results


def test_release_grade_and_partial_credit_of_a2(tmp_path, capsys):
    points = get("a2").points
    student = tmp_path / "student"
    assert main(["assignments", "release", "a2", "--out", str(student)]) == 0
    assert "autograd.py" in capsys.readouterr().out

    # the untouched copy: every test fails on a NotImplementedError, 0 points
    assert main(["assignments", "grade", "a2", "--path", str(student), "--json", str(tmp_path / "released.json")]) == 0
    table = capsys.readouterr().out
    assert "FAIL" in table and "PASS" not in table
    released = check_results_json(tmp_path / "released.json", points)
    assert released["score"] == 0
    assert all(t["output"].startswith("NotImplementedError: a2: write ") for t in released["tests"])

    # the full solution: every point
    assert main(["assignments", "grade", "a2", "--json", str(tmp_path / "solution.json")]) == 0
    assert check_results_json(tmp_path / "solution.json", points)["score"] == points

    # one function written (the solution's unbroadcast copied back), handed in as bare files
    solution = (ROOT / "minitransformer/autograd.py").read_text()
    region = next(r for r in markers.find_regions(solution) if r.where == "unbroadcast")
    body = "".join(solution.splitlines(keepends=True)[region.begin:region.end - 1])
    handed_in = tmp_path / "handed_in"
    handed_in.mkdir()
    for relative in get("a2").files:
        shutil.copy(student / relative, handed_in / Path(relative).name)
    autograd = handed_in / "autograd.py"
    stub = next(line for line in autograd.read_text().splitlines(keepends=True) if "a2: write unbroadcast" in line)
    autograd.write_text(autograd.read_text().replace(stub, body))
    assert main(["assignments", "grade", "a2", "--path", str(handed_in), "--json", str(tmp_path / "partial.json")]) == 0
    partial = check_results_json(tmp_path / "partial.json", points)
    assert 0 < partial["score"] < points
    passed = [t["name"] for t in partial["tests"] if t["status"] == "passed"]
    assert passed == ["tests/test_autograd.py::test_unbroadcast_sums_each_copy_back[numpy]"]


def test_a_submission_that_does_not_import_scores_zero_with_the_error(tmp_path):
    broken = tmp_path / "submission"
    broken.mkdir()
    (broken / "sgd.py").write_text("def step(:\n")
    results = grade("a5", broken)
    assert results["score"] == 0 and "SyntaxError" in results["output"]
    assert results["tests"][0]["max_score"] == get("a5").points


def test_hidden_tests_are_graded_but_never_released(tmp_path):
    project = tmp_path / "instructor"
    for name in ("minitransformer", "tests", "lessons", "pyproject.toml", "README.md"):
        source = ROOT / name
        (shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
         if source.is_dir() else shutil.copy(source, project / name))
    (project / "tests" / "hidden").mkdir()
    (project / "tests" / "hidden" / "test_a5_more.py").write_text(textwrap.dedent('''\
        import pytest
        from minitransformer.optim.schedule import cosine_lr


        @pytest.mark.a5
        @pytest.mark.weight(4)
        def test_the_schedule_ends_at_min_lr():
            assert cosine_lr(100, 1.0, 10, 50, 0.1) == 0.1
        '''))
    schedule_tests = project / "tests" / "optim" / "test_schedule.py"
    schedule_tests.write_text(schedule_tests.read_text() + textwrap.dedent('''

        @pytest.mark.hidden
        @pytest.mark.a5
        def test_shape_of_the_schedule_in_secret():
            from minitransformer.optim.schedule import cosine_lr

            assert cosine_lr(0, 1.0, 0, 10, 0.0) == 1.0
        '''))

    student = tmp_path / "student"
    release("a5", student, root=project)
    assert not (student / "tests" / "hidden").exists()
    assert "in_secret" not in (student / "tests" / "optim" / "test_schedule.py").read_text()

    results = grade("a5", root=project)
    by_name = {t["name"]: t for t in results["tests"]}
    hidden = by_name["tests/hidden/test_a5_more.py::test_the_schedule_ends_at_min_lr"]
    secret = by_name["tests/optim/test_schedule.py::test_shape_of_the_schedule_in_secret"]
    assert hidden["visibility"] == secret["visibility"] == "after_published"
    ordinary = by_name["tests/optim/test_schedule.py::test_matches_nanogpts_get_lr"]
    assert hidden["max_score"] == pytest.approx(4 * ordinary["max_score"], rel=1e-3)
    assert results["score"] == get("a5").points
