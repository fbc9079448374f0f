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


def test_a_release_hands_out_its_assignment_and_later_ones_and_leaks_nothing(tmp_path):
    copy = tmp_path / "a3"
    stubbed = release("a3", copy)
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


@pytest.fixture(scope="module")
def a2_expected():
    from minitransformer.assignments.grading import expected_tests

    return expected_tests(get("a2"), ROOT)


def test_the_solution_scores_full_marks_and_the_handout_zero(tmp_path, a2_expected):
    solution = grade("a2", expected=a2_expected)
    assert solution["score"] == 20 and sum(t["max_score"] for t in solution["tests"]) == 20
    copy = tmp_path / "a2"
    release("a2", copy)
    handout = grade("a2", copy, json_path=tmp_path / "results.json", expected=a2_expected)
    assert handout["score"] == 0
    assert all(t["output"] == "" or "not written yet" in t["output"] or "FAIL" in t["output"] for t in handout["tests"])
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 0


def _submission_with(tmp_path, name: str, text: str) -> Path:
    folder = tmp_path / "submission" / "nested" / "deeper"  # an upload with extra folder levels
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    return tmp_path / "submission"


def test_mul_backward_alone_earns_its_point(tmp_path, a2_expected):
    elementwise = (ROOT / "minitransformer/ops/elementwise.py").read_text()
    copy = tmp_path / "a2"
    release("a2", copy)
    student = (copy / "minitransformer/ops/elementwise.py").read_text()
    stub = next(line for line in student.splitlines(keepends=True) if "a2: write Mul.backward" in line)
    region = next(r for r in markers.find_regions(elementwise) if r.where == "Mul.backward")
    body = "".join(region.body(elementwise.splitlines(keepends=True)))
    results = grade("a2", _submission_with(tmp_path, "elementwise.py", student.replace(stub, body)), expected=a2_expected)
    by_part = {t["name"].split(" ", 1)[1]: t["score"] for t in results["tests"]}
    assert by_part["Mul.backward"] == 1 and results["score"] == 1


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
def test_cheats_score_what_the_honest_handout_earns(tmp_path, monkeypatch, a2_expected, cheat):
    copy = tmp_path / "a2"
    release("a2", copy)
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
    results = grade("a2", folder, json_path=tmp_path / "results.json", expected=a2_expected)
    assert results["score"] == 0, (cheat, results["output"])
    assert "TOP-SECRET-TEXT" not in (tmp_path / "results.json").read_text()


# --- planted bugs: every realistic mistake in tests/hidden/planted_bugs.py costs points ---------

from tests.hidden.planted_bugs import BUGS  # noqa: E402  (instructor-only, like this file)


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
