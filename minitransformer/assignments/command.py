"""``python -m minitransformer assignments list | release | grade | grade-all | gradescope``."""

from __future__ import annotations

import argparse
import sys

from . import registry
from .grading import PER_TEST_TIMEOUT, TOTAL_TIMEOUT, format_table, grade
from .releasing import project_root, release


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _timeouts(parser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=TOTAL_TIMEOUT,
                        help=f"seconds for all of a submission's tests (default {TOTAL_TIMEOUT:g}, under "
                             "Gradescope's 10 minutes)")
    parser.add_argument("--per-test-timeout", type=_seconds, default=PER_TEST_TIMEOUT,
                        help=f"seconds before one test is stopped and scored 0 (default {PER_TEST_TIMEOUT:g})")


def add_parser(commands) -> None:
    """Add the ``assignments`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser("assignments", help="course assignments: release student copies, grade submissions",
                                 description="Release a student copy of the project with one assignment's code "
                                             "removed, and grade submissions (see lessons/INSTRUCTORS.md).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    actions.add_parser("list", help="the assignments: id, title, lesson, files, points")
    release_parser = actions.add_parser("release", help="write the student copy of one assignment")
    release_parser.add_argument("id", help="assignment id, e.g. a2")
    release_parser.add_argument("--out", required=True, help="new (or empty) folder for the student copy")
    release_parser.add_argument("--carry", metavar="EARLIER_SUBMISSION",
                                help="the student's submission of an earlier assignment (a folder or a .zip): "
                                     "their code, not yours, fills the earlier assignments' regions")
    release_parser.add_argument("--git", action="store_true", help="make the copy a fresh git repository, one commit")
    grade_parser = actions.add_parser("grade", help="run one assignment's tests against a submission, with points")
    grade_parser.add_argument("id", help="assignment id, e.g. a2")
    grade_parser.add_argument("--path", help="the submission: a copy of the project, or a folder with the "
                              "assignment's files, or a .zip of either (default: this project, the full solution)")
    grade_parser.add_argument("--json", metavar="RESULTS_JSON", help="write Gradescope's results.json here")
    _timeouts(grade_parser)
    all_parser = actions.add_parser("grade-all", help="grade a folder of submissions into one CSV and feedback files")
    all_parser.add_argument("id", help="assignment id, e.g. a2")
    all_parser.add_argument("--submissions", required=True,
                            help="folder with one subfolder or .zip per student (named after the student)")
    all_parser.add_argument("--csv", required=True, help="the grades: one row per student, a column per part")
    all_parser.add_argument("--feedback", help="folder for each student's <student>.txt and <student>.json "
                            "(default: feedback/ beside the CSV)")
    _timeouts(all_parser)
    gradescope_parser = actions.add_parser("gradescope", help="build a Gradescope autograder zip for one assignment")
    gradescope_parser.add_argument("id", help="assignment id, e.g. a2")
    gradescope_parser.add_argument("--out", required=True, help="the autograder zip to write, e.g. autograder.zip")
    _timeouts(gradescope_parser)


def run(args: argparse.Namespace, out=None) -> None:
    out = out or sys.stdout
    if args.action == "list":
        root = project_root()
        for a in registry.ASSIGNMENTS:
            print(f"{a.id}  {a.title}", file=out)
            print(f"    lesson: {', '.join(a.lesson_paths(root))}", file=out)
            print(f"    files:  {', '.join(a.files)}", file=out)
            print(f"    points: {a.points:g}, shared by the tests of {', '.join(a.test_files())}", file=out)
    elif args.action == "release":
        removed = release(args.id, args.out, carry=args.carry, git=args.git)
        print(f"wrote the student copy of {args.id} to {args.out}{' (a git repository)' if args.git else ''}; "
              "removed:", file=out)
        for region in removed:
            print(f"    {region.path}:{region.begin}  {region.where}  ({region.code_lines} lines)", file=out)
    elif args.action == "grade":
        results = grade(args.id, args.path, args.json, timeout=args.timeout, per_test_timeout=args.per_test_timeout)
        print(format_table(results), file=out)
        if args.json:
            print(f"results: {args.json}", file=out)
    elif args.action == "grade-all":
        from .classroom import grade_all

        rows = grade_all(args.id, args.submissions, args.csv, args.feedback, timeout=args.timeout,
                         per_test_timeout=args.per_test_timeout, out=out)
        print(f"grades of {len(rows)} submission(s): {args.csv}", file=out)
    elif args.action == "gradescope":
        from .classroom import build_gradescope

        names = build_gradescope(args.id, args.out, timeout=args.timeout, per_test_timeout=args.per_test_timeout)
        print(f"wrote the Gradescope autograder of {args.id} to {args.out} ({len(names)} files); upload it as the "
              "assignment's autograder and set its points to " + str(registry.get(args.id).points), file=out)
