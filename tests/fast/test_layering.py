"""The layering the reference ops promise, checked on the source (no imports run):

- nothing that ops/, autograd.py or tensor.py import, directly or through other modules of the
  package, reaches numba, threads, threadpoolctl or the fast layer;
- backend.py only says where data lives; ops/validate.py does not import tensor.py; optim/ does
  not import nn/; nn/ reaches ops through functional.py, and reads no weight files;
- the ops a learner is sent to read stay the size of their math (code lines, without docstrings
  and comments), as the reference-ops design set them.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "minitransformer"
FORBIDDEN = ("numba", "threading", "concurrent", "threadpoolctl", "minitransformer.fast")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules imported by name
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def closure(start: str) -> set[str]:
    """The modules ``start`` reaches through imports: the package's own, followed, and others."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == "minitransformer":  # the package's own __init__ loads the fast layer on purpose
            continue
        if name in MODULES:
            todo.extend(imports_of(MODULES[name]))
            parent = name.rpartition(".")[0]
            if parent in MODULES:  # importing a.b runs a/__init__.py first
                todo.append(parent)
    return seen


def forbidden_in(names: set[str]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}


STACK = sorted(n for n in MODULES if n.startswith("minitransformer.ops")) + [
    "minitransformer.autograd", "minitransformer.tensor", "minitransformer.dispatch",
    "minitransformer.backend", "minitransformer.functional", "minitransformer.optim",
    "minitransformer.nn"]


@pytest.mark.parametrize("module", STACK)
def test_the_stack_never_reaches_numba_threads_or_the_fast_layer(module):
    reached = forbidden_in(closure(module))
    assert reached == set(), f"{module} reaches {sorted(reached)}"


def test_the_package_loads_the_fast_layer_itself():
    assert "minitransformer.fast" in imports_of(PACKAGE / "__init__.py")


def test_lower_layers_do_not_import_upper_ones():
    def package_imports(path):
        return {n for n in imports_of(path) if n.startswith("minitransformer")}

    assert package_imports(PACKAGE / "backend.py") == set()
    assert not any(n.startswith("minitransformer.tensor") for n in package_imports(PACKAGE / "ops" / "validate.py"))
    for path in (PACKAGE / "optim").glob("*.py"):
        assert not any(n.startswith("minitransformer.nn") for n in package_imports(path)), path
    for path in (PACKAGE / "nn").glob("*.py"):
        uses = package_imports(path)
        assert not any(n.startswith("minitransformer.ops") for n in uses), path
        assert "minitransformer.safetensors" not in uses, path


def code_lines(source: str) -> int:
    """Lines holding code: no blank lines, comments or docstrings."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT, tokenize.ENDMARKER):
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def class_code_lines(path: Path, class_name: str) -> int:
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            segment = "\n".join(source.splitlines()[node.lineno - 1: node.end_lineno])
            return code_lines(segment) - 1  # the class line itself
    raise AssertionError(f"{class_name} not found in {path}")


SIZE_TARGETS = [  # (file in ops/, class, most code lines of forward + backward)
    ("normalization.py", "LayerNorm", 25),
    ("softmax.py", "Softmax", 12),
    ("softmax.py", "LogSoftmax", 12),
    ("loss.py", "CrossEntropy", 30),
    ("attention.py", "ScaledDotProductAttention", 45),
    ("elementwise.py", "GELU", 15),
]


@pytest.mark.parametrize("filename,class_name,most", SIZE_TARGETS)
def test_reference_ops_are_the_size_of_their_math(filename, class_name, most):
    assert class_code_lines(PACKAGE / "ops" / filename, class_name) <= most
