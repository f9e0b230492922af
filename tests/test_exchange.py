"""resolve_login() rules, and TokenClient against the local org over HTTPS.

REQUESTS_CA_BUNDLE stays set to the system bundle (tests/conftest.py): the org's private CA
must reach requests through TokenClient's ``verify=`` alone.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Iterator

import pytest

from sfjwt_ext.errors import (
    AppAccessError,
    AssertionExpiredError,
    AudienceInvalidError,
    AuthenticationError,
    ConfigurationError,
    ConsumerNotApprovedError,
    InactiveUserError,
    InvalidAssertionError,
    InvalidClientIdError,
    LoginRateExceededError,
    TokenEndpointUnavailable,
    UnknownUserError,
)
from sfjwt_ext.auth.target import LOGIN_AUDIENCE, TEST_AUDIENCE, LoginTarget, resolve_login
from sfjwt_ext.auth.token_client import TokenClient, TokenResponse
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import generate_key_pair

# --------------------------------------------------------------------------------------
# resolve_login
# --------------------------------------------------------------------------------------
RESOLVE_TABLE = [
    # (kwargs, token_url, audience, host_kind)
    ({}, "https://login.salesforce.com/services/oauth2/token", LOGIN_AUDIENCE, "login"),
    ({"domain": "login"}, "https://login.salesforce.com/services/oauth2/token", LOGIN_AUDIENCE, "login"),
    ({"domain": "test"}, "https://test.salesforce.com/services/oauth2/token", TEST_AUDIENCE, "test"),
    ({"domain": "acme.my"}, "https://acme.my.salesforce.com/services/oauth2/token", LOGIN_AUDIENCE, "my_domain"),
    ({"domain": "acme.my.salesforce.com"}, "https://acme.my.salesforce.com/services/oauth2/token",
     LOGIN_AUDIENCE, "my_domain"),
    ({"domain": "acme--uat.sandbox.my.salesforce.com"},
     "https://acme--uat.sandbox.my.salesforce.com/services/oauth2/token", TEST_AUDIENCE, "sandbox_my_domain"),
    ({"domain": "acme--uat.my.salesforce.com"},
     "https://acme--uat.my.salesforce.com/services/oauth2/token", TEST_AUDIENCE, "sandbox_my_domain"),
    ({"domain": "login.salesforce.com"}, "https://login.salesforce.com/services/oauth2/token",
     LOGIN_AUDIENCE, "login"),
    ({"domain": "https://acme.my.salesforce.com"}, "https://acme.my.salesforce.com/services/oauth2/token",
     LOGIN_AUDIENCE, "my_domain"),
    ({"login_url": "https://test.salesforce.com/"}, "https://test.salesforce.com/services/oauth2/token",
     TEST_AUDIENCE, "test"),
    ({"login_url": "https://acme.my.site.com"}, "https://acme.my.site.com/services/oauth2/token",
     "https://acme.my.site.com", "other"),
    ({"login_url": "https://127.0.0.1:8443"}, "https://127.0.0.1:8443/services/oauth2/token",
     "https://127.0.0.1:8443", "other"),
    ({"login_url": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080/services/oauth2/token",
     "http://127.0.0.1:8080", "other"),
    ({"login_url": "http://localhost:8080"}, "http://localhost:8080/services/oauth2/token",
     "http://localhost:8080", "other"),
    ({"login_url": "http://[::1]:8080"}, "http://[::1]:8080/services/oauth2/token", "http://[::1]:8080", "other"),
    # login_url replaces domain
    ({"domain": "test", "login_url": "https://acme.my.salesforce.com"},
     "https://acme.my.salesforce.com/services/oauth2/token", LOGIN_AUDIENCE, "my_domain"),
]


@pytest.mark.parametrize("kwargs,token_url,audience,kind", RESOLVE_TABLE)
def test_resolve_login_table(kwargs, token_url, audience, kind):
    target = resolve_login(**kwargs)
    assert target == LoginTarget(token_url=token_url, audience=audience, host_kind=kind, audience_derived=True)
    assert target.login_url == token_url[: -len("/services/oauth2/token")]


def test_audience_replaces_derived_aud():
    target = resolve_login(domain="acme.my", audience="https://test.salesforce.com")
    assert target.audience == "https://test.salesforce.com"
    assert target.audience_derived is False
    assert target.token_url == "https://acme.my.salesforce.com/services/oauth2/token"


@pytest.mark.parametrize(
    "kwargs,fragments",
    [
        ({"domain": "test.salesforce.com/"}, ["trailing slash", "domain='test'"]),
        ({"domain": "acme.my.salesforce.com/"}, ["trailing slash", "domain='acme.my'"]),
        ({"domain": "acme.my.salesforce.com/services/oauth2/token"}, ["path", "domain='acme.my'"]),
        ({"login_url": "https://acme.my.salesforce.com/services/oauth2/token"},
         ["path", "login_url='https://acme.my.salesforce.com'"]),
        ({"domain": "https://test.salesforce.com/foo"}, ["path"]),
        ({"login_url": "http://acme.my.salesforce.com"}, ["http", "login_url='http://acme.my.salesforce.com'",
                                                          "https://acme.my.salesforce.com"]),
        ({"login_url": "http://10.0.0.5:8080"}, ["http", "10.0.0.5"]),
        ({"domain": "http://acme.my.salesforce.com"}, ["domain=", "https://"]),
        ({"login_url": "ftp://login.salesforce.com"}, ["ftp://login.salesforce.com", "https://"]),
        ({"login_url": "acme.my.salesforce.com"}, ["no scheme", "https://acme.my.salesforce.com"]),
        ({"domain": ""}, ["empty", "domain='login'"]),
        ({"domain": "bad host!"}, ["bad host!"]),
        ({"audience": "login.salesforce.com"}, ["audience=", "https://login.salesforce.com"]),
    ],
)
def test_resolve_login_refuses_with_the_fix(kwargs, fragments):
    with pytest.raises(ConfigurationError) as info:
        resolve_login(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# --------------------------------------------------------------------------------------
# TokenResponse
# --------------------------------------------------------------------------------------
TOKEN = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdWXYZ"


def test_token_response_parses_ids_and_masks_repr():
    response = TokenResponse.from_json({
        "access_token": TOKEN,
        "instance_url": "https://acme.my.salesforce.com/",
        "id": "https://login.salesforce.com/id/00D5g000004abcdEAA/0055g00000AbCdEAAZ",
        "scope": "api",
        "token_type": "Bearer",
    })
    assert response.org_id == "00D5g000004abcdEAA"
    assert response.user_id == "0055g00000AbCdEAAZ"
    assert response.instance_url == "https://acme.my.salesforce.com"
    assert TOKEN not in repr(response) and TOKEN not in str(response)
    assert "00D…WXYZ" in repr(response)


# --------------------------------------------------------------------------------------
# TokenClient against the local org
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator["object"]:
    from sfjwt_ext.testing import LocalOrg

    with LocalOrg() as local_org:
        local_org.credentials = local_org.new_app_with_key(tmp_path_factory.mktemp("exchange-key"),
                                                           username="ann@example.com")
        yield local_org


@pytest.fixture(scope="module")
def key(org):
    return load_private_key(private_key_file=org.credentials.private_key_file)


@pytest.fixture(autouse=True)
def _fresh_counters(request):
    if "org" in request.fixturenames:
        org = request.getfixturevalue("org")
        org.clear_faults()
        org.reset_counters()
    yield


def make_client(org, key, *, username=None, consumer_key=None, target=None, verify=None, **kwargs) -> TokenClient:
    kwargs.setdefault("backoff", 0.01)
    return TokenClient(
        username=username or org.credentials.username,
        consumer_key=consumer_key or org.credentials.consumer_key,
        key=key,
        target=target or resolve_login(login_url=org.login_url),
        verify=org.ca_file if verify is None else verify,
        **kwargs,
    )


def test_success_with_requests_ca_bundle_set(org, key):
    assert os.environ.get("REQUESTS_CA_BUNDLE")  # the org's CA must get through verify= alone
    client = make_client(org, key)
    token = client.fetch()
    assert token.access_token.startswith(org.org_id[:15] + "!")
    assert token.instance_url == org.instance_url
    assert token.org_id == org.org_id
    assert token.user_id == org.credentials.user_id
    assert token.token_type == "Bearer"
    assert client.requests_made == 1
    assert org.token_requests == 1
    header, claims = org.assertions[-1]
    assert header["alg"] == "RS256"
    assert claims["iss"] == org.credentials.consumer_key
    assert claims["sub"] == org.credentials.username
    assert claims["aud"] == org.login_url
    assert isinstance(claims["exp"], int) and claims["exp"] <= time.time() + 181


def test_success_with_salesforce_org_fixture(salesforce_org):
    creds = salesforce_org.credentials
    key = load_private_key(private_key_file=creds.private_key_file)
    client = TokenClient(username=creds.username, consumer_key=creds.consumer_key, key=key,
                         target=resolve_login(login_url=creds.login_url), verify=creds.ca_file)
    assert client.fetch().instance_url == salesforce_org.instance_url


def test_success_logs_info_without_secrets(org, key, caplog):
    caplog.set_level(logging.DEBUG, logger="sfjwt_ext")
    token = make_client(org, key).fetch()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(org.credentials.username in m and org.org_id in m and "ms" in m for m in infos)
    assert token.access_token not in caplog.text
    assert "eyJ" not in caplog.text


@pytest.mark.parametrize(
    "setup,cls",
    [
        ("unknown_user", UnknownUserError),
        ("inactive", InactiveUserError),
        ("not_approved", ConsumerNotApprovedError),
        ("no_app_access", AppAccessError),
        ("bad_consumer_key", InvalidClientIdError),
        ("wrong_key", InvalidAssertionError),
        ("wrong_audience", AudienceInvalidError),
    ],
)
def test_permanent_errors_make_exactly_one_request(org, key, setup, cls):
    username = f"{setup}@example.com"
    consumer_key = None
    target = None
    signing_key = key
    if setup == "inactive":
        org.add_user(username, active=False)
    elif setup == "not_approved":
        org.add_user(username, approved=False)
    elif setup == "no_app_access":
        org.add_user(username, app_access=False)
    elif setup == "bad_consumer_key":
        username = org.credentials.username
        consumer_key = "3MVG9notaconsumerkey"
    elif setup == "wrong_key":
        username = org.credentials.username
        signing_key = _other_key()
    elif setup == "wrong_audience":
        username = org.credentials.username
        target = resolve_login(login_url=org.login_url, audience="https://nowhere.example.com")
    client = make_client(org, signing_key, username=username, consumer_key=consumer_key, target=target)
    with pytest.raises(cls) as info:
        client.fetch()
    assert client.requests_made == 1
    assert org.token_requests == 1
    exc = info.value
    assert exc.status == 400
    assert exc.login_url == org.login_url
    assert exc.username == username
    assert username in str(exc) and org.login_url in str(exc)


_OTHER_KEY = []


def _other_key():
    if not _OTHER_KEY:
        _OTHER_KEY.append(generate_key_pair()[0])
    return _OTHER_KEY[0]


@pytest.mark.parametrize(
    "status,body,cls",
    [
        (400, {"error": "invalid_grant", "error_description": "expired authorization code"}, AssertionExpiredError),
        (400, {"error": "rate_limit_exceeded", "error_description": "number of logins exceeded"},
         LoginRateExceededError),
        (429, {"error": "rate_limit_exceeded", "error_description": "number of logins exceeded"},
         LoginRateExceededError),
        (403, {"error": "invalid_grant", "error_description": "LOGIN_RATE_EXCEEDED"}, LoginRateExceededError),
        (503, {"error": "invalid_client_id", "error_description": "client identifier invalid"}, InvalidClientIdError),
    ],
)
def test_injected_permanent_errors_are_not_retried(org, key, status, body, cls):
    org.inject_fault("token", count=3, status=status, body=body)
    client = make_client(org, key)
    with pytest.raises(cls) as info:
        client.fetch()
    assert client.requests_made == 1
    assert org.token_requests == 1
    assert info.value.status == status


def test_503_twice_then_success(org, key):
    org.inject_fault("token", count=2, status=503, body="<html>Service Unavailable</html>")
    client = make_client(org, key)
    token = client.fetch()
    assert token.org_id == org.org_id
    assert client.requests_made == 3
    assert org.token_requests == 3


def test_503_forever_raises_unavailable_after_three_attempts(org, key):
    org.inject_fault("token", count=10, status=503, body="<html>down for maintenance</html>")
    client = make_client(org, key)
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    exc = info.value
    assert exc.attempts == 3
    assert "503" in str(exc.last_cause)
    assert exc.login_url == org.login_url
    assert "3 attempts" in str(exc)
    assert client.requests_made == 3
    assert org.token_requests == 3


def test_max_attempts_is_configurable(org, key):
    org.inject_fault("token", count=10, status=500)
    client = make_client(org, key, max_attempts=1)
    with pytest.raises(TokenEndpointUnavailable):
        client.fetch()
    assert org.token_requests == 1


def test_429_with_retry_after_is_retried(org, key):
    org.inject_fault("token", count=1, status=429, body="Too Many Requests", headers={"Retry-After": "0"})
    client = make_client(org, key)
    assert client.fetch().org_id == org.org_id
    assert client.requests_made == 2


def test_retry_after_beyond_the_budget_gives_up_without_sleeping_past_it(org, key):
    org.inject_fault("token", count=1, status=429, body="slow down", headers={"Retry-After": "3600"})
    client = make_client(org, key, total_budget=5.0)
    started = time.monotonic()
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    assert time.monotonic() - started < 5.0  # never waits for the hour (not a timing assertion on speed)
    assert info.value.attempts == 1
    assert "429" in str(info.value.last_cause)
    assert org.token_requests == 1


def test_dropped_connection_is_retried(org, key):
    org.inject_fault("token", count=1, drop=True)
    client = make_client(org, key)
    assert client.fetch().org_id == org.org_id
    assert client.requests_made == 2


def test_dropped_connection_forever_keeps_the_cause(org, key):
    org.inject_fault("token", count=10, drop=True)
    client = make_client(org, key)
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    assert info.value.attempts == 3
    assert info.value.last_cause is not None
    assert org.token_requests == 3


def test_slower_than_the_timeout_is_retried(org, key):
    org.inject_fault("token", count=1, delay=1.0)
    client = make_client(org, key, timeout=(5, 0.2))
    assert client.fetch().org_id == org.org_id
    assert client.requests_made == 2


def test_html_200_is_unexpected_response(org, key):
    page = "<html><body><h1>Corporate proxy: please sign in</h1>" + "p" * 400 + "</body></html>"
    org.inject_fault("token", count=3, status=200, body=page)
    client = make_client(org, key)
    with pytest.raises(AuthenticationError) as info:
        client.fetch()
    exc = info.value
    assert exc.error == "unexpected_response"
    assert exc.status == 200
    assert "Corporate proxy" in str(exc)
    assert "p" * 300 not in str(exc)
    assert client.requests_made == 1


def test_json_without_access_token_is_unexpected_response(org, key):
    org.inject_fault("token", count=1, status=200,
                     body={"instance_url": org.instance_url, "token_type": "Bearer"})
    client = make_client(org, key)
    with pytest.raises(AuthenticationError) as info:
        client.fetch()
    assert info.value.error == "unexpected_response"
    assert "access_token" in str(info.value)
    assert not isinstance(info.value, KeyError)


def test_json_without_instance_url_is_unexpected_response(org, key):
    org.inject_fault("token", count=1, status=200, body={"access_token": TOKEN})
    with pytest.raises(AuthenticationError, match="instance_url") as info:
        make_client(org, key).fetch()
    assert TOKEN not in str(info.value)


def test_ca_not_given_is_a_clear_tls_error_without_retry(org, key):
    client = make_client(org, key, verify=True)
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    exc = info.value
    message = str(exc)
    assert "verify=" in message and "SF_CA_BUNDLE" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert exc.attempts == 1
    assert client.requests_made == 1


def test_ca_given_wins_over_requests_ca_bundle_on_a_shared_session(org, key, monkeypatch):
    # even when REQUESTS_CA_BUNDLE points at a bundle without the org's CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = make_client(org, key)
    client.fetch()
    client.fetch()
    assert client.requests_made == 2


def test_audience_fallback_login_to_test_once(key, tmp_path):
    from sfjwt_ext.testing import LocalOrg

    with LocalOrg(audiences=[TEST_AUDIENCE]) as sandbox:
        creds = sandbox.new_app_with_key(tmp_path, username="sandbox@example.com")
        target = LoginTarget(token_url=sandbox.token_url, audience=LOGIN_AUDIENCE, host_kind="login")
        client = TokenClient(username=creds.username, consumer_key=creds.consumer_key,
                             key=load_private_key(private_key_file=creds.private_key_file),
                             target=target, verify=sandbox.ca_file, backoff=0.01)
        token = client.fetch()
        assert token.org_id == sandbox.org_id
        assert [claims["aud"] for _, claims in sandbox.assertions] == [LOGIN_AUDIENCE, TEST_AUDIENCE]
        assert client.requests_made == 2
        # the working audience is remembered
        client.fetch()
        assert client.requests_made == 3
        assert sandbox.assertions[-1][1]["aud"] == TEST_AUDIENCE


def test_audience_fallback_logs_a_warning(key, tmp_path, caplog):
    from sfjwt_ext.testing import LocalOrg

    caplog.set_level(logging.WARNING, logger="sfjwt_ext")
    with LocalOrg(audiences=[LOGIN_AUDIENCE]) as prod:
        creds = prod.new_app_with_key(tmp_path, username="prod@example.com")
        target = LoginTarget(token_url=prod.token_url, audience=TEST_AUDIENCE, host_kind="sandbox_my_domain")
        client = TokenClient(username=creds.username, consumer_key=creds.consumer_key,
                             key=load_private_key(private_key_file=creds.private_key_file),
                             target=target, verify=prod.ca_file)
        client.fetch()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("audience is invalid" in m and LOGIN_AUDIENCE in m for m in warnings)


def test_audience_fallback_never_more_than_one_extra_try(key, tmp_path):
    from sfjwt_ext.testing import LocalOrg

    with LocalOrg(audiences=["https://community.example.com"]) as other:
        creds = other.new_app_with_key(tmp_path, username="x@example.com")
        target = LoginTarget(token_url=other.token_url, audience=LOGIN_AUDIENCE, host_kind="my_domain")
        client = TokenClient(username=creds.username, consumer_key=creds.consumer_key,
                             key=load_private_key(private_key_file=creds.private_key_file),
                             target=target, verify=other.ca_file)
        with pytest.raises(AudienceInvalidError):
            client.fetch()
        assert client.requests_made == 2
        assert other.token_requests == 2


def test_no_audience_fallback_when_audience_was_chosen_or_host_is_other(org, key):
    client = make_client(org, key, target=resolve_login(login_url=org.login_url, audience="https://x.example.com"))
    with pytest.raises(AudienceInvalidError):
        client.fetch()
    assert client.requests_made == 1


def test_thread_safe_concurrent_fetches(org, key):
    client = make_client(org, key)
    results: list = []
    failures: list = []

    def work() -> None:
        try:
            results.append(client.fetch())
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures
    assert len(results) == 8
    assert client.requests_made == 8
    assert org.token_requests == 8


def test_token_client_validates_its_arguments(org, key):
    target = resolve_login(login_url=org.login_url)
    with pytest.raises(ConfigurationError, match="username"):
        TokenClient(username="", consumer_key="k", key=key, target=target)
    with pytest.raises(ConfigurationError, match="max_attempts"):
        TokenClient(username="u", consumer_key="k", key=key, target=target, max_attempts=0)
    with pytest.raises(Exception, match="RSA private key"):
        TokenClient(username="u", consumer_key="k", key=object(), target=target)  # type: ignore[arg-type]


def test_token_client_repr_has_no_secrets(org, key):
    client = make_client(org, key)
    token = client.fetch()
    assert token.access_token not in repr(client)
    assert "PRIVATE" not in repr(client)
