"""The token exchange under attack (issue 9): huge error bodies (item 3), odd token answers
(item 11), hosts that are not login hosts (item 13), fork safety of the token client's pool
(item 2), closing idle token connections (item 7), and the retry policy's parts.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import select
import time
from typing import Any, Dict, Iterator

import pytest

from sfjwt_ext import connect_jwt
from sfjwt_ext.errors import AuthenticationError, ConfigurationError, TokenEndpointUnavailable
from sfjwt_ext.auth.target import LOGIN_AUDIENCE, resolve_login
from sfjwt_ext._internal.backoff import MAX_BACKOFF, backoff_delays
from sfjwt_ext.auth.token_client import TokenClient, _can_retry
from sfjwt_ext.auth.keys import load_private_key

EYJ_BODY = ("eyJhbGciOiJSUzI1NiJ9" * 15_000)[:300_000]  # 300 KB of JWT-looking text, no dots
NOW = {"Retry-After": "0"}


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sfjwt_ext.testing import LocalOrg

    with LocalOrg() as local:
        local.credentials = local.new_app_with_key(tmp_path_factory.mktemp("attack"), username="eve@example.com")
        yield local


@pytest.fixture(scope="module")
def key(org: Any) -> Any:
    return load_private_key(private_key_file=org.credentials.private_key_file)


@pytest.fixture(autouse=True)
def _fresh(org: Any) -> Iterator[None]:
    org.clear_faults()
    org.reset_counters()
    yield


def _client(org: Any, key: Any, **kwargs: Any) -> TokenClient:
    kwargs.setdefault("backoff", 0.0)
    return TokenClient(username=org.credentials.username, consumer_key=org.credentials.consumer_key, key=key,
                       target=resolve_login(login_url=org.login_url), verify=org.ca_file, **kwargs)


# -- item 3: the budget holds whatever the body -------------------------------------------
def test_connect_jwt_with_a_300_kb_eyj_503_body_raises_unavailable(org: Any) -> None:
    org.inject_fault("token", count=3, status=503, body=EYJ_BODY, headers=NOW)
    with pytest.raises(TokenEndpointUnavailable) as info:
        connect_jwt(**org.credentials.connect_kwargs(), cache=False, timeout=1)
    assert info.value.attempts == 3 and org.token_requests == 3
    assert len(str(info.value)) < 1000 and "eyJhbGciOiJSUzI1NiJ9eyJ" not in str(info.value)


def test_a_huge_body_does_not_eat_the_budget(org: Any, key: Any) -> None:
    """Before the fix one 300 KB body took ~10 s to redact, so a 2 s budget allowed one
    attempt; now every attempt is made (a count, not a timing)."""
    org.inject_fault("token", count=3, status=503, body=EYJ_BODY, headers=NOW)
    client = _client(org, key, total_budget=2.0)
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    assert info.value.attempts == 3 and org.token_requests == 3


def test_a_huge_200_body_is_read_only_up_to_the_cap(org: Any, key: Any) -> None:
    org.inject_fault("token", count=1, status=200, body="<html>" + "x " * 2_000_000, content_type="text/html")
    with pytest.raises(AuthenticationError) as info:
        _client(org, key).fetch()
    assert info.value.error == "unexpected_response" and len(str(info.value)) < 2000


# -- item 11: token answers are type-checked -----------------------------------------------
TOKEN = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdWXYZ"


@pytest.mark.parametrize(
    "changes,fragment",
    [
        ({"access_token": 12345}, "access_token is a number"),
        ({"access_token": [TOKEN]}, "access_token is a list"),
        ({"access_token": {"value": TOKEN}}, "access_token is an object"),
        ({"access_token": True}, "access_token is true/false"),
        ({"access_token": "   "}, "access_token is a blank string"),
        ({"instance_url": 5}, "instance_url is a number"),
        ({"instance_url": [TOKEN]}, "instance_url is a list"),
        ({"instance_url": "http://127.0.0.1:1"}, "not an https URL"),
        ({"instance_url": "ftp://acme.my.salesforce.com"}, "not an https URL"),
        ({"instance_url": "https://"}, "not an https URL"),
        ({"instance_url": f"https://acme.my.salesforce.com/?sid={TOKEN}"}, "not an https URL"),
        ({"instance_url": f"https://{TOKEN}@acme.my.salesforce.com"}, "not an https URL"),
        ({"instance_url": "javascript:alert(1)"}, "not an https URL"),
    ],
)
def test_odd_token_answers_are_unexpected_response(org: Any, key: Any, changes: Dict[str, Any],
                                                   fragment: str) -> None:
    body = {"access_token": TOKEN, "instance_url": org.instance_url, "token_type": "Bearer", **changes}
    org.inject_fault("token", count=1, status=200, body=json.dumps(body), content_type="application/json")
    client = _client(org, key)
    with pytest.raises(AuthenticationError) as info:
        client.fetch()
    exc = info.value
    assert exc.error == "unexpected_response" and fragment in str(exc)
    assert TOKEN not in str(exc) + repr(exc) + str(exc.description)
    assert client.requests_made == 1


def test_loopback_https_instance_with_a_port_is_a_token(org: Any, key: Any) -> None:
    token = _client(org, key).fetch()
    assert token.instance_url == org.instance_url and token.instance_url.startswith("https://127.0.0.1:")


def test_odd_optional_fields_are_dropped_not_quoted(org: Any, key: Any) -> None:
    body = {"access_token": TOKEN, "instance_url": "https://acme.my.salesforce.com", "id": {"t": TOKEN},
            "scope": ["api"], "token_type": 1}
    org.inject_fault("token", count=1, status=200, body=json.dumps(body), content_type="application/json")
    token = _client(org, key).fetch()
    assert (token.id, token.scope, token.token_type) == ("", "", "Bearer")
    assert TOKEN not in repr(token)


# -- item 13: hosts that are not login hosts ----------------------------------------------
@pytest.mark.parametrize(
    "kwargs,use",
    [
        ({"domain": "acme.lightning.force.com"}, "domain='acme.my'"),
        ({"domain": "acme--uat.sandbox.lightning.force.com"}, "domain='acme--uat.sandbox.my'"),
        ({"domain": "acme.my.salesforce-setup.com"}, "domain='acme.my'"),
        ({"domain": "acme--uat.sandbox.my.salesforce-setup.com"}, "domain='acme--uat.sandbox.my'"),
        ({"domain": "acme--c.vf.force.com"}, "domain='acme.my'"),
        ({"domain": "acme--uat--c.sandbox.vf.force.com"}, "domain='acme--uat.sandbox.my'"),
        ({"domain": "acme--c.na123.visual.force.com"}, "domain='acme.my'"),
        ({"domain": "c.na123.visual.force.com"}, "domain='login'"),
        ({"domain": "na123.salesforce.com"}, "domain='acme.my'"),
        ({"domain": "cs42.salesforce.com"}, "domain='test'"),
        ({"domain": "https://acme.lightning.force.com"}, "domain='acme.my'"),
        ({"login_url": "https://acme.lightning.force.com"}, "login_url='https://acme.my.salesforce.com'"),
        ({"login_url": "https://eu12.salesforce.com"}, "domain='login'"),
    ],
)
def test_non_login_hosts_are_refused_with_the_value_to_use(kwargs: Dict[str, str], use: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_login(**kwargs)
    message = str(info.value)
    assert use in message
    assert "SF_DOMAIN" in message and "login_url=" in message
    assert f"{next(iter(kwargs))}=" in message


@pytest.mark.parametrize("host", ["login.salesforce.com", "test.salesforce.com", "acme.my.salesforce.com",
                                  "acme.my.site.com", "acme.force.com"])
def test_login_hosts_and_sites_still_resolve(host: str) -> None:
    assert resolve_login(domain=host).token_url == f"https://{host}/services/oauth2/token"


def test_a_punycode_label_is_not_a_sandbox() -> None:
    target = resolve_login(domain="xn--bcher-kva.my")
    assert (target.host_kind, target.audience) == ("my_domain", LOGIN_AUDIENCE)
    assert resolve_login(domain="xn--bcher-kva--uat.my").host_kind == "sandbox_my_domain"


# -- item 2 (token client side): a forked child never uses the parent's pool ---------------
def _wait_child(pid: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        select.select([], [], [], 0.05)  # a short poll, not a sleep-to-wait-for-something
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child did not finish within 30 s (blocked on an inherited lock or socket?)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_forked_child_makes_its_own_token_connection(org: Any, key: Any) -> None:
    client = _client(org, key, max_attempts=1)  # no retry may hide a broken connection
    client.fetch()  # the parent now has a pooled TLS connection to the token endpoint
    parent_session = client.session
    pid = os.fork()
    if pid == 0:  # the child: only os._exit leaves it
        code = 1
        try:
            code = 3 if client.session is parent_session else 0
            client.fetch()
            client.fetch()
        except BaseException:  # noqa: BLE001 - reported by the exit code
            code = code or 2
        finally:
            os._exit(code)
    assert _wait_child(pid, time.monotonic() + 30) == 0
    client.fetch()  # the parent's own connection is intact (no shared TLS stream)
    assert client.session is parent_session
    assert org.token_requests == 4


# -- item 7 (token client side): close() closes idle connections; the client still works ---
def _established_to(port: int) -> int:
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:  # ESTABLISHED
                count += 1
    return count


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="Linux /proc only")
def test_close_closes_idle_token_connections_and_the_client_still_works(tmp_path: Path) -> None:
    # An org of its own: the module's org has idle connections of earlier tests' clients,
    # which the garbage collector may close while this test counts.
    from sfjwt_ext.testing import LocalOrg

    with LocalOrg() as own:
        own.credentials = own.new_app_with_key(tmp_path, username="eve@example.com")
        _count_token_connections_across_close(own, load_private_key(private_key_file=own.credentials.private_key_file))


def _count_token_connections_across_close(org: Any, key: Any) -> None:
    port = int(org.login_url.rsplit(":", 1)[1])
    before = _established_to(port)
    assert before == 0
    client = _client(org, key)
    client.fetch()
    assert _established_to(port) == before + 1  # kept open for the next refresh
    client.close()
    assert _established_to(port) == before
    client.fetch()  # reconnects
    assert client.requests_made == 2
    client.close()


# -- the retry policy's parts ---------------------------------------------------------------
def test_backoff_delays_grow_and_are_capped() -> None:
    delays = backoff_delays(1.0)
    firsts = [next(delays) for _ in range(40)]
    assert all(0.0 <= d <= MAX_BACKOFF for d in firsts)
    assert firsts[0] <= 1.0 and firsts[1] <= 2.0


def test_can_retry_table() -> None:
    import requests

    def answer(status: int) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        return response

    assert [s for s in (200, 400, 401, 403, 404, 408, 425, 429, 500, 502, 503, 504) if _can_retry(answer(s))] == [
        408, 425, 429, 500, 502, 503, 504]
    assert _can_retry(requests.exceptions.ConnectionError("reset"))
    assert _can_retry(requests.exceptions.ReadTimeout("slow"))
    assert _can_retry(requests.exceptions.SSLError("EOF occurred in violation of protocol"))
    assert not _can_retry(requests.exceptions.SSLError("certificate verify failed: self-signed"))
    assert not _can_retry(requests.exceptions.InvalidURL("bad"))
    assert not _can_retry(ValueError("ours"))
