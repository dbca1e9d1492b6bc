"""The shape of the package, measured from its own source: small modules, short functions, a
thin CLI that alone imports Click, no import cycle, and a unit-test module for every module."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provision"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "_data" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(path: Path) -> set[str]:
    """Every provision module this one imports, at module level or inside a function."""
    found, package = set(), _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    known = {_name(p) for p in MODULES}
    return {m for m in found if m in known and m != _name(path)}


def test_no_module_is_over_400_lines_and_the_cli_is_under_300():
    sizes = {_name(p): len(p.read_text().splitlines()) for p in MODULES}
    assert sizes["provision.cli"] < 300
    assert {m: n for m, n in sizes.items() if n > 400} == {}


def test_every_function_is_under_60_lines():
    long = [
        f"{_name(p)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for p in MODULES for node in ast.walk(_tree(p))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 >= 60
    ]
    assert long == []


def test_only_the_cli_imports_click():
    importers = [
        _name(p) for p in MODULES
        if any((isinstance(n, ast.Import) and any(a.name.split(".")[0] == "click" for a in n.names))
               or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "click")
               for n in ast.walk(_tree(p)))
    ]
    assert importers == ["provision.cli"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    # A package's __init__ is imported by each of its modules: only its own imports count.
    graph = {_name(p): {m for m in _imports(p) if not _name(p).startswith(m + ".")} for p in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# provision/checks/test_*.py are checks themselves: they run against real hosts in the
# integration tests, and their helpers (checks/gpu.py, ...) have unit tests here.
MIRRORED = [p for p in MODULES if p.name not in ("__init__.py", "__main__.py")
            and not (p.parent.name == "checks" and p.name.startswith("test_"))]


@pytest.mark.parametrize("module", MIRRORED,
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_a_unit_test_module_in_the_mirrored_place(module):
    rel = module.relative_to(PACKAGE)
    expected = ROOT / "tests" / "unit" / rel.parent / f"test_{rel.name}"
    assert expected.is_file(), f"{rel} has no {expected.relative_to(ROOT)}"
