"""``python -m minitransformer assignments list | release | grade``."""

from __future__ import annotations

import argparse
import sys

from . import registry
from .grading import format_table, grade
from .releasing import project_root, release


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
    grade_parser = actions.add_parser("grade", help="run one assignment's tests against a submission, with points")
    grade_parser.add_argument("id", help="assignment id, e.g. a2")
    grade_parser.add_argument("--path", help="the submission: a copy of the project, or a folder with the "
                              "assignment's files (default: this project, the full solution)")
    grade_parser.add_argument("--json", metavar="RESULTS_JSON", help="write Gradescope's results.json here")
    grade_parser.add_argument("--timeout", type=float, default=900.0, help="seconds before the tests are stopped")


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
        removed = release(args.id, args.out)
        print(f"wrote the student copy of {args.id} to {args.out}; removed:", file=out)
        for region in removed:
            print(f"    {region.path}:{region.begin}  {region.where}  ({region.code_lines} lines)", file=out)
    elif args.action == "grade":
        results = grade(args.id, args.path, args.json, timeout=args.timeout)
        print(format_table(results), file=out)
        if args.json:
            print(f"results: {args.json}", file=out)
