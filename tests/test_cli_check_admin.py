"""``sfjwt check`` tells the truth (issue 15, item 3): it always makes a real JWT login (never
from the token cache or the login cache), prints the audience it sent, says a new app can take
~10 minutes after ``invalid_client_id``, and, given an admin session (``--instance-url`` +
``SF_ADMIN_ACCESS_TOKEN``), names the cause that holds. Subprocesses against the local org
over HTTPS, as users run it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from tests._support import raw_login
from tests.test_cli import assert_clean_failure, run


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    return salesforce_org


@pytest.fixture
def env(org: Any, tmp_path: Path) -> Dict[str, str]:
    return dict(org.credentials.env(), SFJWT_CONFIG=str(tmp_path / "config.ini"))


def test_check_never_answers_from_the_token_cache(org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    env = dict(env, SF_TOKEN_CACHE=str(tmp_path / "tokens"))
    first = run(["check"], env)
    assert first.returncode == 0, first.stderr
    # a token is on disk now; then the user loses access to the app
    org.set_user(org.credentials.username, approved=False)
    before = org.token_requests
    second = run(["check"], env)
    assert_clean_failure(second, 3)
    assert "login: OK" not in second.stdout
    assert "user hasn't approved this consumer" in second.stderr
    assert org.token_requests == before + 1  # one real login, no retry


def test_check_prints_the_audience_sent(org: Any, env: Dict[str, str]) -> None:
    result = run(["check"], env)
    assert result.returncode == 0, result.stderr
    sent = org.assertions[-1][1]["aud"]
    assert f"aud sent:     {sent}" in result.stdout


def test_check_after_invalid_client_id_says_a_new_app_takes_minutes(org: Any, env: Dict[str, str]) -> None:
    result = run(["check"], dict(env, SF_CONSUMER_KEY="3MVG9" + "x" * 80))
    assert_clean_failure(result, 3)
    assert "invalid_client_id" in result.stderr
    assert "up to ~10 minutes" in result.stdout + result.stderr
    assert f"aud sent:     {org.assertions[-1][1]['aud']}" in result.stdout


def test_check_with_an_admin_session_names_an_unknown_consumer_key(org: Any, env: Dict[str, str]) -> None:
    admin = raw_login(org)
    result = run(["check", "--instance-url", org.instance_url],
                 dict(env, SF_CONSUMER_KEY="3MVG9" + "y" * 80, SF_ADMIN_ACCESS_TOKEN=admin["access_token"]))
    assert_clean_failure(result, 3)
    assert "no app with consumer key" in result.stdout
    assert admin["access_token"] not in result.stdout + result.stderr


def test_check_with_an_admin_token_missing_names_the_variable(org: Any, env: Dict[str, str]) -> None:
    org.set_user(org.credentials.username, approved=False)
    result = run(["check", "--instance-url", org.instance_url], env)
    assert_clean_failure(result, 3)
    assert "SF_ADMIN_ACCESS_TOKEN" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------
# with an admin session: the cause that holds, read from the org
# ---------------------------------------------------------------------------------------
def _admin(org: Any, env: Dict[str, str]) -> Dict[str, str]:
    """The admin's token (an approved user of the org's own app), for --instance-url."""
    return dict(env, SF_ADMIN_ACCESS_TOKEN=raw_login(org)["access_token"])


def _causes(result: Any) -> str:
    return "\n".join(line for line in result.stdout.splitlines() if line.startswith("cause:"))


def _ps_app(org: Any, tmp_path: Path) -> str:
    """An ECA that pre-authorizes only the permission set 'etl_users', with the user's key."""
    from sfjwt_ext.cli.keypair import load_certificate

    org.create_permission_set("etl_users")
    cert = load_certificate(org.credentials.certificate_file)
    return str(org.create_app(certificate=cert, developer_name="etl", permission_sets=["etl_users"]))


def test_admin_check_names_the_missing_permission_set(org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    admin = _admin(org, env)
    key = _ps_app(org, tmp_path)
    result = run(["check", "--instance-url", org.instance_url], dict(admin, SF_CONSUMER_KEY=key))
    assert_clean_failure(result, 3)
    causes = _causes(result)
    assert "not pre-authorized for 'etl'" in causes and "'etl_users'" in causes
    assert "System Administrator" in causes  # the user's profile, which the app does not allow
    org.assign_permission_set(org.credentials.username, "etl_users")
    assert run(["check"], dict(env, SF_CONSUMER_KEY=key)).returncode == 0


def test_admin_check_shows_both_fingerprints_when_the_certificate_does_not_match(
        org: Any, env: Dict[str, str], tmp_path: Path) -> None:
    from sfjwt_ext.cli.keypair import fingerprint, generate_key_pair

    admin = _admin(org, env)
    _other_key, other_cert = generate_key_pair()
    key = org.create_app(certificate=other_cert, developer_name="rotated")
    result = run(["check", "--instance-url", org.instance_url], dict(admin, SF_CONSUMER_KEY=key))
    assert_clean_failure(result, 3)
    causes = _causes(result)
    assert "does not match your private key" in causes and fingerprint(other_cert) in causes
    assert "your key's public key is sha256:" in causes


def test_admin_check_names_an_inactive_user(org: Any, env: Dict[str, str]) -> None:
    admin = _admin(org, env)
    other = "etl@example.com"
    org.add_user(other)
    org.set_user(other, active=False)
    result = run(["check", "--instance-url", org.instance_url], dict(admin, SF_USERNAME=other))
    assert_clean_failure(result, 3)
    assert f"the user '{other}' is inactive" in _causes(result)


def test_admin_check_names_an_app_without_a_certificate(org: Any, env: Dict[str, str]) -> None:
    admin = _admin(org, env)
    org.set_app(org.credentials.consumer_key, public_key=None, certificate_pem="")
    result = run(["check", "--instance-url", org.instance_url], admin)
    assert_clean_failure(result, 3)
    assert "has no certificate, so the JWT bearer flow is not enabled" in _causes(result)


def test_admin_check_reads_a_legacy_connected_app_self_authorized(org: Any, env: Dict[str, str]) -> None:
    from sfjwt_ext.cli.keypair import load_certificate

    admin = _admin(org, env)
    cert = load_certificate(org.credentials.certificate_file)
    key = org.create_app(certificate=cert, kind="connected_app", developer_name="Legacy_App")
    org.set_user(org.credentials.username, approved=False)
    result = run(["check", "--instance-url", org.instance_url], dict(admin, SF_CONSUMER_KEY=key))
    assert_clean_failure(result, 3)
    causes = _causes(result)
    assert "'Legacy_App' lets users authorize themselves" in causes
    assert "Setup > App Manager > Legacy_App" in causes and "no app with consumer key" not in causes


def test_admin_check_names_the_permission_set_a_connected_app_wants(org: Any, env: Dict[str, str]) -> None:
    from sfjwt_ext.cli.keypair import load_certificate

    admin = _admin(org, env)
    org.create_permission_set("legacy_users")
    cert = load_certificate(org.credentials.certificate_file)
    key = org.create_app(certificate=cert, kind="connected_app", developer_name="Legacy_App",
                         permitted_users="AdminApprovedPreAuthorized", permission_sets=["legacy_users"])
    result = run(["check", "--instance-url", org.instance_url], dict(admin, SF_CONSUMER_KEY=key))
    assert_clean_failure(result, 3)
    assert "not pre-authorized for 'Legacy_App'" in _causes(result) and "'legacy_users'" in _causes(result)
