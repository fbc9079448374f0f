"""Export lessons as Jupyter notebooks: one code cell per ```python block, Markdown cells between.

    python lessons/notebook.py 09              # writes lessons/09_self_attention.ipynb
    python lessons/notebook.py --all           # every lesson
    python lessons/notebook.py 09 --out DIR    # elsewhere (figure links are rewritten to match)
    python lessons/run.py 09 --notebook        # the same, from the lesson runner

The cells are exactly the blocks that ``lessons/run.py`` runs (its ``python_blocks`` parser), so
a notebook and ``run.py`` execute the same code. Each notebook starts with a setup cell that does
what ``run.py`` does before a lesson: it moves the kernel to the repository root, wherever the
notebook was opened from (Jupyter starts a kernel in the notebook's folder), makes the package
importable from there, and sends the figures to the runner's git-ignored scratch folder unless
``MINITRANSFORMER_FIGURES`` names another. The image links in the prose show the committed
figures (``lessons/figures/``). The notebook names the ``python3`` kernel. The exported files are
build output (``lessons/*.ipynb`` is git-ignored): the Markdown lessons stay the source.
tests/test_notebooks.py exports every lesson and executes the notebook in quick mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
NOTEBOOK_SUFFIX = ".ipynb"

SETUP_CELL = '''\
# Setup (added by lessons/notebook.py): run from the repository root, as lessons/run.py does.
# Jupyter starts the kernel in the notebook's folder; the lesson's paths are relative to the root.
import os, sys
from pathlib import Path

def _is_root(folder):
    return (folder / "lessons" / "run.py").is_file() and (folder / "minitransformer").is_dir()

# the repository above the notebook's folder, else the one it was exported from
_root = next((folder for folder in [Path.cwd(), *Path.cwd().parents] if _is_root(folder)),
             Path({exported_from!r}))
if not _is_root(_root):
    raise RuntimeError(f"notebook setup: no minitransformer repository at or above {{Path.cwd()}} "
                       f"nor at {{_root}}; open the notebook from inside the repository")
os.chdir(_root)
if str(_root) not in sys.path:
    sys.path.insert(0, str(_root))
# like lessons/run.py, figures go to the ignored scratch folder unless MINITRANSFORMER_FIGURES says
os.environ.setdefault("MINITRANSFORMER_FIGURES", str(_root / "lessons" / "scratch" / "figures"))
print("working directory:", _root, "| quick mode:", os.environ.get("MINITRANSFORMER_QUICK") == "1",
      "| figures go to", os.environ["MINITRANSFORMER_FIGURES"])
'''

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

_IMAGE_LINK = re.compile(r"(!\[[^\]]*\]\()(figures/)")


def _runner():
    """lessons/run.py as a module (it is a script, not a package member)."""
    if "lessons_run" in sys.modules:
        return sys.modules["lessons_run"]
    spec = importlib.util.spec_from_file_location("lessons_run", LESSONS_DIR / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _source(text: str) -> list[str]:
    """A cell's source as nbformat stores it: lines that keep their newline, the last without."""
    lines = text.splitlines(keepends=True)
    if lines:
        lines[-1] = lines[-1].rstrip("\n")
    return lines


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _source(text)}


def _code_cell(text: str, **metadata) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata,
            "outputs": [], "source": _source(text)}


def lesson_cells(text: str, figures_link: str = "figures/") -> list[dict]:
    """The lesson's Markdown as cells: prose between the runnable blocks, each block a code cell.

    ``figures_link`` replaces the ``figures/`` prefix of image links, for a notebook written
    somewhere other than next to the lesson.
    """
    lines = text.splitlines(keepends=True)
    cells, prose_start = [], 0          # index of the first line not yet in a cell
    for block in _runner().python_blocks(text):
        fence = block.line - 2          # 0-based index of the ```python line
        closing = fence + 1 + len(block.code.splitlines())  # index of the closing ```
        prose = "".join(lines[prose_start:fence]).strip("\n")
        if prose:
            cells.append(_markdown_cell(_IMAGE_LINK.sub(rf"\g<1>{figures_link}", prose)))
        cells.append(_code_cell(block.code.rstrip("\n")))
        prose_start = closing + 1
    tail = "".join(lines[prose_start:]).strip("\n")
    if tail:
        cells.append(_markdown_cell(_IMAGE_LINK.sub(rf"\g<1>{figures_link}", tail)))
    return cells


def lesson_notebook(path: Path, out_dir: Path | None = None) -> dict:
    """The nbformat-4 notebook of the lesson at ``path``, as a dict ready for ``json.dump``."""
    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    figures = (path.parent / "figures").resolve()
    root = path.resolve().parent.parent
    if out_dir.resolve().is_relative_to(root):  # a relative link keeps working in a moved clone
        figures_link = Path(os.path.relpath(figures, out_dir.resolve())).as_posix() + "/"
    else:
        figures_link = figures.as_posix() + "/"
    setup = SETUP_CELL.format(exported_from=str(root))
    cells = [_code_cell(setup.rstrip("\n"), tags=["setup"])]
    cells += lesson_cells(path.read_text(encoding="utf-8"), figures_link)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": KERNELSPEC,
            "language_info": {"name": "python", "pygments_lexer": "ipython3"},
            "minitransformer": {"source": path.name},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def export(path: Path, out_dir: Path | None = None) -> Path:
    """Write the lesson's notebook into ``out_dir`` (default: beside the lesson); return its path.

    The file is written to a temporary name and renamed, so a reader never sees half a notebook.
    """
    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    notebook = lesson_notebook(path, out_dir)
    for number, cell in enumerate(notebook["cells"]):  # nbformat 4.5 wants an id per cell
        cell["id"] = f"{path.stem[:2]}-{number:03d}"
    target = out_dir / (path.stem + NOTEBOOK_SUFFIX)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers (09) or files")
    parser.add_argument("--all", action="store_true", help="export every lesson")
    parser.add_argument("--out", type=Path, default=None, help="folder for the notebooks (default: lessons/)")
    args = parser.parse_args(argv)
    if args.all == bool(args.lessons):
        parser.error("give lesson numbers or --all (not both)")
    runner = _runner()
    paths = runner.lesson_paths() if args.all else [runner.find_lesson(key) for key in args.lessons]
    for path in paths:
        print(f"wrote {export(path, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
