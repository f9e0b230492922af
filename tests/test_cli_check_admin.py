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
