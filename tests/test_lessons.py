"""Every lesson runs: each ```python block of lessons/NN_*.md, in order, in quick mode.

The lessons run through the same code as ``python lessons/run.py --quick`` (lessons/run.py's
``run_lesson``), with their figures written to a temporary folder so the committed ones stay.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_RUN_PY = Path(__file__).resolve().parent.parent / "lessons" / "run.py"


def _load_runner():
    spec = importlib.util.spec_from_file_location("lessons_run", _RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
LESSONS = runner.lesson_paths()


def test_there_are_lessons():
    assert LESSONS, f"no lessons matching {runner.LESSON_GLOB} in {runner.LESSONS_DIR}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs(path, tmp_path):
    blocks_run = runner.run_lesson(path, quick=True, figures=tmp_path / "figures", echo=False)
    assert blocks_run >= 1, f"{path.name} has no ```python block"


def test_runner_reports_lesson_block_and_first_line(tmp_path):
    lesson = tmp_path / "99_broken.md"
    lesson.write_text("# Broken\n\n```python\nx = 1\n```\n\n```text\nnot run\n```\n\n"
                      "```python\ny = x + 1\nraise RuntimeError('boom')\n```\n")
    with pytest.raises(runner.LessonError, match=r"99_broken.md, block 2 \(line 12, `y = x \+ 1`\).*boom"):
        runner.run_lesson(lesson, quick=True, figures=tmp_path, echo=False)
