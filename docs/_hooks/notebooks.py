"""MkDocs hook: run notebooks/*.ipynb against a local org and render the executed copies.

The notebooks stay stripped in git. At every build this hook starts a local org with the
sample data (``sfjwt_ext.testing``), runs each notebook with nbclient in a temporary folder,
its ``SF_*`` settings pointing at that org (as tests/test_notebooks.py does), and hands the
executed copies to mkdocs-jupyter as ``notebooks/NAME.ipynb`` pages: the site shows the tables
and charts the code produces. A failing cell fails the build. Nothing is written into the
tree; the temporary folder is removed when the build process exits.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT = 120  # seconds per cell


@contextmanager
def _environment(values: Dict[str, str]) -> Iterator[None]:
    """os.environ with the local org's settings (the kernels inherit it), restored afterwards."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("SF_") or n == "MPLBACKEND"]:
        del os.environ[name]  # a developer's own org must not leak in; charts render inline
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _execute(sources: List[Path], out: Path) -> List[Path]:
    import nbformat
    from nbclient import NotebookClient

    from sfjwt_ext.testing import LocalOrg

    executed = []
    (out / "notebooks").mkdir()
    with LocalOrg() as org:
        (out / "keys").mkdir()
        credentials = org.new_app_with_key(out / "keys", username="notebook@example.com")
        org.load_sample_data()
        settings = dict(credentials.env(), SF_CA_BUNDLE=org.ca_file,
                        SFJWT_CONFIG=str(out / "no-profiles.ini"))
        with _environment(settings):
            for source in sources:
                nb = nbformat.read(str(source), as_version=4)
                workdir = out / "run" / source.stem
                workdir.mkdir(parents=True)
                NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                               resources={"metadata": {"path": str(workdir)}}).execute()
                target = out / "notebooks" / source.name  # mkdocs-jupyter's include pattern
                nbformat.write(nb, str(target))
                executed.append(target)
    return executed


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    out = Path(tempfile.mkdtemp(prefix="sfjwt-docs-notebooks-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    for path in _execute(sorted(NOTEBOOKS.glob("*.ipynb")), out):
        # a File with its own src_dir, not File.generated: mkdocs-jupyter's page wrapper
        # finds the source through src_dir
        files.append(File(f"notebooks/{path.name}", src_dir=str(out), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_page_context(context: Dict[str, Any], page: Page, config: MkDocsConfig, **_: Any) -> Dict[str, Any]:
    """A notebook's "edit" link names the committed notebook, not a file under docs/."""
    if page.file.src_uri.startswith("notebooks/") and config.repo_url:
        page.edit_url = f"{config.repo_url.rstrip('/')}/blob/main/{page.file.src_uri}"
    return context
