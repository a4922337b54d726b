"""The house rules, checked on the source: imports point one way, no cycles, no torch where it must not be,
files and functions a reader can hold in mind."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each folder and the folders it may import (docs/DESIGN.md draws the same picture).
LOWER = {"core", "plugins", "taxo", "tree", "data"}
MODELS = {"backbones", "heads", "losses", "metrics"}
ALLOWED = {
    "core": set(),
    "plugins": {"core"},
    "taxo": {"core", "plugins"},
    "tree": {"core", "taxo"},
    "data": {"core", "taxo"},
    "backbones": {"core", "plugins", "data"},
    "heads": {"core", "plugins", "taxo", "tree"},
    "losses": {"core", "plugins", "taxo", "tree"},
    "metrics": {"core", "taxo", "tree"},
    "runs": LOWER | MODELS,
    "train": LOWER | MODELS | {"runs"},
    "infer": LOWER | MODELS | {"runs", "train"},
    "cli": LOWER | MODELS | {"runs", "train", "infer"},
}
TORCH_FREE = ("core", "taxo")
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (``hier.train.fit``)."""
    found = {}
    for folder in ALLOWED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("hier",) + (parts[:-1] if parts[-1] == "__init__" else parts))
            found[name] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """Modules ``name`` imports anywhere in its file (lazy imports inside functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


# A module's own parent packages are initialised before it anyway: importing them is no edge.
GRAPH = {name: {m for m in imports(name, path) if m in MODULES and not (name == m or name.startswith(m + "."))}
         for name, path in MODULES.items()}


def folder(name: str) -> str:
    return name.split(".")[1]


def test_folders_import_only_what_the_layout_allows():
    wrong = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                   if folder(b) != folder(a) and folder(b) not in ALLOWED[folder(a)])
    assert not wrong, "imports against the layout: " + ", ".join(wrong)


def test_no_import_cycle_between_modules():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(cycles)


@pytest.mark.parametrize("top", TORCH_FREE)
def test_torch_free_folders_never_import_torch(top):
    static = sorted(n for n, p in MODULES.items() if folder(n) == top
                    and any(m.split(".")[0] in ("torch", "torchvision", "timm") for m in imports(n, p)))
    assert not static, f"{top} imports torch in: {', '.join(static)}"
    names = [n for n in MODULES if folder(n) == top]
    code = f"import sys; import {', '.join(names)}; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_built_in_plugins_are_the_one_list_the_manager_loads():
    """The manager imports these modules by name (an edge no import statement shows): each is a module of a
    folder that may import the hooks, together they are every module of hier that implements a hook, and
    importing them (as every command does) leaves torch out."""
    from hier.plugins.manager import BUILTIN_PLUGINS

    unknown = [m for m in BUILTIN_PLUGINS if m not in MODULES]
    assert not unknown, f"BUILTIN_PLUGINS names modules that do not exist: {unknown}"
    misplaced = [m for m in BUILTIN_PLUGINS if "plugins" not in ALLOWED[folder(m)]]
    assert not misplaced, f"built-in plugins in folders that may not import hier.plugins: {misplaced}"
    implementing = {name for name, path in MODULES.items() if "@hookimpl" in path.read_text()
                    and folder(name) != "plugins"}
    assert implementing == set(BUILTIN_PLUGINS), (
        f"modules implementing hooks but not listed: {sorted(implementing - set(BUILTIN_PLUGINS))}; "
        f"listed but implementing none: {sorted(set(BUILTIN_PLUGINS) - implementing)}")
    code = f"import sys; import {', '.join(BUILTIN_PLUGINS)}; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_files_and_functions_stay_short():
    long_files = [f"{p.relative_to(ROOT)} ({n})" for p in MODULES.values()
                  if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    long_functions = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long_files + long_functions, (f"files over {MAX_FILE_LINES} lines: {', '.join(long_files)}; "
                                             f"functions over {MAX_FUNCTION_LINES}: {', '.join(long_functions)}")
