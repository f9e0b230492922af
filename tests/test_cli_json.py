"""``--json`` on check, query, cache and setup (issue 19 item 5): one JSON document on stdout in
the Salesforce CLI's envelope (``{"status": 0, "result": ..., "warnings": [...]}``; errors as
``{"status": N, "name", "message", "exitCode": N, ...}``) with the usual exit codes, nothing
else on stdout. Run as users run it (a subprocess) against the local org over HTTPS."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from sfjwt_ext import connect_jwt
from sfjwt_ext.testing import LocalOrg
from tests._support import raw_login
from tests.test_cli import assert_clean_failure, command_env, run


def document(result: subprocess.CompletedProcess, code: int) -> Dict[str, Any]:
    """stdout is exactly one JSON document whose status is the exit code."""
    assert result.returncode == code, (result.stdout[-2000:], result.stderr[-2000:])
    doc = json.loads(result.stdout)  # raises if anything else is on stdout
    assert isinstance(doc, dict) and doc["status"] == code and isinstance(doc["warnings"], list)
    assert "Traceback" not in result.stderr
    if code:
        assert doc["exitCode"] == code and doc["message"] and doc["name"] and "result" not in doc
    return doc


@pytest.fixture
def env(salesforce_org: Any) -> Dict[str, str]:
    return dict(salesforce_org.credentials.env())


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A read-only org: 7 Accounts (one with a parent), 3 records a page."""
    with LocalOrg(page_size=3) as org:
        creds = org.new_app_with_key(tmp_path_factory.mktemp("json-org"))
        parent = org.insert("Account", [{"Name": "Parent"}])[0]
        org.insert("Account", [{"Name": f"A{i}", "ParentId": parent if i == 0 else None} for i in range(6)])
        org.env = dict(creds.env())  # type: ignore[attr-defined]
        yield org


# ---------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------
def test_check_json_is_the_report_as_one_document(salesforce_org: Any, env: Dict[str, str]) -> None:
    doc = document(run(["check", "--json"], env=env), 0)
    result = doc["result"]
    settings = result["settings"]
    assert settings["username"]["value"] == salesforce_org.credentials.username
    assert settings["username"]["source"] == "environment"
    assert settings["domain"] == {"value": None, "source": None}
    assert "BEGIN" not in json.dumps(doc)  # no key material
    assert result["key"] == {"type": "RSA", "bits": 2048}
    assert result["login"]["orgId"] == salesforce_org.org_id
    assert result["login"]["instanceUrl"] == salesforce_org.instance_url
    assert result["tokenUrl"].startswith(salesforce_org.login_url)


def test_check_json_refused_login_is_an_error_document_exit_3(salesforce_org: Any, env: Dict[str, str]) -> None:
    salesforce_org.add_user("pending@example.com", approved=False)
    env["SF_USERNAME"] = "pending@example.com"
    doc = document(run(["check", "--json"], env=env), 3)
    assert "user hasn't approved this consumer" in doc["message"]
    assert doc["commandName"] == "check" and doc["name"].endswith("Error")
    assert doc["data"]["key"]["type"] == "RSA" and doc["data"]["audience"]  # what check found before


def test_check_json_missing_settings_is_exit_2(tmp_path: Path) -> None:
    doc = document(run(["check", "--json"]), 2)
    assert "SF_USERNAME" in doc["message"] and doc["name"] == "ConfigurationError"


def test_check_json_unreachable_token_endpoint_is_exit_4(env: Dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["SF_LOGIN_URL"] = f"https://127.0.0.1:{port}"
    doc = document(run(["check", "--json"], env=env), 4)
    assert f"127.0.0.1:{port}" in doc["message"]


# ---------------------------------------------------------------------------------------
# query
# ---------------------------------------------------------------------------------------
def test_query_json_is_sf_data_querys_document(accounts: Any) -> None:
    result = run(["query", "SELECT Id, Name, Parent.Name FROM Account ORDER BY Name", "--json"], env=accounts.env)
    doc = document(result, 0)
    body = doc["result"]
    assert body["totalSize"] == 7 and body["done"] is True and len(body["records"]) == 7  # 3 pages
    first = body["records"][0]
    assert first["attributes"]["type"] == "Account" and first["Name"] == "A0"
    assert first["Parent"]["Name"] == "Parent" and first["Parent"]["attributes"]["type"] == "Account"
    assert body["records"][1]["Parent"] is None
    assert "7 records, 3 pages" in result.stderr


def test_query_json_limit_pages_says_not_done(accounts: Any) -> None:
    doc = document(run(["query", "SELECT Id FROM Account", "--json", "--limit-pages", "1"], env=accounts.env), 0)
    assert doc["result"]["done"] is False and len(doc["result"]["records"]) == 3 and doc["result"]["totalSize"] == 7


def test_query_json_malformed_soql_is_the_api_error_exit_1(accounts: Any) -> None:
    doc = document(run(["query", "SELECT Bogus FROM Account", "--json"], env=accounts.env), 1)
    assert doc["name"] == "INVALID_FIELD" and doc["data"]["errorCode"] == "INVALID_FIELD"
    assert "Bogus" in doc["message"]


def test_query_json_with_output_writes_the_file_and_says_where(accounts: Any, tmp_path: Path) -> None:
    target = tmp_path / "accounts.csv"
    doc = document(run(["query", "SELECT Id, Name FROM Account", "--json", "--output", str(target),
                        "--format", "csv"], env=accounts.env), 0)
    assert doc["result"] == {"totalSize": 7, "done": True, "recordCount": 7, "outputFile": str(target),
                             "resultFormat": "csv"}
    assert target.read_text().splitlines()[0] == "Id,Name" and len(target.read_text().splitlines()) == 8


def test_query_json_with_a_text_format_on_stdout_is_a_usage_error(accounts: Any) -> None:
    doc = document(run(["query", "SELECT Id FROM Account", "--json", "--format", "csv"], env=accounts.env), 2)
    assert "--output" in doc["message"]


def test_query_json_refused_login_is_exit_3(accounts: Any) -> None:
    doc = document(run(["query", "SELECT Id FROM Account", "--json"],
                       env=dict(accounts.env, SF_USERNAME="nobody@example.com")), 3)
    assert "nobody@example.com" in doc["message"] or doc["message"]


def test_a_usage_error_from_argparse_is_a_json_document_too() -> None:
    result = run(["query", "SELECT Id FROM Account", "--json", "--limit-pages", "0"])
    doc = document(result, 2)
    assert "--limit-pages" in doc["message"] and doc["commandName"] == "query"
    assert "usage:" in result.stderr  # the human message stays on stderr


# ---------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------
def test_cache_list_and_clear_json(salesforce_org: Any, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), token_cache=str(folder))
    listed = document(run(["cache", "list", "--folder", str(folder), "--json"]), 0)
    (entry,) = listed["result"]["entries"]
    assert listed["result"]["folder"] == str(folder)
    assert entry["username"] == salesforce_org.credentials.username and entry["orgId"] == sf.token.org_id
    assert entry["instanceUrl"] == sf.token.instance_url and entry["ageSeconds"] >= 0 and entry["problem"] is None
    assert entry["issuedAt"].endswith("Z") and entry["issuedAt"][:2] == "20"
    assert sf.session_id not in json.dumps(listed)
    cleared = document(run(["cache", "clear", "--folder", str(folder), "--json"]), 0)
    assert cleared["result"] == {"folder": str(folder), "removed": 1}
    empty = document(run(["cache", "list", "--folder", str(folder), "--json"]), 0)
    assert empty["result"]["entries"] == []


# ---------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------
def test_setup_dry_run_json(tmp_path: Path) -> None:
    doc = document(run(["setup", "--dry-run", str(tmp_path / "pkg"), "--username", "etl@acme.com",
                        "--out", str(tmp_path), "--json"]), 0)
    result = doc["result"]
    assert result["dryRun"] is True and result["packageDir"] == str(tmp_path / "pkg")
    assert result["username"] == "etl@acme.com" and Path(result["privateKeyFile"]).exists()


def test_setup_json_makes_the_app_and_says_what(salesforce_org: Any, tmp_path: Path) -> None:
    env = {"SF_ADMIN_ACCESS_TOKEN": raw_login(salesforce_org)["access_token"], "SF_CA_BUNDLE": salesforce_org.ca_file,
           "SFJWT_CONFIG": str(tmp_path / "config.ini")}
    result = run(["setup", "--instance-url", salesforce_org.instance_url, "--out", str(tmp_path / "keys"), "--json"],
                 env=env, timeout=120)
    doc = document(result, 0)
    body = doc["result"]
    assert body["appName"] == "sfjwt" and body["created"] is True and body["loggedIn"] is True
    assert body["consumerKey"] and body["configFile"] == str(tmp_path / "config.ini")
    assert env["SF_ADMIN_ACCESS_TOKEN"] not in result.stdout + result.stderr


def test_setup_json_without_the_admin_token_is_exit_2(salesforce_org: Any, tmp_path: Path) -> None:
    doc = document(run(["setup", "--instance-url", salesforce_org.instance_url, "--json"],
                       env={"SFJWT_CONFIG": str(tmp_path / "config.ini")}), 2)
    assert "SF_ADMIN_ACCESS_TOKEN" in doc["message"]


# ---------------------------------------------------------------------------------------
# warnings
# ---------------------------------------------------------------------------------------
def test_warnings_are_one_line_on_stderr_and_in_the_document(salesforce_org: Any, env: Dict[str, str],
                                                            tmp_path: Path) -> None:
    """A key file others can read: KeyFilePermissionWarning, as `sfjwt: warning: ...` (not
    Python's `file:line: Category:` form, which takes two lines) and in "warnings"."""
    key = tmp_path / "open.key"
    key.write_bytes(Path(env["SF_PRIVATE_KEY_FILE"]).read_bytes())
    key.chmod(0o644)
    env["SF_PRIVATE_KEY_FILE"] = str(key)
    plain = run(["check"], env=env)
    assert plain.returncode == 0, plain.stderr
    lines = [line for line in plain.stderr.splitlines() if "chmod" in line]
    assert lines and all(line.startswith("sfjwt: warning: ") for line in lines), plain.stderr
    assert "Warning:" not in plain.stderr and "warnings.warn" not in plain.stderr
    doc = document(run(["check", "--json"], env=env), 0)
    assert any("chmod" in message for message in doc["warnings"])


def test_under_warnings_as_errors_an_ec_key_and_an_open_key_file_are_clean_exit_2(
        salesforce_org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    """`python -W error`: an EC key is our PrivateKeyError, a key file others can read is its
    warning's message (with the chmod fix) as an exit 2, never a traceback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ec_key.chmod(0o600)
    strict = [sys.executable, "-W", "error", "-m", "sfjwt_ext"]
    result = subprocess.run(strict + ["check", "--key-file", str(ec_key)], env=command_env(env), capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert_clean_failure(result, 2)
    assert "not an RSA key" in result.stderr and "RS256" in result.stderr
    open_key = tmp_path / "open.key"
    open_key.write_bytes(Path(env["SF_PRIVATE_KEY_FILE"]).read_bytes())
    open_key.chmod(0o644)
    result = subprocess.run(strict + ["check", "--key-file", str(open_key), "--json"], env=command_env(env),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    doc = document(result, 2)
    assert "chmod" in doc["message"] and doc["name"] == "KeyFilePermissionWarning"


def test_one_line_warnings_takes_warnings_and_log_records(capsys: pytest.CaptureFixture[str]) -> None:
    """Both kinds of warning the package gives (warnings.warn, e.g. KeyFilePermissionWarning,
    and logger.warning, e.g. verify=False's) print as one `sfjwt: warning:` line each."""
    import logging
    import warnings

    from sfjwt_ext.cli.jsonout import Warnings, one_line_warnings

    collected = Warnings()
    with one_line_warnings(collected):
        warnings.warn("the key file is readable by others\n(mode 0644): run `chmod 600 k`", UserWarning)
        logging.getLogger("sfjwt_ext.connect").warning("verify=False: TLS certificates are NOT checked")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "sfjwt: warning: the key file is readable by others (mode 0644): run `chmod 600 k`",
        "sfjwt: warning: verify=False: TLS certificates are NOT checked",
    ]
    assert len(collected.messages) == 2


def test_query_json_count_and_empty_results(accounts: Any) -> None:
    counted = document(run(["query", "SELECT COUNT() FROM Account", "--json"], env=accounts.env), 0)
    assert counted["result"] == {"records": [], "totalSize": 7, "done": True}  # as sf data query --json
    empty = document(run(["query", "SELECT Id FROM Account WHERE Name = 'none'", "--json"], env=accounts.env), 0)
    assert empty["result"] == {"records": [], "totalSize": 0, "done": True}
