"""The local org's layout (docs/architecture.md, "The local org"): one folder per API whose
handlers reach the org through ``services.OrgServices`` only, and no import cycles."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1] / "sfjwt_ext" / "testing"
API_FOLDERS = ("oauth", "rest", "bulk2", "bulk1", "metadata", "composite", "search", "apps")


def _modules() -> Dict[str, Path]:
    """Dotted names under sfjwt_ext.testing ("" for the package, "core.http", "rest" ...) -> file."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The modules of sfjwt_ext.testing that ``name`` imports, TYPE_CHECKING imports included.
    ``from . import x`` counts as an import of ``x``, not of the package."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
        target = ".".join(base + ([node.module] if node.module else []))
        submodules = [f"{target}.{a.name}".lstrip(".") for a in node.names
                      if f"{target}.{a.name}".lstrip(".") in modules]
        found.update(submodules)
        if target in modules and len(submodules) < len(node.names):
            found.add(target)
    found.discard(name)
    return found


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    result: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_org() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["org"] >= {"rest.routes", "bulk2.routes", "core.http"}   # the graph is really read
    assert _cycles(graph) == []


def test_api_folders_do_not_import_the_org() -> None:
    """Handlers get the org as ``services.OrgServices``, never as ``LocalOrg``."""
    modules = _modules()
    offenders = sorted(name for name, path in modules.items()
                       if name.split(".")[0] in API_FOLDERS + ("core",) and "org" in _imports(name, path, modules))
    assert offenders == []


def test_core_imports_no_api_folder() -> None:
    """core/ is what the APIs share: it imports none of them (nor services.py or org.py)."""
    modules = _modules()
    offenders = {name: sorted(dep for dep in _imports(name, path, modules) if not dep.startswith("core"))
                 for name, path in modules.items() if name.split(".")[0] == "core"}
    assert {name: deps for name, deps in offenders.items() if deps} == {}


def test_api_modules_use_no_private_attribute_of_the_org() -> None:
    """No ``org._x`` / ``self.org._x`` outside org.py: what handlers need is public in
    ``OrgServices`` (sessions, users, apps, store, router)."""
    uses = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "org.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if (isinstance(owner, ast.Name) and owner.id == "org") or (
                        isinstance(owner, ast.Attribute) and owner.attr == "org"):
                    uses.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
    assert uses == []


def test_every_api_folder_has_its_routing_table() -> None:
    for folder in API_FOLDERS:
        routes = ROOT / folder / "routes.py"
        tree = ast.parse(routes.read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body), folder


def test_no_function_in_the_org_is_over_80_lines() -> None:
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
