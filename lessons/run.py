"""Run the course's lessons: every ```python block of a lesson, in order, in one namespace.

    python lessons/run.py 05              # one lesson, full size; figures go to lessons/scratch/figures/
    python lessons/run.py 05 07 --quick   # small settings (MINITRANSFORMER_QUICK=1)
    python lessons/run.py --all           # every lesson
    python lessons/run.py --all --write   # every lesson, regenerating the committed lessons/figures/
    python lessons/run.py 05 --notebook   # export as a Jupyter notebook instead (lessons/notebook.py)
    python lessons/run.py 05 --check      # list the exercises' checkable answers (lessons/check.py)
    python lessons/run.py 05 --check 4=0.05   # check one answer without seeing it

Figures go to a scratch folder that git ignores (printed at the end), so running the course
never changes the repository; ``--write`` updates the committed figures the lessons show, to be
used when regenerating them on purpose (full size: ``--write`` refuses ``--quick``), and
``--figures DIR`` puts them anywhere.

A lesson is a Markdown file ``lessons/NN_slug.md``. Blocks fenced as ```python run; ```text and
```py-norun blocks are shown, never run. Each lesson runs in a fresh namespace with the
repository root as working directory. Tracebacks point at the lesson's own line numbers.
tests/test_lessons.py runs the lessons through ``run_lesson`` below, in quick mode.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
REPO_ROOT = LESSONS_DIR.parent
LESSON_GLOB = "[0-9][0-9]_*.md"
COMMITTED_FIGURES = LESSONS_DIR / "figures"
SCRATCH_FIGURES = LESSONS_DIR / "scratch" / "figures"  # ignored by git

_FENCE_OPEN = re.compile(r"^```python\s*$")
_FENCE_CLOSE = re.compile(r"^```\s*$")


@dataclass
class Block:
    number: int  # 1-based, counting runnable blocks only
    line: int    # line of the lesson where the code starts (after the fence)
    code: str

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")


class LessonError(Exception):
    """A block of a lesson raised; the message names the lesson, the block and its first line."""


def lesson_paths() -> list[Path]:
    return sorted(LESSONS_DIR.glob(LESSON_GLOB))


def find_lesson(key: str) -> Path:
    """``05``, ``05_regression`` or a path to the lesson file."""
    path = Path(key)
    if path.suffix == ".md" and path.exists():
        return path.resolve()
    matches = [p for p in lesson_paths() if p.name.startswith(key)]
    if len(matches) != 1:
        raise SystemExit(f"run.py: {key!r} matches {len(matches)} lessons; give its number, e.g. 05")
    return matches[0]


def python_blocks(text: str) -> list[Block]:
    """The runnable blocks of a lesson's Markdown, in order."""
    blocks, current, start = [], None, 0
    for index, line in enumerate(text.splitlines(), start=1):
        if current is None:
            if _FENCE_OPEN.match(line):
                current, start = [], index + 1
        elif _FENCE_CLOSE.match(line):
            blocks.append(Block(len(blocks) + 1, start, "\n".join(current) + "\n"))
            current = None
        else:
            current.append(line)
    if current is not None:
        raise ValueError(f"unclosed ```python block starting at line {start - 1}")
    return blocks


@contextlib.contextmanager
def _lesson_environment(quick: bool, figures: Path):
    """Environment variables and working directory a lesson expects; restored afterwards."""
    saved_env = {k: os.environ.get(k) for k in ("MINITRANSFORMER_QUICK", "MINITRANSFORMER_FIGURES", "MPLBACKEND")}
    saved_cwd = os.getcwd()
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["MINITRANSFORMER_QUICK"] = "1" if quick else "0"
    os.environ["MINITRANSFORMER_FIGURES"] = str(figures)
    os.chdir(REPO_ROOT)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_lesson(path: Path, quick: bool = False, figures: Path = SCRATCH_FIGURES, echo: bool = True) -> int:
    """Run every ```python block of the lesson at ``path``, its figures going to ``figures``;
    return how many ran.

    Raises LessonError (chained to the original exception) when a block fails.
    """
    path = Path(path)
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__lesson__", "__file__": str(path)}
    with _lesson_environment(quick, figures):
        # minitransformer before matplotlib (which loads NumPy): its OpenBLAS setting only takes
        # effect before NumPy is loaded, and the lessons should run as a user's script would
        import minitransformer  # noqa: F401
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        try:
            for block in blocks:
                if echo:
                    print(f"--- {path.name} block {block.number} (line {block.line}): {block.first_line}")
                # pad with blank lines so tracebacks show the lesson's own line numbers
                code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
                try:
                    exec(code, namespace)
                except Exception as error:
                    raise LessonError(
                        f"{path.name}, block {block.number} (line {block.line}, "
                        f"`{block.first_line}`): {type(error).__name__}: {error}"
                    ) from error
        finally:
            plt.close("all")
    return len(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers (05) or files")
    parser.add_argument("--all", action="store_true", help="run every lesson")
    parser.add_argument("--quick", action="store_true", help="small settings (MINITRANSFORMER_QUICK=1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true",
                       help="write the committed figures, lessons/figures/ (to regenerate them on purpose)")
    where.add_argument("--figures", type=Path, default=None, metavar="DIR",
                       help="where figures go (default: MINITRANSFORMER_FIGURES, else lessons/scratch/figures/, "
                            "which git ignores)")
    parser.add_argument("--notebook", action="store_true",
                        help="write each lesson as a Jupyter notebook beside it instead of running it")
    parser.add_argument("--check", nargs="*", metavar="EXERCISE=VALUE", default=None,
                        help="list the lesson's checkable answers, or check the ones given")
    args = parser.parse_args(argv)
    if args.notebook or args.check is not None:
        return _other_command(parser, args)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows even when piped to a file
    if args.all == bool(args.lessons):
        parser.error("give lesson numbers or --all (not both)")
    if args.write and args.quick:
        parser.error("--write with --quick would commit the small settings' figures; run without --quick")
    paths = lesson_paths() if args.all else [find_lesson(key) for key in args.lessons]
    figures = figures_dir(args.figures, args.write)
    sys.path.insert(0, str(REPO_ROOT))
    failures = 0
    for path in paths:
        start = time.perf_counter()
        try:
            count = run_lesson(path, quick=args.quick, figures=figures)
        except LessonError as error:
            failures += 1
            traceback.print_exception(error.__cause__)
            print(f"FAILED {error}", file=sys.stderr)
            continue
        print(f"=== {path.name}: {count} blocks in {time.perf_counter() - start:.1f} s")
    if figures == COMMITTED_FIGURES:
        kind = "the committed figures"
    elif figures == SCRATCH_FIGURES:
        kind = "scratch, ignored by git; --write updates lessons/figures/"
    else:
        kind = "the folder asked for"
    print(f"figures: {figures}  ({kind})")
    return 1 if failures else 0


def figures_dir(asked: Path | None, write: bool) -> Path:
    """Where figures go: ``--figures DIR``, else MINITRANSFORMER_FIGURES, else the committed
    lessons/figures/ with ``--write`` and the scratch folder without."""
    if asked is not None:  # resolved here: the lessons run in the repository root
        return asked.resolve()
    if not write and "MINITRANSFORMER_FIGURES" in os.environ:
        return Path(os.environ["MINITRANSFORMER_FIGURES"]).resolve()
    return COMMITTED_FIGURES if write else SCRATCH_FIGURES


def _other_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """--notebook and --check: hand the lessons to lessons/notebook.py or lessons/check.py."""
    import importlib.util

    name = "notebook" if args.notebook else "check"
    spec = importlib.util.spec_from_file_location(f"lessons_{name}", LESSONS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if args.notebook:
        return module.main(["--all"] if args.all else args.lessons)
    if len(args.lessons) != 1:
        parser.error("--check takes one lesson number, e.g. python lessons/run.py 05 --check 4=0.05")
    return module.run_checks(find_lesson(args.lessons[0]).name[:2], args.check)


if __name__ == "__main__":
    sys.exit(main())
