"""``pip install '.[notebook]'`` is enough for every notebook: each third-party package a
notebook imports, or needs through what it calls (``to_parquet`` -> pyarrow,
``sfjwt_ext.dask`` -> dask), is in the ``notebook`` extra or in the base requirements."""
from __future__ import annotations

import ast
import configparser
import json
import re
import sys
from pathlib import Path
from typing import Set

ROOT = Path(__file__).resolve().parent.parent
# what a call needs beyond its own import
IMPLIED = {"to_parquet": "pyarrow", "read_parquet": "pyarrow", "query_to_parquet": "pyarrow",
           "query_arrow": "pyarrow", "sfjwt_ext.dask": "dask", "query_df": "pandas", ".plot": "matplotlib"}
# import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def _names(requirements: str) -> Set[str]:
    names = set()
    for line in requirements.strip().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)", line)
        if match:
            names.add(match.group(1).lower().replace("_", "-"))
    return names


def _needed(code: str) -> Set[str]:
    needed = set()
    for node in ast.walk(ast.parse(code)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top == "sfjwt_ext" or top in sys.stdlib_module_names:
                continue
            needed.add(DISTRIBUTION.get(top, top).lower())
    needed.update(dist for marker, dist in IMPLIED.items() if marker in code)
    return needed


def test_the_notebook_extra_covers_every_notebook() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    provided = _names(cfg["options"]["install_requires"]) | _names(cfg["options.extras_require"]["notebook"])
    missing = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        lacking = _needed(code) - provided
        if lacking:
            missing[path.name] = sorted(lacking)
    assert missing == {}, f"add these to [options.extras_require] notebook in setup.cfg: {missing}"
