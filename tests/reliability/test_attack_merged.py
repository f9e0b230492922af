"""Issue 9 attacked again after the five pieces were merged.

Each test is one attack of the adversarial user who filed issue 9, aimed at the seams
between modules that were fixed separately (the shared login cache and the session's
retries, fork + token client + login cache, refused sessions across two clients of one
login, redaction in the new error paths, secrets in the frames of the new code paths,
timeouts checked in one place and used in another). Request counts, never timings.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import requests
from _support import exception_chain, exit_code, fork
from simple_salesforce.exceptions import SalesforceExpiredSession

from sfjwt_ext import SessionRefusedError, connect_jwt
from sfjwt_ext.sharing.registry import default_cache
from sfjwt_ext.client import SalesforceJWT
from sfjwt_ext.errors import AuthenticationError, ConfigurationError, TokenEndpointUnavailable
from sfjwt_ext.auth.target import resolve_login
from sfjwt_ext.config import check_timeout

SOQL = "SELECT Id, Name FROM Account"
NOW = {"Retry-After": "0"}
PKG = os.path.dirname(os.path.abspath(__import__("sfjwt_ext").__file__))
TOKEN_RE = re.compile(r"00D[A-Za-z0-9]{12,15}(?:!|%21)[A-Za-z0-9._\-]{8,}")
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]*")
CHILD_DEADLINE = 30.0


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.insert("Account", [{"Name": f"Attack {i}"} for i in range(3)])
    return salesforce_org


def _kwargs(org: Any, **more: Any) -> dict:
    arguments = dict(org.credentials.connect_kwargs())
    arguments.update(more)
    return arguments


def _run_threads(n: int, target: Callable[[int], None], seconds: float = 60.0) -> List[BaseException]:
    errors: List[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock?"
    return errors


# ---------------------------------------------------------------------------------------
# item 4 across the merge: refused sessions and the shared login cache / per-API messages
# ---------------------------------------------------------------------------------------
def test_two_clients_of_one_login_on_a_refused_session_make_at_most_2_token_requests(org: Any) -> None:
    a = connect_jwt(**_kwargs(org))
    b = connect_jwt(**_kwargs(org, retries=0))  # same login, another shared session
    assert a.refresher is b.refresher and a.session is not b.session
    a.query(SOQL)
    org.reject_sessions = True
    before = org.token_requests
    for i in range(50):
        with pytest.raises(SalesforceExpiredSession):
            (a if i % 2 else b).query(SOQL)
    assert org.token_requests - before <= 2
    org.reject_sessions = False
    assert b.query(SOQL)["totalSize"] == 3
    org.expire_all_sessions()
    assert a.query(SOQL)["totalSize"] == 3  # a real expiry later still refreshes


def test_a_refused_session_used_by_rest_and_metadata_in_turn_is_not_a_login_storm(org: Any) -> None:
    """API access off for the profile refuses every API, each with its own wording (REST
    'This session is not valid...', SOAP 'INVALID_SESSION_ID: This session...'). A job
    that alternates REST and Metadata calls must not log in again on every change of
    wording."""
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    mdapi = sf.mdapi
    org.reject_sessions = True
    before = org.token_requests
    for i in range(20):
        with pytest.raises(Exception):
            if i % 2:
                sf.query(SOQL)
            else:
                mdapi.describe_metadata()
    assert org.token_requests - before <= 2


def test_after_refusals_by_rest_and_metadata_a_real_expiry_met_by_metadata_refreshes(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    mdapi = sf.mdapi
    org.reject_sessions = True
    for i in range(6):
        with pytest.raises(Exception):
            sf.query(SOQL) if i % 2 else mdapi.describe_metadata()
    org.reject_sessions = False
    org.expire_all_sessions()
    before = org.token_requests
    assert mdapi.describe_metadata() is not None
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 1


def test_a_refused_session_used_by_rest_and_bulk1_in_turn_is_not_a_login_storm(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    org.reject_sessions = True
    before = org.token_requests
    for i in range(20):
        with pytest.raises(Exception):
            if i % 2:
                sf.query(SOQL)
            else:
                sf.bulk.Account.query(SOQL)
    assert org.token_requests - before <= 2


def test_the_refused_session_error_masks_a_token_salesforce_quotes(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    echoed = "00D" + "A" * 15 + "!AQ" + "x" * 90
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    body = [{"errorCode": "INVALID_SESSION_ID", "message": f"Session {echoed} refused, assertion {jwt}"}]
    org.inject_fault("api", count=2, status=401, body=body)
    with pytest.raises(SessionRefusedError) as info:
        sf.query(SOQL)
    for shown in (str(info.value), repr(info.value)):
        assert echoed not in shown and jwt not in shown
        assert not TOKEN_RE.search(shown) and not JWT_RE.search(shown)
        assert sf.session_id not in shown
    assert "refused" in str(info.value)


# ---------------------------------------------------------------------------------------
# item 14 in the new code paths: the session's send, retries and refresh
# ---------------------------------------------------------------------------------------
def _our_locals(exc: BaseException) -> str:
    """The repr of every local of every frame of sfjwt_ext in ``exc``'s traceback and chain
    (what Sentry / capture_locals shows), and the formatted capture_locals text of those."""
    parts: List[str] = []
    for current in exception_chain(exc):
        summary = traceback.TracebackException(type(current), current, current.__traceback__, capture_locals=True)
        for frame in summary.stack:
            if frame.filename.startswith(PKG) and frame.locals:
                parts.extend(f"{frame.name}.{k}={v}" for k, v in frame.locals.items())
    return "\n".join(parts)


def _assert_no_token(text: str, *tokens: str) -> None:
    for token in tokens:
        assert token not in text, [line for line in text.splitlines() if token in line][:3]


def test_a_refresh_that_fails_keeps_no_access_token_in_our_frames(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    old = sf.session_id
    sf.refresher.token_client.backoff = 0.0
    org.expire_all_sessions()
    org.inject_fault("token", count=5, status=503, body="down", headers=NOW)
    with pytest.raises(TokenEndpointUnavailable) as info:
        sf.query(SOQL)
    text = _our_locals(info.value)
    _assert_no_token(text, old)
    assert not JWT_RE.search(text)


def test_waiters_of_a_failed_first_login_with_pem_text_keep_no_secret_in_our_frames(org: Any) -> None:
    pem = Path(org.credentials.private_key_file).read_text()
    kwargs = _kwargs(org, private_key=pem)
    del kwargs["private_key_file"]
    # Each 503 held 0.5 s: the first caller's three attempts outlast the start of all 8
    # threads on a loaded machine (a thread arriving after a failed login makes its own).
    org.inject_fault("token", count=100, status=503, body="down", headers=NOW, delay=0.5)
    errors = _run_threads(8, lambda i: connect_jwt(**kwargs))
    assert len(errors) == 8 and org.token_requests == 3
    for error in errors:
        text = _our_locals(error)
        assert not JWT_RE.search(text)
        assert "PRIVATE KEY" not in text
        for line in pem.splitlines()[1:-1]:
            assert line not in text


def test_two_clients_of_one_login_keep_their_own_retries(org: Any) -> None:
    retrying = connect_jwt(**_kwargs(org))
    plain = connect_jwt(**_kwargs(org, retries=0))
    assert plain.refresher is retrying.refresher
    org.inject_fault("api", count=1, status=503, body="busy")
    with pytest.raises(Exception):
        plain.query(SOQL)
    org.inject_fault("api", count=1, status=503, body="busy")
    assert retrying.query(SOQL)["totalSize"] == 3


def test_a_refused_session_keeps_no_access_token_in_our_frames(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    org.reject_sessions = True
    with pytest.raises(SessionRefusedError) as info:
        sf.query(SOQL)
    _assert_no_token(_our_locals(info.value), sf.session_id)


def test_an_api_call_that_fails_after_retries_keeps_no_access_token_in_our_frames(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    org.inject_fault("api", count=5, drop=True)
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        sf.session.get(sf.base_url + "limits/")
    _assert_no_token(_our_locals(info.value), sf.session_id)


# ---------------------------------------------------------------------------------------
# items 1, 9, 16: what connect_jwt checked is what the API session and token client use
# ---------------------------------------------------------------------------------------
def test_timeout_reaches_the_api_session_and_the_token_client_as_checked(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org, timeout=[3, 4]))
    assert sf.session.timeout == (3.0, 4.0)
    assert sf.refresher.token_client.timeout == (3.0, 4.0)
    # a POST slower than the read timeout times out (it is never resent)
    org.reset_counters()
    org.inject_fault("api", count=1, delay=6.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.Account.create({"Name": "slow"})
    deadline = time.monotonic() + 15  # the org records the POST once its delay is over
    while not [r for r in org.requests if r.host == "instance"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.method for r in org.requests if r.host == "instance"] == ["POST"]  # never resent


def test_same_timeout_written_two_ways_shares_one_login(org: Any) -> None:
    a = connect_jwt(**_kwargs(org, timeout=5))
    b = connect_jwt(**_kwargs(org, timeout=5.0))
    c = connect_jwt(**_kwargs(org, timeout=[5, 5]))
    d = connect_jwt(**_kwargs(org, timeout=(5.0, 5.0)))
    assert a.refresher is b.refresher
    assert c.refresher is d.refresher
    assert org.token_requests <= 2


def test_insecure_and_verified_clients_of_one_user_keep_their_own_refreshes(org: Any) -> None:
    insecure = connect_jwt(**_kwargs(org, verify=False))
    checked = connect_jwt(**_kwargs(org))
    assert insecure.refresher is not checked.refresher
    assert checked.refresher.token_client.verify == org.credentials.ca_file
    assert insecure.refresher.token_client.verify is False
    org.expire_all_sessions()
    assert checked.query(SOQL)["totalSize"] == 3
    assert checked.refresher.token_client.verify == org.credentials.ca_file
    assert checked.session.verify == org.credentials.ca_file


def test_a_huge_integer_timeout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="timeout="):
        check_timeout(10 ** 400)


def test_a_huge_integer_timeout_pair_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="timeout="):
        check_timeout((5, 10 ** 400))


# ---------------------------------------------------------------------------------------
# item 6 + cache + session retries: 32 first logins against a token endpoint that is down
# ---------------------------------------------------------------------------------------
def test_32_threads_first_login_while_503_make_one_callers_retries(org: Any) -> None:
    # Each failing answer is held 0.5 s, so the first caller's three attempts outlast the
    # start of all 32 threads even on a loaded machine (a thread that arrives after a failed
    # login is over makes its own, by design).
    org.inject_fault("token", count=200, status=503, body="down", headers=NOW, delay=0.5)
    kwargs = _kwargs(org)
    errors = _run_threads(32, lambda i: connect_jwt(**kwargs))
    assert len(errors) == 32 and all(isinstance(e, TokenEndpointUnavailable) for e in errors)
    assert org.token_requests == 3
    org.clear_faults()
    assert connect_jwt(**kwargs).query(SOQL)["totalSize"] == 3


def test_64_threads_across_expiries_make_one_token_request_per_expiry(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    other = connect_jwt(**_kwargs(org))  # a second client of the same login
    expiries = 5
    stop = threading.Event()

    def work(i: int) -> None:
        client = sf if i % 2 else other
        while not stop.is_set():
            assert client.query(SOQL)["totalSize"] == 3

    def calls_go_on(n: int) -> None:
        before = org.api_requests
        deadline = time.monotonic() + 30
        while org.api_requests < before + n and time.monotonic() < deadline:
            time.sleep(0.005)

    def expire() -> None:
        # about one expiry a second here: every thread makes several calls between two
        # (a resend that meets the next expiry is a second expiry of one request: an error
        # by design, MAX_REFRESHES_PER_REQUEST)
        for _ in range(expiries):
            calls_go_on(64 * 16)
            org.expire_all_sessions()
        calls_go_on(64 * 4)  # the last expiry is noticed
        stop.set()

    before_tokens = org.token_requests
    expirer = threading.Thread(target=expire)
    expirer.start()
    errors = _run_threads(64, work, seconds=90)
    expirer.join(30)
    assert not errors, [f"{type(e).__name__}: {e}"[:300] for e in errors[:3]]
    assert org.token_requests - before_tokens == expiries, (org.token_requests - before_tokens, sf.refresh_count)


# ---------------------------------------------------------------------------------------
# item 5 + shared sessions: handlers of two clients of one login across 100 refreshes
# ---------------------------------------------------------------------------------------
def test_handlers_of_two_clients_of_one_login_survive_100_refreshes_done_by_either(org: Any) -> None:
    a = connect_jwt(**_kwargs(org))
    b = connect_jwt(**_kwargs(org))
    bulk_a, bulk2_b, mdapi_a = a.bulk, b.bulk2, a.mdapi
    for i in range(100):
        org.expire_all_sessions()
        (a if i % 2 else b).query(SOQL)
    assert a.refresh_count == 100
    assert len(bulk_a.Account.query(SOQL)) == 3
    assert mdapi_a.describe_metadata() is not None
    assert b.query(SOQL)["totalSize"] == 3
    rows = "".join(bulk2_b.Account.query(SOQL))
    assert rows.count("Attack ") == 3
    assert org.token_requests == 101


# ---------------------------------------------------------------------------------------
# item 2: fork + login cache + token client, while a parent thread is in a first login
# and another in a refresh
# ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_during_a_refresh_of_a_cached_login_then_the_child_connects_and_refreshes(org: Any) -> None:
    kwargs = _kwargs(org)
    sf = connect_jwt(**kwargs)
    sf.query(SOQL)
    org.expire_all_sessions()
    org.inject_fault("token", count=1, delay=4.0)
    results: List[int] = []
    parent = threading.Thread(target=lambda: results.append(sf.query(SOQL)["totalSize"]))
    parent.start()
    deadline = time.monotonic() + 10
    while org.token_requests < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert org.token_requests >= 2

    def child() -> None:
        again = connect_jwt(**kwargs)  # the cache (and its lock) taken over from the parent
        assert again.refresher is sf.refresher
        assert again.query(SOQL)["totalSize"] == 3
        org_expired = again.refresh_count
        assert org_expired >= 1
        for _ in range(3):
            assert sf.query(SOQL)["totalSize"] == 3

    assert exit_code(fork(child), CHILD_DEADLINE) == 0
    parent.join(30)
    assert results == [3]
    assert sf.query(SOQL)["totalSize"] == 3


# ---------------------------------------------------------------------------------------
# item 12 and 16 together: not every error with the words is an expiry; not every error
# is retried
# ---------------------------------------------------------------------------------------
def test_a_rest_500_with_a_soap_fault_text_is_not_an_expiry(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    before = org.token_requests
    body = "<faultcode>sf:INVALID_SESSION_ID</faultcode> exceptionCode InvalidSessionId"
    org.inject_fault("api", count=1, status=500, body=body)
    with pytest.raises(Exception):
        sf.Account.create({"Name": "x"})
    org.inject_fault("api", count=1, status=400, body="<exceptionCode>InvalidSessionId</exceptionCode>")
    with pytest.raises(Exception):
        sf.Account.create({"Name": "y"})
    assert org.token_requests == before


def test_a_get_answered_503_then_401_is_retried_then_refreshed_once(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    org.expire_all_sessions()
    org.inject_fault("api", count=1, status=503, body="busy")
    before = org.token_requests
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 1


def test_request_limit_exceeded_in_a_503_is_not_retried_nor_a_refresh(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    org.reset_counters()
    body = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentRequests"}]
    org.inject_fault("api", count=3, status=503, body=body)
    before = org.token_requests
    with pytest.raises(Exception):
        sf.query(SOQL)
    assert len([r for r in org.requests if r.host == "instance"]) == 1
    assert org.token_requests == before


# ---------------------------------------------------------------------------------------
# item 13: odd spellings of hosts that are not login hosts
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argument,value,expected", [
    ("domain", "ACME.Lightning.Force.com", "acme.my"),
    ("login_url", "https://ACME.my.salesforce-setup.com", "acme.my"),
    ("login_url", "https://acme.lightning.force.com:443", "acme.my"),
    ("domain", "acme--uat--c.sandbox.vf.force.com", "acme--uat.sandbox.my"),
    ("domain", "acme.lightning.force.com.", "acme.my"),
    ("login_url", "https://na123.salesforce.com.", "acme.my"),
])
def test_odd_spellings_of_non_login_hosts_are_refused(argument: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_login(**{argument: value})
    assert "login host" in str(info.value)
    if "na123" not in value:
        assert repr(expected) in str(info.value)


def test_a_punycode_my_domain_with_a_trailing_dot_is_not_a_sandbox() -> None:
    target = resolve_login(domain="xn--bcher-kva.my.salesforce.com")
    assert target.host_kind == "my_domain"


# ---------------------------------------------------------------------------------------
# items 8, 10 through connect_jwt with the cache on
# ---------------------------------------------------------------------------------------
def test_a_fifo_as_key_file_with_the_cache_is_a_clear_error(org: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    kwargs = _kwargs(org, private_key_file=str(fifo))
    errors = _run_threads(4, lambda i: connect_jwt(**kwargs), seconds=20)
    assert len(errors) == 4
    assert all("FIFO" in str(e) or "fifo" in str(e).lower() for e in errors), errors[0]


def test_verify_an_empty_folder_is_a_configuration_error(org: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty-ca"
    empty.mkdir()
    with pytest.raises(ConfigurationError, match="verify="):
        connect_jwt(**_kwargs(org, verify=str(empty)))


# ---------------------------------------------------------------------------------------
# item 11 at refresh time; item 3 at refresh time
# ---------------------------------------------------------------------------------------
def test_a_refresh_answered_with_a_token_but_an_http_instance_is_refused_and_masked(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    token = "00D" + "B" * 15 + "!AQ" + "y" * 90
    org.expire_all_sessions()
    org.inject_fault("token", count=1, status=200,
                     body={"access_token": token, "instance_url": "http://evil.example.com"})
    with pytest.raises(AuthenticationError) as info:
        sf.query(SOQL)
    assert token not in str(info.value) and token not in repr(info.value)
    assert "instance_url" in str(info.value)
    assert sf.query(SOQL)["totalSize"] == 3  # the next call refreshes for real


def test_a_300kb_jwt_body_at_refresh_is_masked_in_the_error(org: Any) -> None:
    sf = connect_jwt(**_kwargs(org, timeout=1))
    sf.query(SOQL)
    sf.refresher.token_client.backoff = 0.0
    body = ("eyJ" + "a" * 50 + ".eyJ" + "b" * 50 + "." + "c" * 40 + " ") * 2500
    org.expire_all_sessions()
    org.inject_fault("token", count=3, status=503, body=body, headers=NOW)
    with pytest.raises(TokenEndpointUnavailable) as info:
        sf.query(SOQL)
    assert not JWT_RE.search(str(info.value))
    assert org.token_requests == 4


# ---------------------------------------------------------------------------------------
# DEBUG logs of a run with refreshes, faults and the metadata API
# ---------------------------------------------------------------------------------------
def test_debug_logs_of_refreshes_faults_and_metadata_hold_no_secret(org: Any, caplog: pytest.LogCaptureFixture) -> None:
    pem = Path(org.credentials.private_key_file).read_text()
    with caplog.at_level(logging.DEBUG):
        sf = connect_jwt(**_kwargs(org))
        sf.refresher.token_client.backoff = 0.0
        tokens = {sf.session_id}
        for i in range(5):
            org.expire_all_sessions()
            if i == 2:
                org.inject_fault("token", count=1, status=503, body="x", headers=NOW)
            sf.query(SOQL)
            sf.mdapi.describe_metadata()
            sf.bulk.Account.query(SOQL)
            tokens.add(sf.session_id)
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert len(caplog.records) > 20
    assert not JWT_RE.search(text)
    assert "PRIVATE KEY" not in text
    for line in pem.splitlines()[1:-1]:
        assert line not in text
    for token in tokens:
        assert token not in text


# ---------------------------------------------------------------------------------------
# the other new error path: a streamed body that cannot be resent after a refresh
# ---------------------------------------------------------------------------------------
def test_a_streamed_post_after_an_expiry_is_not_resent_and_its_error_shows_no_token(org: Any) -> None:
    from sfjwt_ext.errors import RequestNotReplayable

    sf = connect_jwt(**_kwargs(org))
    sf.query(SOQL)
    old = sf.session_id
    echoed = "00D" + "C" * 15 + "!AQ" + "z" * 90
    org.inject_fault("api", count=1, status=401,
                     body=[{"errorCode": "INVALID_SESSION_ID", "message": f"Session expired: {echoed}"}])
    before = org.token_requests

    def body() -> Iterator[bytes]:
        yield b'{"Name": "streamed"}'

    with pytest.raises(RequestNotReplayable) as info:
        sf.session.post(sf.base_url + "sobjects/Account/", data=body(),
                        headers={"Content-Type": "application/json"})
    assert org.token_requests - before == 1  # refreshed once, not resent
    for shown in (str(info.value), repr(info.value)):
        assert echoed not in shown and old not in shown
    _assert_no_token(_our_locals(info.value), old, sf.session_id)
    assert sf.query(SOQL)["totalSize"] == 3


def test_200_threads_first_login_after_a_dropped_connection_make_two_token_requests(org: Any) -> None:
    org.inject_fault("token", count=1, drop=True)
    kwargs = _kwargs(org)
    barrier = threading.Barrier(200)

    def connect(i: int) -> None:
        barrier.wait(30)
        connect_jwt(**kwargs)

    assert not _run_threads(200, connect, seconds=90)
    assert org.token_requests == 2
