"""``sfjwt setup`` (issue 15, item 2): from an admin's session to a working profile in one
command, run as users run it (a subprocess) against the local org over HTTPS. The admin session
here is ``--instance-url`` + ``SF_ADMIN_ACCESS_TOKEN`` (a token of the org's admin, got with a
raw JWT login); tests/test_sf_cli_setup.py does the same through the Salesforce CLI."""
from __future__ import annotations

import configparser
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List

import pytest

from sfjwt_ext import connect_jwt
from sfjwt_ext.cli.eca_setup import write_profile
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import load_certificate, key_matches_certificate
from sfjwt_ext.testing import LocalOrg
from tests._support import raw_login
from tests.test_cli import assert_clean_failure, run

NS = "{http://soap.sforce.com/2006/04/metadata}"
ECA_FILES = ["externalClientApps/sfjwt.eca", "extlClntAppGlobalOauthSets/sfjwt_glbloauth.ecaGlblOauth",
             "extlClntAppOauthSettings/sfjwt_oauth.ecaOauth", "extlClntAppOauthPolicies/sfjwt_oauthPlcy.ecaOauthPlcy",
             "extlClntAppPolicies/sfjwt_plcy.ecaPlcy"]


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    return salesforce_org


@pytest.fixture
def admin_env(org: Any, tmp_path: Path) -> Dict[str, str]:
    """The admin's token (the fixture's user has the System Administrator profile), the org's
    CA, and a profile file of the test's own."""
    token = raw_login(org)["access_token"]
    return {"SF_ADMIN_ACCESS_TOKEN": token, "SF_CA_BUNDLE": org.ca_file, "SFJWT_CONFIG": str(tmp_path / "config.ini")}


def setup_args(org: Any, tmp_path: Path, *extra: str) -> List[str]:
    return ["setup", "--instance-url", org.instance_url, "--out", str(tmp_path / "keys"), *extra]


def read_profile(path: Path, name: str = "default") -> Dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return dict(parser[name])


def ecas(org: Any) -> List[Any]:
    return [app for app in org.apps.values() if app.kind == "eca" and app.developer_name == "sfjwt"]


# ---------------------------------------------------------------------------------------
# the whole flow
# ---------------------------------------------------------------------------------------
def test_setup_makes_an_app_and_a_profile_that_connect_jwt_uses(org: Any, admin_env: Dict[str, str],
                                                                 tmp_path: Path) -> None:
    result = run(setup_args(org, tmp_path, "--wait", "60"), admin_env, timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    config = Path(admin_env["SFJWT_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    profile = read_profile(config)
    assert profile["username"] == org.credentials.username
    assert profile["login_url"] == org.instance_url
    assert profile["consumer_key"].startswith("3MVG9") and profile["consumer_key"] in result.stdout
    key_file = Path(profile["private_key_file"])
    assert key_file == (tmp_path / "keys" / "sfjwt.key").resolve()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_matches_certificate(load_private_key(private_key_file=str(key_file)),
                                   load_certificate(key_file.with_suffix(".crt")))
    [app] = ecas(org)
    assert app.consumer_key == profile["consumer_key"] and app.permission_sets == ("sfjwt_users",)
    assert "login:         OK" in result.stdout
    # the token never shows; the profile works for connect_jwt
    assert admin_env["SF_ADMIN_ACCESS_TOKEN"] not in result.stdout + result.stderr
    os.environ["SFJWT_CONFIG"] = str(config)
    try:
        sf = connect_jwt(profile="default", verify=org.ca_file, cache=False)
        assert sf.query("SELECT Id FROM User")["totalSize"] >= 1
    finally:
        del os.environ["SFJWT_CONFIG"]


def test_setup_twice_updates_the_one_app_and_a_new_key_file_rotates_the_certificate(
        org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    first = run(setup_args(org, tmp_path, "--no-wait"), admin_env, timeout=180)
    assert first.returncode == 0, first.stderr
    key_before = read_profile(Path(admin_env["SFJWT_CONFIG"]))["consumer_key"]
    new_key = tmp_path / "rotated"
    assert run(["keygen", "--out", str(new_key), "--name", "next"]).returncode == 0
    second = run(setup_args(org, tmp_path, "--key-file", str(new_key / "next.key"), "--wait", "60"), admin_env,
                 timeout=180)
    assert second.returncode == 0, (second.stdout, second.stderr)
    assert "(updated)" in second.stdout
    [app] = ecas(org)
    assert app.consumer_key == key_before  # the same app, the same consumer key
    assert key_matches_certificate(load_private_key(private_key_file=str(new_key / "next.key")),
                                   load_certificate(new_key / "next.crt"))
    assert app.certificate_pem.strip() == (new_key / "next.crt").read_text().strip()
    assert read_profile(Path(admin_env["SFJWT_CONFIG"]))["private_key_file"] == str((new_key / "next.key").resolve())


def test_setup_keeps_the_other_profiles_of_the_file(org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    config = Path(admin_env["SFJWT_CONFIG"])
    other = "# my own comment\n[uat]\nusername = someone@acme.com.uat\ndomain = test\n\n"
    config.write_text(other + "[etl]\nusername = old@acme.com\n")
    result = run(setup_args(org, tmp_path, "--profile", "etl", "--no-wait"), admin_env, timeout=180)
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert text.startswith(other)  # byte for byte, comment included
    assert read_profile(config, "etl")["username"] == org.credentials.username
    assert "old@acme.com" not in text


def test_the_wait_logs_in_a_bounded_number_of_times_while_the_app_propagates(
        org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    org.app_propagation_delay = 8.0   # a new app answers invalid_client_id for 8 s
    before = org.token_requests
    result = run(setup_args(org, tmp_path, "--wait", "120"), admin_env, timeout=240)
    assert result.returncode == 0, (result.stdout, result.stderr)
    made = org.token_requests - before
    # attempts at 0 s, 5 s, 15 s (5, then 10 apart): the third one is past the 8 s
    assert 2 <= made <= 3, made
    assert f"OK ({made} token requests)" in result.stdout
    assert "invalid_client_id" in result.stderr  # the progress said why it waited


def test_the_wait_running_out_exits_5_and_says_to_check_later(org: Any, admin_env: Dict[str, str],
                                                              tmp_path: Path) -> None:
    org.app_propagation_delay = 600.0
    result = run(setup_args(org, tmp_path, "--wait", "0"), admin_env, timeout=180)
    assert_clean_failure(result, 5)
    assert "sfjwt check" in result.stderr and "invalid_client_id" in result.stderr
    assert "look right in the org: Salesforce is still applying" in result.stderr  # read with the admin session
    assert Path(admin_env["SFJWT_CONFIG"]).exists()  # the profile is written before the wait


# ---------------------------------------------------------------------------------------
# --dry-run
# ---------------------------------------------------------------------------------------
def test_dry_run_writes_the_package_and_the_key_and_nothing_else(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    result = run(["setup", "--dry-run", str(tmp_path / "pkg"), "--username", "etl@acme.com",
                  "--out", str(tmp_path / "keys")], {"SFJWT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    pkg = tmp_path / "pkg"
    names = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    assert names == sorted(ECA_FILES + ["package.xml", "permissionsets/sfjwt_users.permissionset"])
    manifest = ET.parse(pkg / "package.xml").getroot()
    types = {t.findtext(f"{NS}name"): [m.text for m in t.findall(f"{NS}members")] for t in manifest.findall(f"{NS}types")}
    assert types["ExternalClientApplication"] == ["sfjwt"] and types["PermissionSet"] == ["sfjwt_users"]
    glbl = ET.parse(pkg / ECA_FILES[1]).getroot()
    consumer_key = glbl.findtext(f"{NS}consumerKey") or ""
    assert consumer_key.startswith("3MVG9") and len(consumer_key) == 85 and consumer_key in result.stdout
    cert = load_certificate(tmp_path / "keys" / "sfjwt.crt")
    assert (glbl.findtext(f"{NS}certificate") or "").strip() in (tmp_path / "keys" / "sfjwt.crt").read_text()
    assert cert is not None
    policy = ET.parse(pkg / ECA_FILES[3]).getroot()
    assert policy.findtext(f"{NS}permittedUsersPolicyType") == "AdminApprovedPreAuthorized"
    assert policy.findtext(f"{NS}commaSeparatedPermissionSet") == "sfjwt_users"
    scopes = ET.parse(pkg / ECA_FILES[2]).getroot().findtext(f"{NS}commaSeparatedOauthScopes")
    assert scopes == "Api, RefreshToken"
    assert f"sf project deploy start --metadata-dir {pkg.resolve()}" in result.stdout
    assert not config.exists()  # no profile
    for path in pkg.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes()


def test_dry_run_without_a_username_names_the_option(tmp_path: Path) -> None:
    result = run(["setup", "--dry-run", str(tmp_path / "pkg"), "--out", str(tmp_path)])
    assert_clean_failure(result, 2)
    assert "--username" in result.stderr


# ---------------------------------------------------------------------------------------
# failures name the fix
# ---------------------------------------------------------------------------------------
def test_instance_url_without_the_token_names_the_variable(org: Any, tmp_path: Path) -> None:
    result = run(setup_args(org, tmp_path), {"SF_CA_BUNDLE": org.ca_file})
    assert_clean_failure(result, 2)
    assert "SF_ADMIN_ACCESS_TOKEN" in result.stderr


def test_target_org_without_sf_on_path_names_the_login_command(tmp_path: Path) -> None:
    result = run(["setup", "--target-org", "my-admin"], {"PATH": str(tmp_path)})
    assert_clean_failure(result, 2)
    assert "sf org login web --alias my-admin" in result.stderr


def test_a_bad_app_name_is_refused_before_anything_is_sent(org: Any, admin_env: Dict[str, str],
                                                           tmp_path: Path) -> None:
    before = len(org.requests)
    result = run(setup_args(org, tmp_path, "--app-name", "my app"), admin_env)
    assert_clean_failure(result, 2)
    assert "--app-name" in result.stderr and len(org.requests) == before


def test_an_expired_admin_token_says_to_log_in_again(org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    org.expire_all_sessions()
    result = run(setup_args(org, tmp_path), admin_env)
    assert_clean_failure(result, 2)
    assert "log in" in result.stderr and admin_env["SF_ADMIN_ACCESS_TOKEN"] not in result.stderr


def test_an_unknown_username_is_named(org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    result = run(setup_args(org, tmp_path, "--username", "nobody@acme.com"), admin_env)
    assert_clean_failure(result, 2)
    assert "nobody@acme.com" in result.stderr and "Setup > Users" in result.stderr


# ---------------------------------------------------------------------------------------
# the profile file
# ---------------------------------------------------------------------------------------
def test_write_profile_replaces_one_section_atomically_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("[a]\nusername = x\n; note\n[b]\nusername = y\n")
    os.chmod(path, 0o644)
    write_profile(path, "a", {"username": "z", "consumer_key": "3MVG9k"})
    assert path.read_text() == "[a]\nusername = z\nconsumer_key = 3MVG9k\n[b]\nusername = y\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_profile(path, "c", {"username": "w"})
    assert path.read_text().endswith("[b]\nusername = y\n\n[c]\nusername = w\n")
    assert [p.name for p in tmp_path.iterdir()] == ["config.ini"]  # no temp file left


def test_a_component_the_org_refuses_is_quoted_with_a_fix(org: Any, admin_env: Dict[str, str]) -> None:
    from sfjwt_ext.cli.admin import from_token
    from sfjwt_ext.cli.eca_setup import AppComponents, AppPlan, SetupError, deploy, package_files

    admin = from_token(org.instance_url, admin_env)
    cert = Path(org.credentials.certificate_file).read_text()
    taken = AppPlan(AppComponents.default("second"), "sfjwt_users", "a@example.com", cert,
                    org.credentials.consumer_key)  # the key of the org's other app
    with pytest.raises(SetupError) as caught:
        deploy(admin, package_files(taken))
    message = str(caught.value)
    assert "ExtlClntAppGlobalOauthSettings second_glbloauth: The consumer key is already taken." in message
    assert "Fix:" in message and admin_env["SF_ADMIN_ACCESS_TOKEN"] not in message
    assert not [a for a in org.apps.values() if a.developer_name == "second"]  # rolled back


def test_verbose_setup_shows_no_secret(org: Any, admin_env: Dict[str, str], tmp_path: Path) -> None:
    result = run(setup_args(org, tmp_path, "--verbose", "--wait", "60"), admin_env, timeout=180)
    assert result.returncode == 0, result.stderr
    key_text = (tmp_path / "keys" / "sfjwt.key").read_text()
    body = "".join(line for line in key_text.splitlines() if "-----" not in line)
    for secret in (admin_env["SF_ADMIN_ACCESS_TOKEN"], body[:40]):
        assert secret not in result.stdout + result.stderr
    assert "eyJ" not in result.stdout + result.stderr  # no assertion (JWT)


@pytest.mark.parametrize("problem, fix", [
    ("INSUFFICIENT_ACCESS: insufficient access rights on object id", "Create, edit, and delete External Client Apps"),
    ("Unknown type name 'ExternalClientApplication' specified in package.xml", "External Client App Settings"),
    ("In field: externalClientApplication - no ExternalClientApplication named x found", "Deployment Status"),
])
def test_each_deploy_refusal_names_its_fix(problem: str, fix: str) -> None:
    from sfjwt_ext.cli.eca_setup import _deploy_fix

    assert fix in _deploy_fix(problem)
