"""The ``sfjwt`` command under odd input (issue 9, item 15), run as users run it: the
console script in a subprocess, against the local org over HTTPS.

Usage mistakes are exit 2 with one line that names the fix (never "a bug in sfjwt?");
``query --output`` never replaces a good file with a broken one; ``keygen`` keeps its
folder private and its file names plain; a query too long for a GET is refused before
anything is sent."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Union

import pytest

from sfjwt_ext.testing import LocalOrg

SCRIPT = shutil.which("sfjwt")
COMMAND: List[str] = [SCRIPT] if SCRIPT else [sys.executable, "-m", "sfjwt_ext"]
CONTACTS = "SELECT Id, LastName FROM Contact"  # 1500 sample contacts: 3 pages of 500


def run(args: List[str], env: Optional[Dict[str, str]] = None, stdin: Union[bytes, None] = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    environment["SFJWT_CONFIG"] = os.devnull + ".none"
    environment.update(env or {})
    result = subprocess.run(COMMAND + args, env=environment, input=stdin, capture_output=True, timeout=timeout,
                            stdin=None if stdin is not None else subprocess.DEVNULL)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode("utf-8", "replace"),
                                       result.stderr.decode("utf-8", "replace"))


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "bug in sfjwt" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with LocalOrg(page_size=500) as org:
        creds = org.new_app_with_key(tmp_path_factory.mktemp("attack-org"))
        org.load_sample_data()
        yield SimpleNamespace(org=org, env=dict(creds.env()))


# -- query: the SOQL itself ---------------------------------------------------------------
def test_invalid_utf8_soql_on_stdin_is_a_usage_error() -> None:
    result = run(["query", "-"], stdin=b"SELECT Id FROM Account WHERE Name = 'Caf\xe9'\n")
    assert_usage_error(result, "UTF-8", "stdin", "0xe9")


def test_utf8_soql_on_stdin_with_a_bom_is_read(paged: Any) -> None:
    result = run(["query", "-", "--format", "csv"], env=paged.env,
                 stdin="\ufeffSELECT Id FROM Account WHERE Name = 'Zürich'".encode("utf-8"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Id"


def test_a_query_too_long_for_a_get_is_refused_before_anything_is_sent(paged: Any) -> None:
    names = ", ".join(f"'Company {i:06d}'" for i in range(6000))  # ~100 KB of SOQL
    soql = f"SELECT Id FROM Account WHERE Name IN ({names})"
    assert len(soql) > 100_000
    paged.org.reset_counters()
    result = run(["query", soql, "--format", "csv"], env=paged.env)
    assert_usage_error(result, "too long for a GET", "16,384", "Bulk API 2.0")
    assert len(result.stderr.strip().splitlines()) == 2  # the line, and the --verbose hint
    assert "<html" not in result.stderr.lower() and "414" not in result.stderr
    assert paged.org.token_requests == 0 and paged.org.api_requests == 0


def test_a_long_query_that_fits_in_a_get_still_runs(paged: Any) -> None:
    names = ", ".join(f"'Company {i:06d}'" for i in range(500))  # ~8 KB in the URL
    result = run(["query", f"SELECT Id FROM Account WHERE Name IN ({names})", "--format", "csv"], env=paged.env)
    assert result.returncode == 0, result.stderr


# -- query --output ------------------------------------------------------------------------
def test_output_is_left_byte_identical_when_a_later_page_fails(paged: Any, tmp_path: Path) -> None:
    target = tmp_path / "keep.csv"
    target.write_bytes(b"yesterday's data\r\n\x00binary tail")
    os.utime(target, (1_000_000_000, 1_000_000_000))
    before = (target.read_bytes(), target.stat().st_mtime_ns, target.stat().st_ino)
    paged.org.clear_faults()
    paged.org.inject_fault("api")  # the first page is answered normally (and written) ...
    paged.org.inject_fault("api", status=400, body=[{"errorCode": "INVALID_QUERY_LOCATOR",
                                                    "message": "invalid query locator"}])  # ... the second fails
    try:
        result = run(["query", CONTACTS, "--format", "csv", "--output", str(target)], env=paged.env)
    finally:
        paged.org.clear_faults()
    assert result.returncode == 1 and "INVALID_QUERY_LOCATOR" in result.stderr, result.stderr
    assert (target.read_bytes(), target.stat().st_mtime_ns, target.stat().st_ino) == before
    assert sorted(os.listdir(tmp_path)) == ["keep.csv"]  # no temporary file left behind


def test_output_replaces_the_file_at_the_end_keeping_its_mode_and_links(paged: Any, tmp_path: Path) -> None:
    real = tmp_path / "data" / "contacts.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    result = run(["query", CONTACTS, "--format", "csv", "--output", str(link)], env=paged.env)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and len(real.read_text().splitlines()) == 1501
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(os.listdir(real.parent)) == ["contacts.csv"]


def test_output_to_a_device_is_written_in_place(paged: Any) -> None:
    result = run(["query", "SELECT Id FROM Account LIMIT 3", "--format", "csv", "--output", os.devnull],
                 env=paged.env)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # /dev/null was not replaced by a file


# -- keygen --------------------------------------------------------------------------------
def test_keygen_days_beyond_what_a_certificate_can_hold_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["keygen", "--out", str(tmp_path), "--days", "99999999"])
    assert_usage_error(result, "--days", "36500")
    assert not list(tmp_path.iterdir())


def test_keygen_creates_out_with_mode_0700(tmp_path: Path) -> None:
    out = tmp_path / "new" / "keys"
    result = run(["keygen", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700  # every folder it made
    assert stat.S_IMODE((out / "salesforce.key").stat().st_mode) == 0o600


def test_keygen_leaves_an_existing_folder_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    assert run(["keygen", "--out", str(tmp_path)]).returncode == 0
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


@pytest.mark.parametrize("name", ["", " ", "sub/prod", "../prod", ".", "..", "/tmp/prod"])
def test_keygen_refuses_a_name_that_is_not_a_plain_file_name(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run(["keygen", "--out", str(out), "--name", name])
    assert_usage_error(result, "--name", "--out")
    assert not list(out.iterdir()) and sorted(os.listdir(tmp_path)) == ["out"]
