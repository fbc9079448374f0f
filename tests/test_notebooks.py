"""Lessons exported as Jupyter notebooks (lessons/notebook.py) run in a real kernel.

Every lesson's notebook holds exactly the runner's code blocks, in order (checked for each
lesson), and tests/test_lessons.py runs those blocks for every lesson. What a kernel adds is
the environment: a ``python3`` kernel started in the notebook's folder, so the setup cell must
find the repository root on its own. That is executed here by nbclient in quick mode for
``EXECUTED``, lessons chosen to cover each way a lesson reaches outside its own code (the first
lesson, training and figures, launching MPI ranks, writing and reading checkpoint folders, an
optional extra's data), since a kernel start costs seconds and the suite has a time budget.
``python lessons/run.py NN --notebook`` exports any other lesson to open in Jupyter.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the dev extras (nbformat)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the dev extras (nbclient)")

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"lessons_{name}", LESSONS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


notebook = _load("notebook")
runner = _load("run")
LESSONS = runner.lesson_paths()


EXECUTED = ("01_tensors", "12_gpt", "18_data_parallelism", "19_pretrained_checkpoints",
            "21_the_documents_pipelines")


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_cells_are_the_runners_blocks_in_order_with_the_prose_between(path):
    text = path.read_text(encoding="utf-8")
    cells = notebook.lesson_notebook(path)["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert "setup" in cells[0]["metadata"]["tags"]
    assert code[1:] == [block.code.rstrip("\n") for block in runner.python_blocks(text)]
    prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "```python" not in prose and text.splitlines()[0] in prose


def test_a_notebook_elsewhere_links_the_lessons_figures(tmp_path):
    path = next(p for p in LESSONS if "](figures/" in p.read_text(encoding="utf-8"))
    written = notebook.export(path, tmp_path)
    cells = json.loads(written.read_text(encoding="utf-8"))["cells"]
    links = [line for c in cells if c["cell_type"] == "markdown" for line in c["source"] if "![" in line]
    assert links and all(str(LESSONS_DIR / "figures") in line for line in links)
    assert not list(tmp_path.glob("*.partial"))


def test_the_executed_lessons_exist():
    assert set(EXECUTED) <= {p.stem for p in LESSONS}


@pytest.mark.parametrize("path", [p for p in LESSONS if p.stem in EXECUTED], ids=EXECUTED)
def test_lesson_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MINITRANSFORMER_QUICK", "1")
    monkeypatch.setenv("MINITRANSFORMER_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    written = notebook.export(path, tmp_path)
    nb = nbformat.read(written, as_version=4)
    nbformat.validate(nb)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on a failure
    setup_output = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert f"working directory: {LESSONS_DIR.parent}" in setup_output and "quick mode: True" in setup_output
    assert all(o.get("output_type") != "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_setup_cell_finds_the_root_and_sends_figures_to_scratch(tmp_path):
    import os
    import subprocess

    setup = "".join(notebook.lesson_notebook(LESSONS[0], tmp_path)["cells"][0]["source"])
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_FIGURES"}
    shown = subprocess.run([sys.executable, "-c", setup + "\nprint(os.getcwd())"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert f"figures go to {LESSONS_DIR / 'scratch' / 'figures'}" in shown
    assert shown.strip().endswith(str(LESSONS_DIR.parent))
