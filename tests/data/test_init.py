"""Tests for minitransformer/data/__init__.py: the public names and the layering rule."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import minitransformer.data as data

ALLOWED_IMPORTS = {"numpy", "minitransformer.backend", "minitransformer.atomic", "minitransformer.files"}


def test_every_exported_name_exists():
    for name in data.__all__:
        assert hasattr(data, name), name


def test_the_data_layer_imports_only_numpy_the_standard_library_and_the_backend():
    """DESIGN.md: data sits above the backend and beside autograd, never on top of it."""
    for path in Path(data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                names = [f"minitransformer.{node.module or node.names[0].name}"]
                if node.level == 1:  # a sibling inside data/
                    continue
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert name in ALLOWED_IMPORTS or top in sys.stdlib_module_names or top == "__future__", (
                    f"{path.name} imports {name}"
                )
