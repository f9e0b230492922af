"""The client's dependency rule (docs/architecture.md, "Layout and dependency direction"),
read from the source: imports point down the layers, the thin adapter (auth/) imports only
errors and _internal/, the client has no import cycle, and the layout in the docs names
exactly the modules there are."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sfjwt_ext"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Lowest first: a module may import its own layer and the layers before it, never after.
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("base", ("sfjwt_ext._version", "sfjwt_ext.errors", "sfjwt_ext._internal")),
    ("config", ("sfjwt_ext.config",)),
    ("auth", ("sfjwt_ext.auth",)),
    ("sharing", ("sfjwt_ext.sharing",)),
    ("client", ("sfjwt_ext.client",)),
    ("data", ("sfjwt_ext.data",)),
    ("app", ("sfjwt_ext.dataframe", "sfjwt_ext.dask", "sfjwt_ext")),
    # the command line and its app-setup code: the top application layer
    ("cli", ("sfjwt_ext.cli", "sfjwt_ext.__main__")),
]
# SalesforceJWT.query_df / query_arrow / query_to_parquet import data/ when called: the
# convenience methods of the client; the only import that points up, and never at import time.
LAZY_UPWARD = {("sfjwt_ext.client", "sfjwt_ext.data.dataframe")}


def client_modules() -> Dict[str, Path]:
    """Dotted name -> file of every module of sfjwt_ext outside testing/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "testing" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = client_modules()


def layer_of(module: str) -> int:
    best: Optional[Tuple[int, int]] = None  # (prefix length, layer)
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rank)
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py"
    return best[1]


def imports(module: str) -> Iterator[Tuple[str, bool]]:
    """(imported client module, at module level?) for every import of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for statement in tree.body:  # under `if TYPE_CHECKING:` or `try:` at the top: module level too
        if isinstance(statement, (ast.If, ast.Try)):
            top_level.update(id(node) for node in ast.walk(statement))
    for node in ast.walk(tree):
        targets: List[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                targets.append(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target in MODULES and target != module:
                yield target, id(node) in top_level


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module in MODULES:
        for target, at_top in imports(module):
            if layer_of(target) > layer_of(module) and (at_top or (module, target) not in LAZY_UPWARD):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    assert wrong == []


def test_the_thin_adapter_imports_only_errors_and_internal_helpers() -> None:
    allowed = ("sfjwt_ext.auth", "sfjwt_ext.errors", "sfjwt_ext._internal")
    wrong = [f"{module} imports {target}"
             for module in MODULES if module.startswith("sfjwt_ext.auth")
             for target, _ in imports(module)
             if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed)]
    assert wrong == []
    assert any(module.startswith("sfjwt_ext.auth.") for module in MODULES)


def test_sharing_and_data_are_never_imported_by_auth_config_or_base() -> None:
    below = [module for module in MODULES if layer_of(module) <= layer_of("sfjwt_ext.auth")]
    wrong = [f"{module} imports {target}" for module in below for target, _ in imports(module)
             if target.startswith(("sfjwt_ext.sharing", "sfjwt_ext.data", "sfjwt_ext.client", "sfjwt_ext.cli"))]
    assert wrong == []


def _cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_client_has_no_import_cycle() -> None:
    graph = {module: {target for target, at_top in imports(module) if at_top} for module in MODULES}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def documented_modules() -> Set[str]:
    """The client modules the layout block of docs/architecture.md names (testing/ and what
    follows it are the local org's part)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("## Layout and dependency direction", 1)[1].split("```", 2)[1]
    names: Set[str] = set()
    folders: List[Tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"^( *)([\w.]+/?)(?:\s|$)", line)
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        folders = [(level, folder) for level, folder in folders if level < indent]
        if name == "testing/":
            break
        prefix = "".join(folder for _, folder in folders)
        if name.endswith("/"):
            folders.append((indent, name))
        elif name.endswith(".py"):
            names.add((prefix + name)[: -len(".py")].replace("/", ".").removesuffix(".__init__"))
    return names


def test_the_documented_layout_names_every_client_module_and_only_those() -> None:
    documented = documented_modules()
    assert "sfjwt_ext.auth.transport" in documented
    assert sorted(set(MODULES) - documented) == [], "modules missing from docs/architecture.md"
    assert sorted(documented - set(MODULES)) == [], "docs/architecture.md names modules that do not exist"


def test_no_module_state_is_set_through_global() -> None:
    """State has one owner, an object with its lock (issue 16): no ``global`` statement in the
    package, the local org included."""
    found = [f"{path.relative_to(ROOT)}:{node.lineno}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Global)]
    assert found == []
