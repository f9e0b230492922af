"""The ``sfjwt`` command, run as users run it: the console script, in a subprocess, against
the local org over HTTPS (REQUESTS_CA_BUNDLE stays the system bundle; SF_CA_BUNDLE names
the org's CA)."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sfjwt_ext.testing import LocalOrg

SCRIPT = shutil.which("sfjwt")
COMMAND: List[str] = [SCRIPT] if SCRIPT else [sys.executable, "-m", "sfjwt_ext"]
SF_VARIABLES = [name for name in os.environ if name.startswith("SF_")] + ["SFJWT_CONFIG"]


def run(args: List[str], env: Optional[Dict[str, str]] = None, stdin: Optional[str] = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    base["SFJWT_CONFIG"] = os.devnull + ".none"  # never the developer's own profile file
    base.update(env or {})
    return subprocess.run(
        COMMAND + args, env=base, input=stdin, capture_output=True, text=True, timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.load_sample_data()
    return salesforce_org


@pytest.fixture
def env(org: Any) -> Dict[str, str]:
    return dict(org.credentials.env())


def test_the_console_script_is_installed() -> None:
    assert SCRIPT is not None, "pip install -e . should have put sfjwt on PATH"


# -- keygen ------------------------------------------------------------------------------
def test_keygen_writes_a_private_key_0600_and_a_matching_certificate(tmp_path: Path) -> None:
    from sfjwt_ext.keys import key_matches_certificate, load_certificate, load_private_key

    result = run(["keygen", "--out", str(tmp_path), "--name", "prod", "--days", "30"])
    assert result.returncode == 0, result.stderr
    key_file, cert_file = tmp_path / "prod.key", tmp_path / "prod.crt"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    key = load_private_key(private_key_file=str(key_file))
    cert = load_certificate(cert_file)
    assert key.key_size == 2048 and key_matches_certificate(key, cert)
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert "SHA-256 fingerprint" in result.stdout and "expires" in result.stdout
    assert str(cert_file) in result.stdout  # the steps name the .crt to upload
    assert "1. App Manager" in result.stdout and "Admin approved users are pre-authorized" in result.stdout
    assert "BEGIN" not in result.stdout


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run(["keygen", "--out", str(tmp_path)]).returncode == 0
    key_file, cert_file = tmp_path / "salesforce.key", tmp_path / "salesforce.crt"
    before = (key_file.read_bytes(), cert_file.read_bytes())
    cert_file.unlink()  # only the key is left: still refused, nothing written
    result = run(["keygen", "--out", str(tmp_path)])
    assert_clean_failure(result, 2)
    assert "--force" in result.stderr
    assert key_file.read_bytes() == before[0] and not cert_file.exists()
    forced = run(["keygen", "--out", str(tmp_path), "--force"])
    assert forced.returncode == 0, forced.stderr
    assert key_file.read_bytes() != before[0] and cert_file.exists()


def test_keygen_encrypts_with_the_passphrase_from_the_environment(tmp_path: Path) -> None:
    from sfjwt_ext.errors import PrivateKeyError
    from sfjwt_ext.keys import load_private_key

    result = run(["keygen", "--out", str(tmp_path), "--bits", "3072", "--passphrase-env", "MY_PASS"],
                 env={"MY_PASS": "s3cret-pass"})
    assert result.returncode == 0, result.stderr
    key_file = str(tmp_path / "salesforce.key")
    assert "ENCRYPTED" in Path(key_file).read_text()
    assert load_private_key(private_key_file=key_file, passphrase="s3cret-pass").key_size == 3072
    with pytest.raises(PrivateKeyError):
        load_private_key(private_key_file=key_file)
    assert "s3cret-pass" not in result.stdout + result.stderr


def test_keygen_passphrase_variable_unset_is_exit_2(tmp_path: Path) -> None:
    result = run(["keygen", "--out", str(tmp_path), "--passphrase-env", "NOT_SET_ANYWHERE"])
    assert_clean_failure(result, 2)
    assert "NOT_SET_ANYWHERE" in result.stderr
    assert not list(tmp_path.iterdir())


# -- check -------------------------------------------------------------------------------
def test_check_shows_settings_with_sources_and_logs_in(org: Any, env: Dict[str, str]) -> None:
    creds = org.credentials
    result = run(["check", "--cert", creds.certificate_file], env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"username                 {creds.username}   [environment]" in out
    assert creds.consumer_key in out  # the consumer key is shown
    assert "matches the key" in out
    for field in ("user:", "org id:", "instance URL:", "API version:", "login host:", "aud used:", "time:"):
        assert field in out
    assert org.org_id[:15] in out and org.instance_url in out and org.login_url in out
    assert "BEGIN" not in out and "00D" + org.org_id[3:15] + "!" not in out  # no key text, no token
    assert org.token_requests == 1


def test_check_options_work_before_and_after_the_subcommand(org: Any, env: Dict[str, str]) -> None:
    creds = org.credentials
    partial = {k: v for k, v in env.items() if k not in ("SF_USERNAME", "SF_LOGIN_URL")}
    before = run(["--username", creds.username, "--login-url", creds.login_url, "check"], env=partial)
    after = run(["check", "--username", creds.username, "--login-url", creds.login_url], env=partial)
    mixed = run(["--username", creds.username, "check", "--login-url", creds.login_url], env=partial)
    for result in (before, after, mixed):
        assert result.returncode == 0, result.stderr
        assert f"{creds.username}   [argument]" in result.stdout


def test_check_missing_setting_names_option_and_variable() -> None:
    result = run(["check"])
    assert_clean_failure(result, 2)
    assert "--username" in result.stderr and "SF_USERNAME" in result.stderr
    assert "--consumer-key" in result.stderr and "SF_CONSUMER_KEY" in result.stderr
    assert "--key-file" in result.stderr


def test_check_bad_key_is_exit_2(org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    env["SF_PRIVATE_KEY_FILE"] = org.credentials.certificate_file  # the .crt instead of the .key
    result = run(["check"], env=env)
    assert_clean_failure(result, 2)
    assert "certificate" in result.stderr and ".key" in result.stderr
    assert org.token_requests == 0


def test_check_key_not_matching_the_certificate_is_exit_2(org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    assert run(["keygen", "--out", str(tmp_path)]).returncode == 0
    result = run(["check", "--cert", str(tmp_path / "salesforce.crt")], env=env)
    assert_clean_failure(result, 2)
    assert "does not match" in result.stderr


def test_check_refused_login_is_exit_3_with_the_fix(org: Any, env: Dict[str, str]) -> None:
    org.add_user("pending@example.com", approved=False)
    env["SF_USERNAME"] = "pending@example.com"
    result = run(["check"], env=env)
    assert_clean_failure(result, 3)
    assert "user hasn't approved this consumer" in result.stderr
    assert "Admin approved users are pre-authorized" in result.stderr


def test_check_unreachable_token_endpoint_is_exit_4(env: Dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["SF_LOGIN_URL"] = f"https://127.0.0.1:{port}"
    result = run(["check"], env=env)
    assert_clean_failure(result, 4)
    assert "127.0.0.1" in result.stderr


def test_check_token_endpoint_failing_with_503_is_exit_4(org: Any, env: Dict[str, str]) -> None:
    org.inject_fault("token", count=10, status=503, body=b"down", headers={"Retry-After": "0"})
    result = run(["check"], env=env)
    assert_clean_failure(result, 4)
    assert org.token_requests == 3  # three attempts, then give up


def test_check_with_a_profile(org: Any, tmp_path: Path) -> None:
    creds = org.credentials
    config = tmp_path / "config.ini"
    config.write_text(
        "[uat]\n"
        f"username = {creds.username}\nconsumer_key = {creds.consumer_key}\n"
        f"private_key_file = {creds.private_key_file}\nlogin_url = {creds.login_url}\n"
        f"ca_bundle = {creds.ca_file}\n"
    )
    config.chmod(0o600)
    result = run(["--profile", "uat", "check"], env={"SFJWT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert "[profile:uat]" in result.stdout
    missing = run(["--profile", "nope", "check"], env={"SFJWT_CONFIG": str(config)})
    assert_clean_failure(missing, 2)
    assert "nope" in missing.stderr and "uat" in missing.stderr


def test_verbose_shows_a_traceback_and_debug_logs_without_secrets(org: Any, env: Dict[str, str]) -> None:
    env["SF_USERNAME"] = "nobody@example.com"
    result = run(["check", "-v"], env=env)
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "DEBUG" in result.stderr
    assert "eyJ" not in result.stderr and "BEGIN" not in result.stderr


def test_version_and_help_with_examples() -> None:
    from sfjwt_ext import __version__

    version = run(["--version"])
    assert version.returncode == 0 and __version__ in version.stdout
    helped = run(["--help"])
    assert helped.returncode == 0
    assert "examples:" in helped.stdout and "sfjwt check" in helped.stdout and "SF_" in helped.stdout
    for command in ("keygen", "check", "query", "demo"):
        assert command in helped.stdout
        assert run([command, "--help"]).returncode == 0


def test_no_command_prints_help_and_exit_2() -> None:
    result = run([])
    assert_clean_failure(result, 2)
    assert "usage:" in result.stderr


# -- query -------------------------------------------------------------------------------
SOQL = "SELECT Id, FirstName, LastName, Account.Name FROM Contact ORDER BY Id LIMIT 25"


def test_query_csv_has_only_data_on_stdout(org: Any, env: Dict[str, str]) -> None:
    result = run(["query", SOQL, "--format", "csv"], env=env)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["Id", "FirstName", "LastName", "Account.Name"]
    assert len(rows) == 26
    assert "25 records" in result.stderr


def test_query_json_is_one_array_of_flat_records(org: Any, env: Dict[str, str]) -> None:
    result = run(["query", SOQL, "--format", "json"], env=env)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == 25
    assert list(records[0]) == ["Id", "FirstName", "LastName", "Account.Name"]
    assert all("attributes" not in r for r in records)


def test_query_jsonl_and_null_parents(org: Any, env: Dict[str, str]) -> None:
    orphan = org.insert("Contact", [{"LastName": "Orphan", "AccountId": None}])[0]
    result = run(["query", f"SELECT Id, Account.Name FROM Contact WHERE Id = '{orphan}'", "--format", "jsonl"], env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == [{"Id": orphan, "Account.Name": None}]


def test_query_table_is_aligned(org: Any, env: Dict[str, str]) -> None:
    result = run(["query", "SELECT Name, Industry FROM Account ORDER BY Name LIMIT 3"], env=env)
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["Name", "Industry"] and set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 3


def test_query_reads_soql_from_stdin(org: Any, env: Dict[str, str]) -> None:
    result = run(["query", "-", "--format", "csv"], env=env, stdin="SELECT COUNT() FROM Account\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["count", "500"]
    no_arg = run(["query", "--format", "jsonl"], env=env, stdin="SELECT Id FROM Account LIMIT 2")
    assert no_arg.returncode == 0 and len(no_arg.stdout.splitlines()) == 2


def test_query_streams_every_page_and_limit_pages_stops(env: Dict[str, str], tmp_path: Path) -> None:
    with LocalOrg(page_size=500) as small_pages:
        creds = small_pages.new_app_with_key(tmp_path / "org")
        small_pages.load_sample_data()
        page_env = dict(creds.env())
        result = run(["query", "SELECT Id, Name FROM Opportunity", "--format", "jsonl"], env=page_env)
        assert result.returncode == 0, result.stderr
        ids = [json.loads(line)["Id"] for line in result.stdout.splitlines()]
        assert len(ids) == 2000 and len(set(ids)) == 2000
        assert "4 pages" in result.stderr
        limited = run(["query", "SELECT Id FROM Opportunity", "--format", "csv", "--limit-pages", "2"], env=page_env)
        assert limited.returncode == 0
        assert len(limited.stdout.splitlines()) == 1 + 1000
        assert "--limit-pages" in limited.stderr


def test_query_output_file(org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "contacts.csv"
    result = run(["query", SOQL, "--format", "csv", "--output", str(target)], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == 26


def test_query_include_deleted(org: Any, env: Dict[str, str]) -> None:
    gone = org.insert("Account", [{"Name": "Deleted Co"}])[0]
    org.store.delete("Account", gone)
    soql = f"SELECT Id FROM Account WHERE Id = '{gone}'"
    assert run(["query", soql, "--format", "jsonl"], env=env).stdout == ""
    result = run(["query", soql, "--format", "jsonl", "--include-deleted"], env=env)
    assert json.loads(result.stdout) == {"Id": gone}


def test_query_malformed_soql_is_exit_1_with_salesforces_message(org: Any, env: Dict[str, str]) -> None:
    result = run(["query", "SELECT Id FORM Account"], env=env)
    assert_clean_failure(result, 1)
    assert "MALFORMED_QUERY" in result.stderr


def test_query_refused_login_is_exit_3(org: Any, env: Dict[str, str]) -> None:
    env["SF_USERNAME"] = "nobody@example.com"
    result = run(["query", "SELECT Id FROM Account"], env=env)
    assert_clean_failure(result, 3)
    assert "invalid user" in result.stderr


def test_query_without_soql_and_without_stdin_does_not_prompt(env: Dict[str, str]) -> None:
    result = run(["query"], env=env, stdin="")
    assert_clean_failure(result, 2)
    assert "SOQL" in result.stderr
