"""Fault injection against the local org, end to end through ``connect_jwt()``.

What tests/test_exchange.py checks on the TokenClient alone, and tests/test_session.py /
tests/test_expiry.py check for a session that expires *between* calls, is not repeated
here. This file holds the end-to-end scenarios: faults at login through the public entry
point and at refresh time on a live client (request counts exact), every permanent error
as the user meets it, and sessions that expire *during* a multi-request operation
(query_all of 4,500 rows, Bulk 2.0 and Bulk 1.0 query jobs).

Retries stay fast without touching the code: injected 5xx/429 answers carry
``Retry-After: 0`` (the client honours it instead of its backoff), and a live client's
token client gets ``backoff = 0``.
"""
from __future__ import annotations

from typing import Any, Callable, List

import pytest
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from sfjwt_ext import connect_jwt
from sfjwt_ext.client import SalesforceJWT
from sfjwt_ext.errors import (
    AppAccessError,
    AssertionExpiredError,
    AudienceInvalidError,
    AuthenticationError,
    ConsumerNotApprovedError,
    InactiveUserError,
    InvalidAssertionError,
    InvalidClientIdError,
    LoginRateExceededError,
    TokenEndpointUnavailable,
    UnknownUserError,
)
from sfjwt_ext.cli.keypair import generate_key_pair

SOQL = "SELECT Id, Name FROM Account"
NOW = {"Retry-After": "0"}
HTML = "<html><body><h1>503 Service Unavailable</h1></body></html>"


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.insert("Account", [{"Name": f"Reliable {i}"} for i in range(3)])
    return salesforce_org


def _connect(org: Any, **kwargs: Any) -> SalesforceJWT:
    arguments = dict(org.credentials.connect_kwargs(), cache=False)
    arguments.update(kwargs)
    return connect_jwt(**arguments)


@pytest.fixture
def sf(org: Any) -> SalesforceJWT:
    client = _connect(org)
    client.refresher.token_client.backoff = 0.0
    assert client.query(SOQL)["totalSize"] == 3
    return client


# ---------------------------------------------------------------------------------------
# transient faults at login, through connect_jwt
# ---------------------------------------------------------------------------------------
def test_login_503_twice_then_200_makes_three_requests(org: Any) -> None:
    org.inject_fault("token", count=2, status=503, body=HTML, headers=NOW)
    sf = _connect(org)
    assert org.token_requests == 3
    assert sf.query(SOQL)["totalSize"] == 3


def test_login_503_forever_gives_up_after_three_attempts(org: Any) -> None:
    org.inject_fault("token", count=20, status=503, body=HTML, headers=NOW)
    with pytest.raises(TokenEndpointUnavailable) as info:
        _connect(org)
    assert info.value.attempts == 3
    assert org.token_requests == 3
    assert "503" in str(info.value) and "Fix:" in str(info.value)
    org.clear_faults()
    assert _connect(org, cache=True).query(SOQL)["totalSize"] == 3  # the failure was not cached


def test_login_429_then_200(org: Any) -> None:
    org.inject_fault("token", count=1, status=429, body="Too Many Requests", content_type="text/plain", headers=NOW)
    assert _connect(org).query(SOQL)["totalSize"] == 3
    assert org.token_requests == 2


def test_login_dropped_connection_then_200(org: Any) -> None:
    org.inject_fault("token", count=1, drop=True)
    assert _connect(org).query(SOQL)["totalSize"] == 3
    assert org.token_requests == 2
    assert [r.status for r in org.requests if r.host == "login"] == [0, 200]


def test_login_slower_than_the_timeout_is_retried(org: Any) -> None:
    org.inject_fault("token", count=1, delay=1.5)
    sf = _connect(org, timeout=(5, 0.7))
    assert org.token_requests == 2
    assert sf.query(SOQL)["totalSize"] == 3


def test_login_html_page_with_200_is_refused_at_once(org: Any) -> None:
    org.inject_fault("token", count=3, status=200, body="<html><title>Sign in to the proxy</title></html>")
    with pytest.raises(AuthenticationError) as info:
        _connect(org)
    assert org.token_requests == 1
    text = str(info.value)
    assert "HTTP 200" in text and "text/html" in text
    assert "login_url=" in text and "proxy" in text


def test_login_json_without_access_token_is_refused_at_once(org: Any) -> None:
    org.inject_fault("token", count=3, status=200, body={"instance_url": org.instance_url, "token_type": "Bearer"})
    with pytest.raises(AuthenticationError) as info:
        _connect(org)
    assert org.token_requests == 1
    assert "access_token" in str(info.value)


# ---------------------------------------------------------------------------------------
# permanent errors as the user meets them: one request, the right class, the fix
# ---------------------------------------------------------------------------------------
_OTHER_CERT: List[Any] = []


def _other_certificate() -> Any:
    if not _OTHER_CERT:
        _OTHER_CERT.append(generate_key_pair()[1])
    return _OTHER_CERT[0]


def _setup_unapproved(org: Any) -> dict:
    org.add_user("unapproved@example.com", approved=False)
    return {"username": "unapproved@example.com"}


def _setup_no_app_access(org: Any) -> dict:
    org.add_user("noaccess@example.com", app_access=False)
    return {"username": "noaccess@example.com"}


def _setup_inactive(org: Any) -> dict:
    org.set_user(org.credentials.username, active=False)
    return {}


def _setup_unknown_user(org: Any) -> dict:
    return {"username": "nobody@example.com"}


def _setup_bad_consumer_key(org: Any) -> dict:
    return {"consumer_key": "3MVG9" + "x" * 80}


def _setup_wrong_certificate(org: Any) -> dict:
    return {"consumer_key": org.create_app(certificate=_other_certificate())}


def _setup_bad_audience(org: Any) -> dict:
    return {"audience": "https://nowhere.example.com"}


def _setup_clock_skew(org: Any) -> dict:
    org.exp_leeway = -3600.0  # the org sees every exp as an hour in the past
    return {}


def _setup_rate_limit(org: Any) -> dict:
    org.login_rate_limit = 0
    return {}


PERMANENT: List[Any] = [
    (_setup_unapproved, ConsumerNotApprovedError, ["Edit Policies", "Admin approved users are pre-authorized"]),
    (_setup_no_app_access, AppAccessError, ["Manage Profiles"]),
    (_setup_inactive, InactiveUserError, ["Setup > Users"]),
    (_setup_unknown_user, UnknownUserError, ["SF_USERNAME"]),
    (_setup_bad_consumer_key, InvalidClientIdError, ["SF_CONSUMER_KEY", "App Manager"]),
    (_setup_wrong_certificate, InvalidAssertionError, ["Use digital signatures", ".crt"]),
    (_setup_bad_audience, AudienceInvalidError, ["SF_AUDIENCE"]),
    (_setup_clock_skew, AssertionExpiredError, ["clock"]),
    (_setup_rate_limit, LoginRateExceededError, ["reuse"]),
]


@pytest.mark.parametrize("setup,cls,fix", PERMANENT, ids=[p[1].__name__ for p in PERMANENT])
def test_permanent_error_is_one_request_with_the_fix(org: Any, setup: Callable[[Any], dict],
                                                     cls: type, fix: List[str]) -> None:
    overrides = setup(org)
    before = org.token_requests
    with pytest.raises(cls) as info:
        _connect(org, **overrides)
    assert org.token_requests - before == 1
    exc = info.value
    assert isinstance(exc, SalesforceAuthenticationFailed)  # what simple-salesforce users catch
    text = str(exc)
    assert "Fix:" in text
    for fragment in fix:
        assert fragment in text, (fragment, text)
    # a second try is a new login (nothing was cached) and fails the same way, once
    with pytest.raises(cls):
        _connect(org, cache=True, **overrides)
    assert org.token_requests - before == 2


# ---------------------------------------------------------------------------------------
# faults at refresh time, on a live client
# ---------------------------------------------------------------------------------------
def test_refresh_with_503_twice_then_200(org: Any, sf: SalesforceJWT) -> None:
    org.expire_all_sessions()
    org.inject_fault("token", count=2, status=503, body=HTML, headers=NOW)
    before = org.token_requests
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 3
    assert sf.refresher.refresh_count == 1


def test_token_endpoint_down_at_refresh_then_the_same_client_recovers(org: Any, sf: SalesforceJWT) -> None:
    org.expire_all_sessions()
    org.inject_fault("token", count=50, status=503, body=HTML, headers=NOW)
    before = org.token_requests
    with pytest.raises(TokenEndpointUnavailable) as info:
        sf.query(SOQL)
    assert info.value.attempts == 3
    assert org.token_requests - before == 3
    org.clear_faults()
    before = org.token_requests
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 1


def test_permanent_error_at_refresh_then_the_same_client_recovers(org: Any, sf: SalesforceJWT) -> None:
    org.expire_all_sessions()
    org.set_user(org.credentials.username, active=False)
    before = org.token_requests
    with pytest.raises(InactiveUserError):
        sf.query(SOQL)
    assert org.token_requests - before == 1
    org.set_user(org.credentials.username, active=True)
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 2


def test_dropped_api_connection_is_not_a_refresh(org: Any, sf: SalesforceJWT) -> None:
    """A dropped API connection is the caller's to handle (requests raises); it never costs
    a login, and the next call works. (A GET is tried 3 times: every attempt is dropped.)"""
    org.inject_fault("api", count=3, drop=True)
    before = org.token_requests
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query(SOQL)
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests == before


# ---------------------------------------------------------------------------------------
# expiry in the middle of a multi-request operation
# ---------------------------------------------------------------------------------------
def _expire_after(org: Any, sf: SalesforceJWT, matches: Callable[[requests.Response], bool], times: int = 1) -> List[str]:
    """Expire every session right after the first ``times`` responses that match (a
    response hook on the client's session); returns the URLs that triggered it."""
    fired: List[str] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if len(fired) < times and response.status_code < 300 and matches(response):
            fired.append(response.request.method + " " + response.url)
            org.expire_all_sessions()

    sf.session.hooks["response"].append(hook)
    return fired


def test_query_all_of_4500_rows_expiring_halfway_returns_every_row_once(org: Any, sf: SalesforceJWT) -> None:
    org.insert("Account", [{"Name": f"Bulk row {i:05d}"} for i in range(4500 - 3)])
    fired = _expire_after(org, sf, lambda r: "/query" in r.url, times=2)  # after pages 1 and 2
    before = org.token_requests
    records = sf.query_all("SELECT Id, Name FROM Account")["records"]
    assert len(fired) == 2
    ids = [r["Id"] for r in records]
    assert len(ids) == 4500 == len(set(ids))
    assert org.token_requests - before == 2
    assert sf.refresher.refresh_count == 2


def test_bulk2_query_job_expiring_while_polling_and_between_result_pages(org: Any, sf: SalesforceJWT) -> None:
    org.insert("Account", [{"Name": f"Bulk2 row {i}"} for i in range(57)])  # 60 in all
    org.bulk.hold_polls = 2
    fired = _expire_after(org, sf, lambda r: r.request.method == "POST" and r.url.rstrip("/").endswith("/jobs/query"))
    fired_results = _expire_after(org, sf, lambda r: "/results" in r.url)
    chunks = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=25, wait=0.01))
    assert fired and fired_results
    rows = [line for chunk in chunks for line in str(chunk).strip().splitlines()[1:]]  # no headers
    assert len(rows) == 60 == len(set(rows))
    assert sf.refresher.refresh_count == 2


def test_bulk1_query_job_expiring_between_job_batch_and_results(org: Any, sf: SalesforceJWT) -> None:
    org.insert("Account", [{"Name": f"Bulk1 row {i}"} for i in range(37)])  # 40 in all
    org.bulk.hold_polls = 1
    org.bulk.bulk1_result_size = 15
    fired_job = _expire_after(org, sf, lambda r: r.request.method == "POST" and r.url.rstrip("/").endswith("/job"))
    fired_batch = _expire_after(org, sf, lambda r: r.request.method == "POST" and r.url.rstrip("/").endswith("/batch"))
    rows = sf.bulk.Account.query("SELECT Id, Name FROM Account", wait=0.01)
    assert fired_job and fired_batch
    ids = [r["Id"] for r in rows]
    assert len(ids) == 40 == len(set(ids))
    assert sf.refresher.refresh_count == 2
