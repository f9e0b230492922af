"""The public surface: ``__all__`` is written out literally (type checkers read it) and
names exactly what ``sfjwt_ext`` loads lazily; each name really loads."""
from __future__ import annotations

import ast
from pathlib import Path

from typing import Any

import pytest

import sfjwt_ext
import sfjwt_ext.testing as sfjwt_ext_testing


@pytest.mark.parametrize("module", [sfjwt_ext, sfjwt_ext_testing], ids=["sfjwt_ext", "sfjwt_ext.testing"])
def test_all_is_a_literal_list_that_type_checkers_can_read(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    assigned = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)]
    assert len(assigned) == 1
    value = assigned[0]
    assert isinstance(value, ast.List)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)


def test_all_names_every_lazy_export_and_each_loads() -> None:
    assert set(sfjwt_ext.__all__) == {"__version__", *sfjwt_ext._EXPORTS}
    assert len(sfjwt_ext.__all__) == len(set(sfjwt_ext.__all__))
    for name in sfjwt_ext.__all__:
        assert getattr(sfjwt_ext, name) is not None


def test_testing_all_names_every_lazy_export_and_each_loads() -> None:
    assert set(sfjwt_ext_testing.__all__) == set(sfjwt_ext_testing._EXPORTS)
    for name in sfjwt_ext_testing.__all__:
        assert getattr(sfjwt_ext_testing, name) is not None
