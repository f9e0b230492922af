"""The ``sfjwt`` command, run as users run it: the console script, in a subprocess, against
the local org over HTTPS (REQUESTS_CA_BUNDLE stays the system bundle; SF_CA_BUNDLE names
the org's CA).

If the ``sfjwt`` script is not on PATH (``pip install -e .`` not run), the commands run as
``python -m sfjwt_ext`` instead and ``test_the_console_script_is_installed`` fails to say so.
Read-only query tests share one module-scoped org with small pages (500 records) and the
sample data; tests that change an org, and the ``check`` tests, use the ``salesforce_org``
fixture."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import pytest

from sfjwt_ext.testing import LocalOrg

SCRIPT = shutil.which("sfjwt")
COMMAND: List[str] = [SCRIPT] if SCRIPT else [sys.executable, "-m", "sfjwt_ext"]


def command_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    base["SFJWT_CONFIG"] = os.devnull + ".none"  # never the developer's own profile file
    base.update(env or {})
    return base


def run(args: List[str], env: Optional[Dict[str, str]] = None, stdin: Optional[str] = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        COMMAND + args, env=command_env(env), input=stdin, capture_output=True, text=True, timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def run_together(*commands: List[str], env: Optional[Dict[str, str]] = None,
                 timeout: float = 60) -> List[subprocess.CompletedProcess]:
    """Independent commands at the same time (small outputs), to keep the file fast."""
    procs = [subprocess.Popen(COMMAND + args, env=command_env(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = []
    try:
        for args, proc in zip(commands, procs):
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(COMMAND + args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def assert_clean_failure(result: subprocess.CompletedProcess, code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    """The plugin's org: one approved user and app, no sample data (cheap)."""
    return salesforce_org


@pytest.fixture
def env(org: Any) -> Dict[str, str]:
    return dict(org.credentials.env())


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A read-only org shared by the query tests: sample data (500 Accounts, 1500 Contacts,
    2000 Opportunities) served 500 records a page; ``paged.env`` is its SF_* settings."""
    with LocalOrg(page_size=500) as small_pages:
        creds = small_pages.new_app_with_key(tmp_path_factory.mktemp("paged-org"))
        small_pages.load_sample_data()
        yield SimpleNamespace(org=small_pages, env=dict(creds.env()))


def test_the_console_script_is_installed() -> None:
    assert SCRIPT is not None, "pip install -e . should have put sfjwt on PATH"


# -- keygen ------------------------------------------------------------------------------
def test_keygen_writes_a_private_key_0600_and_a_matching_certificate(tmp_path: Path) -> None:
    from sfjwt_ext.auth.keys import load_private_key
    from sfjwt_ext.cli.keypair import key_matches_certificate, load_certificate

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
    assert "External Client App Manager" in result.stdout and "Admin approved users are pre-authorized" in result.stdout
    assert "BEGIN" not in result.stdout


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run(["keygen", "--out", str(tmp_path)]).returncode == 0
    key_file, cert_file = tmp_path / "salesforce.key", tmp_path / "salesforce.crt"
    os.utime(key_file, (1_000_000_000, 1_000_000_000))
    os.utime(cert_file, (1_000_000_000, 1_000_000_000))
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in (key_file, cert_file)}

    both = run(["keygen", "--out", str(tmp_path)])
    assert_clean_failure(both, 2)
    assert "--force" in both.stderr and "salesforce.key" in both.stderr
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in (key_file, cert_file)} == before

    cert_file.unlink()  # only the key is left: still refused, the certificate not written
    key_only = run(["keygen", "--out", str(tmp_path)])
    assert_clean_failure(key_only, 2)
    assert (key_file.read_bytes(), key_file.stat().st_mtime_ns) == before[key_file] and not cert_file.exists()

    key_file.rename(cert_file)  # only a .crt is there: the key is not written either
    cert_only = run(["keygen", "--out", str(tmp_path)])
    assert_clean_failure(cert_only, 2)
    assert not key_file.exists() and cert_file.read_bytes() == before[key_file][0]

    forced = run(["keygen", "--out", str(tmp_path), "--force"])
    assert forced.returncode == 0, forced.stderr
    assert key_file.exists() and key_file.read_bytes() != before[key_file][0]
    assert cert_file.read_bytes() != before[key_file][0] and b"CERTIFICATE" in cert_file.read_bytes()
    assert (key_file.stat().st_mode & 0o777) == 0o600


def test_keygen_into_a_folder_that_cannot_exist_is_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(["keygen", "--out", str(blocker / "keys")])
    assert_clean_failure(result, 2)
    assert "--out" in result.stderr and "keys" in result.stderr


def test_keygen_bits_outside_the_choices_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["keygen", "--out", str(tmp_path), "--bits", "1024"])
    assert_clean_failure(result, 2)
    assert "--bits" in result.stderr and not list(tmp_path.iterdir())


def test_keygen_encrypts_with_the_passphrase_from_the_environment(tmp_path: Path) -> None:
    from sfjwt_ext.errors import PrivateKeyError
    from sfjwt_ext.auth.keys import load_private_key

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
    for field in ("user:", "org id:", "instance URL:", "API version:", "login host:", "aud sent:", "time:"):
        assert field in out
    assert org.org_id[:15] in out and org.instance_url in out and org.login_url in out
    assert "BEGIN" not in out and "00D" + org.org_id[3:15] + "!" not in out  # no key text, no token
    key_text = Path(creds.private_key_file).read_text().splitlines()[1]
    tokens = [session.token for session in org.sessions]
    assert tokens and not any(t in out + result.stderr for t in tokens + [key_text])
    assert org.token_requests == 1


def test_check_options_work_before_and_after_the_subcommand(org: Any, env: Dict[str, str]) -> None:
    creds = org.credentials
    partial = {k: v for k, v in env.items() if k not in ("SF_USERNAME", "SF_LOGIN_URL")}
    results = run_together(
        ["--username", creds.username, "--login-url", creds.login_url, "check"],
        ["check", "--username", creds.username, "--login-url", creds.login_url],
        ["--username", creds.username, "check", "--login-url", creds.login_url],
        ["-v", "check", "--username", creds.username, "--login-url", creds.login_url],
        env=partial,
    )
    assert "DEBUG" in results[3].stderr  # -v before the subcommand survives it too
    for result in results:
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


def test_unreachable_token_endpoint_is_exit_4_for_check_and_query(env: Dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on: connection refused, fast
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["SF_LOGIN_URL"] = f"https://127.0.0.1:{port}"
    check, query = run_together(["check"], ["query", "SELECT Id FROM Account"], env=env)
    for result in (check, query):
        assert_clean_failure(result, 4)
        assert f"127.0.0.1:{port}" in result.stderr and "token endpoint unavailable" in result.stderr
    assert query.stdout == ""


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
    for command, result in zip(("keygen", "check", "query", "demo"),
                               run_together(*([c, "--help"] for c in ("keygen", "check", "query", "demo")))):
        assert command in helped.stdout
        assert result.returncode == 0 and f"usage: sfjwt {command}" in result.stdout


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run([sys.executable, "-m", "sfjwt_ext", "--version"], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("sfjwt ")


def test_no_command_prints_help_and_exit_2() -> None:
    result = run([])
    assert_clean_failure(result, 2)
    assert "usage:" in result.stderr


# -- query -------------------------------------------------------------------------------
SOQL = "SELECT Id, FirstName, LastName, Account.Name FROM Contact ORDER BY Id LIMIT 25"


def test_query_csv_has_only_data_on_stdout(paged: Any) -> None:
    result = run(["query", SOQL, "--format", "csv"], env=paged.env)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["Id", "FirstName", "LastName", "Account.Name"]
    assert len(rows) == 26 and any(row[3] for row in rows[1:])  # Account.Name filled in
    assert "25 records" in result.stderr and "25 records" not in result.stdout
    assert "\r" not in result.stderr  # no progress line when stderr is not a terminal


def test_query_json_is_one_array_of_flat_records(paged: Any) -> None:
    result = run(["query", SOQL, "--format", "json"], env=paged.env)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == 25
    assert list(records[0]) == ["Id", "FirstName", "LastName", "Account.Name"]
    assert all("attributes" not in r for r in records)
    empty = run(["query", "SELECT Id FROM Account WHERE Name = 'no such account'", "--format", "json"], env=paged.env)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_query_columns_follow_the_select_list_in_the_apis_spelling(paged: Any) -> None:
    soql = "select name, id, (select lastname from contacts) from account limit 2"
    result = run(["query", soql, "--format", "csv"], env=paged.env)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["Name", "Id", "Contacts"]
    assert all(isinstance(json.loads(row[2]), list) for row in rows[1:])  # child records as JSON text
    parents = run(["query", "SELECT Amount, Account.Name, Name FROM Opportunity LIMIT 3", "--format", "jsonl"],
                  env=paged.env)
    assert [list(json.loads(line)) for line in parents.stdout.splitlines()] == [["Amount", "Account.Name", "Name"]] * 3


def test_query_jsonl_and_null_parents(org: Any, env: Dict[str, str]) -> None:
    orphan = org.insert("Contact", [{"LastName": "Orphan", "AccountId": None}])[0]
    result = run(["query", f"SELECT Id, Account.Name FROM Contact WHERE Id = '{orphan}'", "--format", "jsonl"], env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == [{"Id": orphan, "Account.Name": None}]


def test_query_table_is_aligned(paged: Any) -> None:
    result = run(["query", "SELECT Name, Id FROM Account ORDER BY Name LIMIT 3"], env=paged.env)
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["Name", "Id"] and set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 3
    column = header.index("Id")  # every Id starts in that column, right after the padding
    assert all(row[column - 2:column] == "  " and len(row[column:]) == 18 for row in rows), rows


def test_query_table_stops_at_its_cap_and_says_so(paged: Any) -> None:
    result = run(["query", "SELECT Id, Name FROM Opportunity"], env=paged.env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 + 1000
    assert "--format csv" in result.stderr
    assert "1000 records of 2000, 2 pages" in result.stderr  # it stopped fetching at the cap


def test_query_reads_soql_from_stdin(paged: Any) -> None:
    result = run(["query", "-", "--format", "csv"], env=paged.env, stdin="SELECT COUNT() FROM Account\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["count", "500"]
    no_arg = run(["query", "--format", "jsonl"], env=paged.env, stdin="SELECT Id FROM Account LIMIT 2")
    assert no_arg.returncode == 0 and len(no_arg.stdout.splitlines()) == 2


def test_query_streams_every_page_and_limit_pages_stops(paged: Any) -> None:
    result = run(["query", "SELECT Id, Name FROM Opportunity", "--format", "jsonl"], env=paged.env)
    assert result.returncode == 0, result.stderr
    ids = [json.loads(line)["Id"] for line in result.stdout.splitlines()]
    assert len(ids) == 2000 and len(set(ids)) == 2000
    assert "2000 records, 4 pages" in result.stderr
    limited = run(["query", "SELECT Id FROM Opportunity", "--format", "json", "--limit-pages", "2"], env=paged.env)
    assert limited.returncode == 0, limited.stderr
    assert len(json.loads(limited.stdout)) == 1000
    assert "--limit-pages" in limited.stderr and "1000 records of 2000, 2 pages" in limited.stderr


def test_query_shows_progress_only_when_stderr_is_a_terminal(paged: Any, tmp_path: Path) -> None:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
        env.update(paged.env, SFJWT_CONFIG=str(tmp_path / "none.ini"))
        target = tmp_path / "opps.csv"
        result = subprocess.run(COMMAND + ["query", "SELECT Id FROM Opportunity", "--format", "csv",
                                           "--output", str(target)],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=60)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert result.returncode == 0
    assert b"\r2000/2000 records" in seen and b"4 pages" in seen
    assert len(target.read_text().splitlines()) == 2001 and result.stdout == b""


def test_query_output_file(paged: Any, tmp_path: Path) -> None:
    target = tmp_path / "contacts.csv"
    result = run(["query", SOQL, "--format", "csv", "--output", str(target)], env=paged.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == 26
    assert str(target) in result.stderr


def test_query_output_file_is_left_alone_when_the_query_fails(paged: Any, tmp_path: Path) -> None:
    target = tmp_path / "keep.csv"
    target.write_text("yesterday's data\n")
    result = run(["query", "SELECT Id FORM Account", "--format", "csv", "--output", str(target)], env=paged.env)
    assert_clean_failure(result, 1)
    assert target.read_text() == "yesterday's data\n"
    unwritable = run(["query", "SELECT Id FROM Account", "--output", str(target / "x.csv")], env=paged.env)
    assert_clean_failure(unwritable, 2)
    assert "--output" in unwritable.stderr


def test_query_include_deleted(org: Any, env: Dict[str, str]) -> None:
    gone = org.insert("Account", [{"Name": "Deleted Co"}])[0]
    org.store.delete("Account", gone)
    soql = f"SELECT Id FROM Account WHERE Id = '{gone}'"
    assert run(["query", soql, "--format", "jsonl"], env=env).stdout == ""
    result = run(["query", soql, "--format", "jsonl", "--include-deleted"], env=env)
    assert json.loads(result.stdout) == {"Id": gone}


def test_query_malformed_soql_is_exit_1_with_salesforces_message(paged: Any) -> None:
    result = run(["query", "SELECT Id FORM Account", "--format", "json"], env=paged.env)
    assert_clean_failure(result, 1)
    assert "MALFORMED_QUERY" in result.stderr and "FORM" in result.stderr
    assert result.stdout == ""  # not even an opening '['


def test_query_refused_login_is_exit_3(paged: Any) -> None:
    result = run(["query", "SELECT Id FROM Account"], env=dict(paged.env, SF_USERNAME="nobody@example.com"))
    assert_clean_failure(result, 3)
    assert "invalid user" in result.stderr and result.stdout == ""


def test_ctrl_c_is_exit_130_without_a_traceback(org: Any, env: Dict[str, str]) -> None:
    org.inject_fault("api", delay=30.0)  # the query hangs until interrupted (stop() cuts it short)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    base.update(env, SFJWT_CONFIG=os.devnull + ".none")
    proc = subprocess.Popen(COMMAND + ["query", "SELECT Id FROM Account"], env=base, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # poll until the delayed API call has reached the org: the command is then surely
        # inside main's handler, blocked on the answer (not still logging in or starting up)
        while org._faults["api"] and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert org.token_requests == 1 and not org._faults["api"] and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and out == ""


def test_query_without_soql_and_without_stdin_does_not_prompt() -> None:
    result = run(["query", "--username", "u@example.com"], stdin="")
    assert_clean_failure(result, 2)
    assert "SOQL" in result.stderr


def test_query_aggregate_grouped_by_a_parent_field_fills_its_column(paged: Any) -> None:
    """Salesforce keys ``GROUP BY Account.Name`` rows by ``Name``: the Account.Name column
    must carry those values, not blanks."""
    soql = ("SELECT Account.Name, COUNT(Id) n FROM Contact WHERE AccountId != null "
            "GROUP BY Account.Name ORDER BY Account.Name LIMIT 5")
    result = run(["query", soql, "--format", "jsonl"], env=paged.env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5 and all(list(r) == ["Account.Name", "n"] for r in rows)
    names = [r["Account.Name"] for r in rows]
    assert all(isinstance(n, str) and n for n in names), names
    assert names == sorted(names)
    assert all(isinstance(r["n"], int) and r["n"] >= 1 for r in rows)


def test_check_token_endpoint_answering_429_is_exit_4(org: Any, env: Dict[str, str]) -> None:
    org.inject_fault("token", count=10, status=429, body=b"slow down", headers={"Retry-After": "0"})
    result = run(["check"], env=env)
    assert_clean_failure(result, 4)
    assert "429" in result.stderr
    assert org.token_requests == 3  # retried like a 5xx, then gave up


def test_keygen_days_sets_the_certificate_validity(tmp_path: Path) -> None:
    from sfjwt_ext.cli.keypair import load_certificate

    result = run(["keygen", "--out", str(tmp_path), "--days", "45"])
    assert result.returncode == 0, result.stderr
    cert = load_certificate(tmp_path / "salesforce.crt")
    start = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
    end = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    assert abs((end - start).total_seconds() - 45 * 86400) <= 86400
    assert f"{end:%Y-%m-%d}" in result.stdout  # the expiry printed is the certificate's


def test_keygen_refusing_to_overwrite_speaks_cli(tmp_path: Path) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--days", "1"]).returncode == 0
    again = run(["keygen", "--out", str(tmp_path), "--days", "1"])
    assert_clean_failure(again, 2)
    assert "--force" in again.stderr and "force=True" not in again.stderr, again.stderr


def test_a_key_file_that_is_no_key_keeps_the_whole_hint(tmp_path: Path) -> None:
    """The redactor masks key material, not our hint that quotes a BEGIN line."""
    not_a_key = tmp_path / "passwd"
    not_a_key.write_text("root:x:0:0:root:/root:/bin/bash\n")
    not_a_key.chmod(0o600)
    result = run(["--key-file", str(not_a_key), "check"],
                 env={"SF_USERNAME": "a@b.c", "SF_CONSUMER_KEY": "3MVG9x"})
    assert_clean_failure(result, 2)
    assert "'-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----'" in result.stderr, result.stderr
    assert "sfjwt keygen" in result.stderr and "redacted" not in result.stderr
