"""The commands a newcomer runs first leave ``git status`` as it was: what they write goes to
folders git ignores (runs/, benchmarks/scratch/, lessons/scratch/), never over committed files.
``python -m benchmarks --quick`` is checked in tests/test_benchmarks.py, which runs it anyway."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.worktree import REPO_ROOT, changes, tree_state


def test_running_a_lesson_writes_its_figures_to_scratch():
    before = tree_state()
    done = subprocess.run([sys.executable, "lessons/run.py", "01", "--quick"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert changes(before, tree_state()) == []
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("figures: ") and "lessons/scratch/figures" in last, last
    assert (REPO_ROOT / "lessons" / "scratch" / "figures" / "01_float32_roundoff.png").is_file()


def test_the_default_train_command_writes_only_under_runs():
    name = f"test-clean-tree-{os.getpid()}"  # a name of its own: removed at the end
    run_dir = REPO_ROOT / "runs" / name
    before = tree_state()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "minitransformer", "train", "--name", name, "--max-iters", "1",
             "--eval-iters", "1", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--sample-tokens", "4"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert changes(before, tree_state()) == []
        assert (run_dir / "checkpoint").is_dir()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
