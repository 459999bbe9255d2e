"""The package's import graph: the library never imports the command line, and no two
modules import each other (directly or around a longer loop).

Catches: a library module that reaches up into ``mlprop.cli`` for a helper (the command
line then cannot be changed without breaking the library, and importing the library pulls
in every subcommand), and import cycles, which make import order matter and hide layering
mistakes. Imports inside functions count too: they are still dependencies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src"
CLI = "mlprop.cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((PACKAGE_ROOT / "mlprop").rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules that ``path`` imports anywhere in its body: ``from a import b``
    counts as ``a.b`` when that is a module, else as ``a``."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def in_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def test_the_walk_sees_the_whole_package():
    graph = import_graph()
    assert {"mlprop", "mlprop.cli", "mlprop.cli.audit", "mlprop.bench.timing",
            "mlprop.monitor.drift", "mlprop.digits.pipeline"} <= set(graph)
    assert "mlprop.bench.stats" in graph["mlprop.bench.compare"]


def test_no_library_module_imports_the_command_line():
    offenders = sorted(f"{module} imports {target}"
                       for module, targets in import_graph().items() if not in_cli(module)
                       for target in targets if in_cli(target))
    assert not offenders, "the library must not import mlprop.cli:\n" + "\n".join(offenders)


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("from mlprop.cli import main\n", {"mlprop.cli"}),
    ("def f():\n    import mlprop.cli.audit\n", {"mlprop.cli.audit"}),
    ("from mlprop import cli\n", {"mlprop.cli"}),
    ("from . import cli\n", {"mlprop.cli"}),
    ("from .cli.common import UsageError\n", {"mlprop.cli.common"}),
])
def test_the_walk_finds_every_import_form(tmp_path, source, expected):
    """Meta-test: top-level, lazy, package-relative and ``from package import module``."""
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {"mlprop", "mlprop.cli", "mlprop.cli.audit", "mlprop.cli.common", "mlprop.mod"}
    assert imported_modules(path, "mlprop.mod", known) == expected


def test_the_cycle_finder_finds_a_loop_of_three():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
