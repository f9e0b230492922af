"""Size figures of the client (issue 16): how much code a reader of the adapter faces.

    python benchmarks/measure_core.py           # a table
    python benchmarks/measure_core.py --json

code lines       lines of the client's modules that are neither blank, comments nor docstrings;
                 the client without its command line, its app-setup code and the local org
                 (cli/, the command with its writers and admin.py, eca_setup.py, diagnose.py, demo.py,
                 and testing/ are left out)
path lines       lines of the client's functions (``def`` to the end, without docstrings) that run for ``connect_jwt()``
                 and one query after the org expired the session (a re-login and a resend),
                 recorded with ``sys.setprofile`` against a local org in this process
long functions   functions of the client over 60 lines (counted the same way)
names twice      a function or class name defined at the top of two client modules (methods
                 and private nested helpers are not counted)
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import os
import sys
import tempfile
import tokenize
from collections import Counter, defaultdict
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Iterator, List, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "sfjwt_ext"
LEFT_OUT_FOLDERS = {"testing", "cli"}


def client_modules() -> List[Path]:
    """The client's modules, without its command line, app-setup code and the local org."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] in LEFT_OUT_FOLDERS:
            continue
        found.append(path)
    return found


def _docstring_lines(tree: ast.AST) -> Set[int]:
    lines: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def code_lines(path: Path) -> int:
    """Lines that hold a token other than a comment, outside docstrings."""
    text = path.read_text(encoding="utf-8")
    skip = _docstring_lines(ast.parse(text))
    lines: Set[int] = set()
    ignored = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENDMARKER, tokenize.ENCODING}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in ignored:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - skip)


def _docstring(node: ast.AST) -> int:
    """How many lines the docstring of a function takes (0 without one)."""
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return (body[0].end_lineno or body[0].lineno) - body[0].lineno + 1
    return 0


def functions(path: Path) -> Iterator[Tuple[str, int, int]]:
    """(qualified name, first line, line count) of every function: from ``def`` to its last
    line, decorators and the docstring left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def walk(node: ast.AST, prefix: str) -> Iterator[Tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, child.lineno, (child.end_lineno or child.lineno) - child.lineno + 1 - _docstring(child)
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def names_twice(paths: List[Path]) -> Dict[str, List[str]]:
    where: Dict[str, List[str]] = defaultdict(list)
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                where[node.name].append(str(path.relative_to(PACKAGE)))
    return {name: files for name, files in sorted(where.items()) if len(files) > 1}


def traced_path() -> Dict[str, Any]:
    """The client functions that run for connect_jwt() and one query after expiry."""
    os.environ["SFJWT_CONFIG"] = os.path.join(tempfile.mkdtemp(), "none.ini")
    for name in [name for name in os.environ if name.startswith("SF_")]:
        del os.environ[name]
    sys.path.insert(0, str(REPO))
    from sfjwt_ext import connect_jwt
    from sfjwt_ext.testing import LocalOrg

    client_files = {str(path) for path in client_modules()}
    seen: Set[Tuple[str, int, str]] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_filename in client_files:
                seen.add((code.co_filename, code.co_firstlineno, code.co_name))

    org = LocalOrg()
    org.start()
    try:
        credentials = org.new_app_with_key(Path(tempfile.mkdtemp()), username="user@example.com")
        sys.setprofile(profile)
        try:
            sf = connect_jwt(**credentials.connect_kwargs())
            org.expire_all_sessions()
            sf.query("SELECT Id FROM Account")
        finally:
            sys.setprofile(None)
    finally:
        org.stop()
    starts: Dict[Tuple[str, int], Tuple[str, int]] = {}
    for path in client_modules():
        for name, first, count in functions(path):
            starts[(str(path), first)] = (name, count)
    lines = 0
    names: List[str] = []
    modules: Set[str] = set()
    for filename, first, code_name in sorted(seen):
        hit = starts.get((filename, first)) or _decorated(filename, first, starts)
        if hit is None or hit[0].rsplit(".", 1)[-1] != code_name:
            continue  # a lambda, a comprehension or module code
        name, count = hit
        lines += count
        module = str(Path(filename).relative_to(PACKAGE))
        modules.add(module)
        names.append(f"{module}:{name}")
    return {"path_lines": lines, "path_functions": len(names), "path_modules": len(modules),
            "path_module_names": sorted(modules), "path_function_names": names}


def _decorated(filename: str, first: int, starts: Dict[Tuple[str, int], Tuple[str, int]]) -> Any:
    """A decorated function's code starts at its first decorator."""
    for offset in range(1, 4):
        if (filename, first + offset) in starts:
            return starts[(filename, first + offset)]
    return None


def measure(trace: bool = True) -> Dict[str, Any]:
    paths = client_modules()
    long = [(f"{path.relative_to(PACKAGE)}:{name}", count)
            for path in paths for name, _, count in functions(path) if count > 60]
    twice = names_twice(paths)
    figures: Dict[str, Any] = {
        "code_lines": sum(code_lines(path) for path in paths),
        "modules": len(paths),
        "functions_over_60": len(long),
        "functions_over_60_names": sorted(long, key=lambda item: -item[1]),
        "names_twice": len(twice),
        "names_twice_where": twice,
    }
    if trace:
        figures.update(traced_path())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-trace", action="store_true", help="skip the traced connect_jwt path")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the functions of the path")
    options = parser.parse_args()
    figures = measure(trace=not options.no_trace)
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"code lines (client without CLI, app setup, testing): {figures['code_lines']} in {figures['modules']} modules")
    if "path_lines" in figures:
        print(f"connect_jwt + one expired-session query: {figures['path_lines']} lines in "
              f"{figures['path_functions']} functions of {figures['path_modules']} modules")
        if options.verbose:
            for name in figures["path_function_names"]:
                print("   ", name)
    print(f"functions over 60 lines: {figures['functions_over_60']}")
    for name, count in figures["functions_over_60_names"]:
        print(f"    {count:4d}  {name}")
    print(f"names defined in two client modules: {figures['names_twice']}")
    for name, files in figures["names_twice_where"].items():
        print(f"    {name}: {', '.join(files)}")


if __name__ == "__main__":
    main()
