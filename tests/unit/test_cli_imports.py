"""The package's import graph has no cycle, and building the CLI imports no heavy library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import conveyor

PACKAGE = Path(conveyor.__file__).resolve().parent
HEAVY = ("pandas", "sklearn", "pyarrow", "scipy", "boto3", "botocore")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module named by an import that runs (at load time or in a function; not under TYPE_CHECKING)."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # kept if it names a module
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {m for m in _imports(tree, name, path.name == "__init__.py") if m in files and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (as a path that starts and ends on the same module), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_sees_lazy_and_relative_imports() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from . import follow\n"
        "from .common import fail\n"
        "if TYPE_CHECKING:\n    import conveyor.registry\n"
        "def run():\n    from conveyor.cli.demo import run_demo\n"
    )
    found = _imports(tree, "conveyor.cli.app", is_package=False)
    assert {"conveyor.cli.follow", "conveyor.cli.common", "conveyor.cli.demo"} <= found
    assert "conveyor.registry" not in found
    graph = import_graph()
    assert "conveyor.cli.common" in graph["conveyor.cli.app"] or "conveyor.cli.common" in graph["conveyor.cli.main"]
    assert "conveyor.cli.demo" in graph["conveyor.cli.local_commands"]  # imported inside the command


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_cli_commands_never_import_each_other() -> None:
    graph = import_graph()
    commands = {name for name in graph if name.startswith("conveyor.cli.") and name.endswith(("_commands", "_command"))}
    for name in commands:
        assert not graph[name] & commands, f"{name} imports {graph[name] & commands}"


def test_building_the_app_imports_no_heavy_library() -> None:
    script = (
        "import json, sys\n"
        "import typer.main\n"
        "from conveyor.cli.app import build_app\n"
        "command = typer.main.get_command(build_app())\n"
        "assert len(command.commands) >= 18, sorted(command.commands)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_the_check_sees_a_heavy_import() -> None:
    script = f"import json, sys, pandas\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pandas" in json.loads(done.stdout)
