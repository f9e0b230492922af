"""The notebooks under notebooks/: committed clean, and they run against the local org."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_connected_app_setup.ipynb", "03_large_extracts.ipynb"]


def test_the_three_notebooks_exist() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    # plain JSON, so this check runs (and fails on a notebook saved with outputs) even where
    # nbformat is not installed; nbformat's schema validation on top when it is
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution_count"
        else:
            assert "outputs" not in cell, f"{path.name} cell {i} ({cell['cell_type']}) has outputs"
    assert "widgets" not in nb.get("metadata", {})
    try:
        import nbformat
    except ImportError:
        return
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))


def test_the_notebooks_read_their_settings_from_the_environment() -> None:
    """No notebook hard-codes a username, consumer key or key file: connect_jwt() with no
    connection arguments (SF_* environment, else the profile)."""
    for name in NAMES:
        nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "connect_jwt(" in code, name
        for hard_coded in ("username=", "consumer_key=", "login_url=", "3MVG9", "BEGIN"):
            assert hard_coded not in code, (name, hard_coded)


@pytest.fixture(scope="module")
def org_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, str]]:
    """A local org with the sample data; the kernel gets its SF_* settings through os.environ."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("pyarrow")
    from sfjwt_ext.testing import LocalOrg

    org = LocalOrg()
    org.start()
    try:
        creds = org.new_app_with_key(tmp_path_factory.mktemp("nb-org"), username="notebook@example.com")
        org.load_sample_data()
        env = dict(creds.env())
        env["SF_CA_BUNDLE"] = org.ca_file
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name.startswith("SF_") and name not in env:
                    mp.delenv(name)  # a developer's own settings must not leak into the run
            for name, value in env.items():
                mp.setenv(name, value)
            mp.setenv("MPLBACKEND", "Agg")
            mp.setenv("SFJWT_CONFIG", str(tmp_path_factory.mktemp("nb-config") / "none.ini"))
            yield env
    finally:
        org.stop()


def _errors(nb: Any) -> Dict[int, str]:
    found = {}
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found[i] = f"{out.get('ename')}: {out.get('evalue')}"
    return found


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_against_the_local_org(name: str, org_env: Dict[str, str], tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    assert _errors(nb) == {}
    text = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells for out in cell.get("outputs", []))
    if name == "01_quickstart.ipynb":
        assert "2000 opportunities" in text  # (MPLBACKEND=Agg: the chart is drawn, not displayed)
    elif name == "02_connected_app_setup.ipynb":
        assert "Logged in: SalesforceJWT(" in text
        assert "The signature does not match the certificate" in text
    else:
        assert "2,000 opportunities" in text
        assert "opportunities.parquet" in text
