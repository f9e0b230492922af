"""Issue 15, item 6: ``sfjwt setup`` proven with a client nobody here wrote, the Salesforce CLI
2.146 (pinned in tests/sfcli, run offline as in tests/test_sf_cli.py).

The CLI logs in to the local org by JWT as its admin; ``sfjwt setup --target-org`` that admin
makes an External Client App and a profile; ``connect_jwt(profile=...)`` and ``sf org login
jwt`` with the new consumer key both log in; ``sf project deploy start`` deploys a
``--dry-run`` package whose consumer key logs in; and with the permission set assignment
deleted (``sf data delete record``), ``sfjwt check --target-org`` names the missing permission
set."""
from __future__ import annotations

import configparser
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

from sfjwt_ext import connect_jwt
from sfjwt_ext.testing import LocalOrg
from tests.test_cli import assert_clean_failure, run
from tests.test_sf_cli import SF_BIN, _env, _sf, pytestmark  # noqa: F401 - the same skip

SETUP_TIMEOUT = 300


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Tuple[LocalOrg, Dict[str, str], Path]]:
    """A local org, the Salesforce CLI logged in to it by JWT as its admin (alias ``admin``),
    and the environment under which ``sfjwt`` finds that CLI (its HOME, PATH) and the org's CA."""
    home = tmp_path / "home"
    home.mkdir()
    with LocalOrg.with_app(tmp_path / "app") as org:
        creds = org.credentials
        assert creds is not None
        env = _env(home, org)
        project = tmp_path / "project"
        project.mkdir()
        _sf(["org", "login", "jwt", "--client-id", creds.consumer_key, "--jwt-key-file", creds.private_key_file,
             "--username", creds.username, "--instance-url", org.login_url, "--alias", "admin"], cwd=project, env=env)
        env = dict(env, PATH=f"{SF_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                   SF_CA_BUNDLE=org.ca_file, SFJWT_CONFIG=str(tmp_path / "config.ini"))
        yield org, env, project


def _profile(env: Dict[str, str], name: str = "default") -> Dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(env["SFJWT_CONFIG"])
    return dict(parser[name])


def _connect(env: Dict[str, str], org: LocalOrg, **kwargs: Any) -> Any:
    old = os.environ.get("SFJWT_CONFIG")
    os.environ["SFJWT_CONFIG"] = env["SFJWT_CONFIG"]
    try:
        return connect_jwt(verify=org.ca_file, cache=False, **kwargs)
    finally:
        if old is None:
            del os.environ["SFJWT_CONFIG"]
        else:
            os.environ["SFJWT_CONFIG"] = old


def test_setup_from_the_sf_cli_then_connect_jwt_and_sf_login_with_the_new_key(
        cli: Tuple[LocalOrg, Dict[str, str], Path], tmp_path: Path) -> None:
    org, env, project = cli
    started = time.monotonic()
    result = run(["setup", "--target-org", "admin", "--out", str(tmp_path / "keys")], env, timeout=SETUP_TIMEOUT)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (result.stdout, result.stderr)
    print(f"\nsetup flow: {elapsed:.2f} s; {result.stdout.splitlines()[-4] if result.stdout else ''}")
    profile = _profile(env)
    sf = _connect(env, org, profile="default")
    assert sf.query("SELECT Id FROM User")["totalSize"] >= 1
    # run again: still one app of that name
    again = run(["setup", "--target-org", "admin", "--out", str(tmp_path / "keys"), "--no-wait"], env,
                timeout=SETUP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert [a.developer_name for a in org.apps.values()].count("sfjwt") == 1
    assert _profile(env)["consumer_key"] == profile["consumer_key"]
    # the Salesforce CLI logs in through the new app (the same user: the CLI moves its alias)
    login = _sf(["org", "login", "jwt", "--client-id", profile["consumer_key"], "--jwt-key-file",
                 profile["private_key_file"], "--username", profile["username"], "--instance-url", org.login_url,
                 "--alias", "through-the-new-app"], cwd=project, env=env)
    assert login["username"] == profile["username"]


def test_sf_deploys_a_dry_run_package_and_its_consumer_key_logs_in(
        cli: Tuple[LocalOrg, Dict[str, str], Path], tmp_path: Path) -> None:
    org, env, project = cli
    creds = org.credentials
    assert creds is not None
    pkg = tmp_path / "pkg"
    dry = run(["setup", "--dry-run", str(pkg), "--username", creds.username, "--app-name", "etl",
               "--out", str(tmp_path / "keys")], env)
    assert dry.returncode == 0, dry.stderr
    assert f"sf project deploy start --metadata-dir {pkg.resolve()}" in dry.stdout
    _sf(["project", "deploy", "start", "--metadata-dir", str(pkg), "--target-org", "admin", "--wait", "2"],
        cwd=project, env=env)
    _sf(["org", "assign", "permset", "--name", "etl_users", "--on-behalf-of", creds.username,
         "--target-org", "admin"], cwd=project, env=env)
    consumer_key = next(line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("consumer key:"))
    sf = _connect(env, org, username=creds.username, consumer_key=consumer_key,
                  private_key_file=str(tmp_path / "keys" / "etl.key"), login_url=org.login_url)
    assert sf.query("SELECT Id FROM User")["totalSize"] >= 1


def test_check_with_the_admin_names_the_missing_permission_set(
        cli: Tuple[LocalOrg, Dict[str, str], Path], tmp_path: Path) -> None:
    org, env, project = cli
    result = run(["setup", "--target-org", "admin", "--out", str(tmp_path / "keys")], env, timeout=SETUP_TIMEOUT)
    assert result.returncode == 0, (result.stdout, result.stderr)
    user_id = org.credentials.user_id if org.credentials else ""
    found = _sf(["data", "query", "--query", "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = "
                 f"'{user_id}' AND PermissionSet.Name = 'sfjwt_users'", "--target-org", "admin"],
                cwd=project, env=env)
    [row] = found["records"]
    _sf(["data", "delete", "record", "--sobject", "PermissionSetAssignment", "--record-id", row["Id"],
         "--target-org", "admin"], cwd=project, env=env)
    check = run(["check", "--target-org", "admin"], env, timeout=SETUP_TIMEOUT)
    assert_clean_failure(check, 3)
    assert "invalid_app_access" in check.stderr
    cause = next(line for line in check.stdout.splitlines() if line.startswith("cause:"))
    assert "not pre-authorized" in cause and "'sfjwt_users'" in cause
