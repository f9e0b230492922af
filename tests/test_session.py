"""RefreshingSession and Refresher: single-flight refresh, resend rules, redirects, verify.

Against the local org over TLS (``salesforce_org`` fixture); REQUESTS_CA_BUNDLE stays set
to the system bundle, so every passing call also shows that the org's CA is honoured.
"""
from __future__ import annotations

import http.server
import io
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession

from sfjwt_ext.client import SalesforceJWT, connect_jwt
from sfjwt_ext.auth.credentials import Refresher
from sfjwt_ext.auth.signals import expiry_signal
from sfjwt_ext.auth.transport import RefreshingSession, body_is_replayable
from sfjwt_ext.errors import RequestNotReplayable

SOQL = "SELECT Id, Name FROM Account"


@pytest.fixture
def sf(org: Any) -> SalesforceJWT:
    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


def _instance_calls(org: Any, since: int = 0) -> List[Any]:
    return [r for r in org.requests[since:] if r.host == "instance"]


def _echo_route(org: Any) -> List[Dict[str, str]]:
    """POST/GET /services/apexrest/echo records the headers of every request it serves."""
    seen: List[Dict[str, str]] = []

    def handler(request: Any) -> Tuple[int, Any]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        seen.append({"authorization": headers.get("authorization", ""),
                     "x-trace": headers.get("x-trace", ""),
                     "body": request.body.decode("utf-8", "replace")})
        return 200, {"ok": True, "body": request.body.decode("utf-8", "replace")}

    org.register_apex_route("GET", "/echo", handler)
    org.register_apex_route("POST", "/echo", handler)
    return seen


# ---------------------------------------------------------------------------------------
# single flight
# ---------------------------------------------------------------------------------------
def test_64_threads_on_an_expired_session_make_exactly_one_token_request(org: Any, sf: SalesforceJWT) -> None:
    sf.query(SOQL)
    org.expire_all_sessions()
    before = org.token_requests
    barrier = threading.Barrier(64)
    results: List[Any] = []
    errors: List[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=20)
            result = sf.query(SOQL)
            with lock:
                results.append(result)
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(results) == 64
    assert all(r["totalSize"] == 3 for r in results)
    assert org.token_requests - before == 1
    assert sf.refresher.refresh_count == 1


def test_thread_with_an_older_token_uses_the_newer_one(org: Any, sf: SalesforceJWT) -> None:
    old = sf.refresher.access_token
    org.expire_all_sessions()
    new = sf.refresher.refresh(old)
    before = org.token_requests
    # a request that failed with the old token asks again: no token request
    assert sf.refresher.refresh(old) is new
    assert org.token_requests == before


# ---------------------------------------------------------------------------------------
# at most one refresh per request
# ---------------------------------------------------------------------------------------
def test_session_not_valid_for_rest_refreshes_once_then_raises(org: Any, sf: SalesforceJWT) -> None:
    sf.query(SOQL)
    org.reject_sessions = True
    tokens_before = org.token_requests
    since = len(org.requests)
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query(SOQL)
    assert "not valid for use with the REST API" in str(info.value)
    assert org.token_requests - tokens_before == 1
    calls = _instance_calls(org, since)
    assert [c.status for c in calls] == [401, 401]

    # SFType (simple-salesforce's own loop, issue #804): also exactly one refresh
    tokens_before = org.token_requests
    since = len(org.requests)
    with pytest.raises(SalesforceExpiredSession):
        sf.Account.describe()
    assert org.token_requests - tokens_before == 1
    assert [c.status for c in _instance_calls(org, since)] == [401, 401]

    org.reject_sessions = False
    assert sf.query(SOQL)["totalSize"] == 3


def test_failed_response_is_in_history_of_the_resent_one(org: Any, sf: SalesforceJWT) -> None:
    org.expire_all_sessions()
    response = sf.session.get(sf.base_url + "limits")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]


# ---------------------------------------------------------------------------------------
# bodies
# ---------------------------------------------------------------------------------------
def test_generator_body_is_not_resent(org: Any, sf: SalesforceJWT) -> None:
    seen = _echo_route(org)
    org.expire_all_sessions()
    before = org.token_requests
    since = len(org.requests)

    def chunks() -> Iterator[bytes]:
        yield b'{"part": 1}'

    with pytest.raises(SalesforceExpiredSession) as info:
        sf.session.post(sf.apex_url + "echo", data=chunks(), headers={"Content-Type": "application/json"})
    assert isinstance(info.value, RequestNotReplayable)
    assert "repeat the call" in str(info.value).lower()
    assert org.token_requests - before == 1          # the refresh still happened
    assert [c.status for c in _instance_calls(org, since)] == [401]  # nothing resent
    assert seen == []
    # the caller repeats the call: it goes through on the new token, no new login
    response = sf.session.post(sf.apex_url + "echo", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert org.token_requests - before == 1


def test_seekable_file_body_is_rewound_and_resent(org: Any, sf: SalesforceJWT) -> None:
    seen = _echo_route(org)
    org.expire_all_sessions()
    body = io.BytesIO(b'{"file": true}')
    response = sf.session.post(sf.apex_url + "echo", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert seen[-1]["body"] == '{"file": true}'


def test_body_is_replayable_rules() -> None:
    def prep(data: Any) -> requests.PreparedRequest:
        return requests.Request("POST", "https://127.0.0.1/x", data=data).prepare()

    assert body_is_replayable(prep(b"abc"))
    assert body_is_replayable(prep("abc"))
    assert body_is_replayable(prep(None))
    assert body_is_replayable(prep(io.BytesIO(b"abc")))
    assert not body_is_replayable(prep(x for x in [b"a"]))
    assert not body_is_replayable(prep(iter([b"a", b"b"])))


# ---------------------------------------------------------------------------------------
# headers, stale tokens
# ---------------------------------------------------------------------------------------
def test_custom_headers_survive_the_resend(org: Any, sf: SalesforceJWT) -> None:
    seen = _echo_route(org)
    org.expire_all_sessions()
    result = sf.apexecute("echo", method="POST", data={"x": 1}, headers={"X-Trace": "abc-123"})
    assert result["ok"] is True
    assert len(seen) == 1                     # the first try was refused before the handler
    assert seen[0]["x-trace"] == "abc-123"
    assert seen[0]["authorization"] == "Bearer " + sf.refresher.access_token
    assert sf.headers["Authorization"] == "Bearer " + sf.refresher.access_token
    assert "X-Trace" not in sf.headers       # nothing leaked into the client's headers


def test_stale_token_is_swapped_before_sending(org: Any, sf: SalesforceJWT) -> None:
    old = sf.session_id
    org.expire_all_sessions()
    sf.query(SOQL)                          # refresh
    assert sf.session_id != old
    since = len(org.requests)
    tokens = org.token_requests
    # a caller that kept the old token: no wasted round trip
    response = sf.session.get(sf.base_url + "limits", headers={"Authorization": "Bearer " + old})
    assert response.status_code == 200
    assert [c.status for c in _instance_calls(org, since)] == [200]
    assert org.token_requests == tokens


def test_foreign_tokens_and_hosts_are_left_alone(org: Any, sf: SalesforceJWT) -> None:
    since = len(org.requests)
    tokens = org.token_requests
    response = sf.session.get(sf.base_url + "limits", headers={"Authorization": "Bearer not-ours"})
    assert response.status_code == 401       # not our token: no refresh, no resend
    assert org.token_requests == tokens
    assert len(_instance_calls(org, since)) == 1


# ---------------------------------------------------------------------------------------
# redirects
# ---------------------------------------------------------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: List[Dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b'{"landed": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_host() -> Iterator[Tuple[str, List[Dict[str, str]]]]:
    seen: List[Dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_redirect_to_another_host_strips_the_token(org: Any, sf: SalesforceJWT, other_host: Any) -> None:
    from sfjwt_ext.testing.core.http import Response

    url, seen = other_host
    org.router.add("instance", "GET", r"/services/apexrest/elsewhere",
                   lambda request: Response(status=302, headers={"Location": url + "/landing"}, content_type=None))
    result = sf.session.get(sf.apex_url + "elsewhere", headers={"X-SFDC-Session": sf.session_id})
    assert result.status_code == 200 and result.json() == {"landed": True}
    assert len(seen) == 1
    assert "authorization" not in seen[0]
    assert "x-sfdc-session" not in seen[0]


def test_redirect_within_the_instance_keeps_the_token(org: Any, sf: SalesforceJWT) -> None:
    from sfjwt_ext.testing.core.http import Response

    target = sf.base_url + "limits"
    org.router.add("instance", "GET", r"/services/apexrest/moved",
                   lambda request: Response(status=302, headers={"Location": target}, content_type=None))
    result = sf.apexecute("moved")
    assert "DailyApiRequests" in result


# ---------------------------------------------------------------------------------------
# token endpoint down, inactivity
# ---------------------------------------------------------------------------------------
def test_token_endpoint_down_at_refresh_then_recovers(org: Any, sf: SalesforceJWT) -> None:
    from sfjwt_ext.errors import TokenEndpointUnavailable

    org.expire_all_sessions()
    org.inject_fault("token", count=50, status=503, body=b"<html>maintenance</html>")
    with pytest.raises(TokenEndpointUnavailable):
        sf.query(SOQL)
    org.clear_faults()
    assert sf.query(SOQL)["totalSize"] == 3        # same client, no reconnect needed


def test_inactivity_timeout_then_recovery(org: Any, sf: SalesforceJWT) -> None:
    sf.query(SOQL)
    old = sf.session_id
    org.inactivity_timeout = 0.3
    session = next(s for s in org.sessions if s.token == old)
    deadline = time.monotonic() + 10
    # wait (without touching the session: every call resets its timer) until it is idle
    while time.monotonic() - session.last_used <= 0.3:
        assert time.monotonic() < deadline, "the session never went idle"
        time.sleep(0.05)
    raw = requests.get(sf.base_url + "limits", headers={"Authorization": "Bearer " + old}, verify=org.ca_file)
    assert raw.status_code == 401
    org.inactivity_timeout = None
    assert sf.query(SOQL)["totalSize"] == 3
    assert sf.session_id != old
    assert sf.refresher.refresh_count == 1


# ---------------------------------------------------------------------------------------
# verify, timeout, expiry signals, Refresher with a stand-in token client
# ---------------------------------------------------------------------------------------
def test_org_ca_is_honoured_with_requests_ca_bundle_set(org: Any, sf: SalesforceJWT) -> None:
    import os

    assert os.environ.get("REQUESTS_CA_BUNDLE")              # set by the suite, not the org's CA
    assert sf.session.verify == org.ca_file
    assert sf.session.get(sf.base_url + "limits").status_code == 200
    # an explicit per-request verify still wins (the system bundle does not know the org)
    with pytest.raises(requests.exceptions.SSLError):
        sf.session.get(sf.base_url + "limits", verify=True)


def test_timeout_applies_when_the_caller_gives_none(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, timeout=0.3)
    assert sf.session.timeout == 0.3
    org.inject_fault("api", count=1, delay=1.5)
    with pytest.raises(requests.exceptions.Timeout):
        sf.query(SOQL)
    org.clear_faults()
    assert sf.query(SOQL, timeout=10)["totalSize"] == 3


BULK1_URL = "https://acme.my.salesforce.com/services/async/62.0/job"
SOAP_URL = "https://acme.my.salesforce.com/services/Soap/m/62.0"


def _response(status: int, body: bytes, content_type: str = "application/json",
              url: str = "https://acme.my.salesforce.com/services/data/v62.0/query") -> requests.Response:
    r = requests.Response()
    r.url = url
    r.status_code = status
    r._content = body
    r.headers["Content-Type"] = content_type
    return r


def test_expiry_signals() -> None:
    assert expiry_signal(_response(401, b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]')) == "rest"
    assert expiry_signal(_response(400, b'{"exceptionCode":"InvalidSessionId","exceptionMessage":"x"}',
                                   url=BULK1_URL)) == "bulk"
    assert expiry_signal(_response(400, b"<error><exceptionCode>InvalidSessionId</exceptionCode></error>",
                                   "application/xml", url=BULK1_URL)) == "bulk"
    assert expiry_signal(_response(500, b"<soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode></soapenv:Fault>",
                                   "text/xml", url=SOAP_URL)) == "soap"
    assert expiry_signal(_response(401, b'[{"errorCode":"INVALID_AUTH_HEADER"}]')) is None
    assert expiry_signal(_response(400, b'[{"errorCode":"MALFORMED_QUERY"}]')) is None
    assert expiry_signal(_response(200, b'INVALID_SESSION_ID')) is None


class _StandInTokenClient:
    """Plays the TokenClient for the Refresher (it is not a mock of requests)."""

    username = "stand-in@example.com"

    def __init__(self, tokens: List[Any]) -> None:
        self.tokens = list(tokens)
        self.requests_made = 0
        self.gate = threading.Event()
        self.gate.set()

    def fetch(self) -> Any:
        self.requests_made += 1
        self.gate.wait(10)
        item = self.tokens.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def _token(value: str, instance: str = "https://127.0.0.1:1") -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(access_token=value, instance_url=instance, id="", org_id="00D000000000001")


def _run_while_the_token_request_is_held(client: "_StandInTokenClient", call: Callable[[], Any], n: int) -> None:
    """Start ``n`` threads running ``call``; once the first token request is in (held at the
    client's gate, so the others pile up behind the refresher's lock), let it finish; join."""
    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while client.requests_made == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.gate.set()
    for t in threads:
        t.join(10)


def test_waiters_share_a_failed_refresh() -> None:
    client = _StandInTokenClient([RuntimeError("token endpoint down"), _token("t3")])
    refresher = Refresher(client, _token("t1"))  # type: ignore[arg-type]
    client.gate.clear()
    errors: List[BaseException] = []

    def call() -> None:
        try:
            refresher.refresh("t1")
        except BaseException as exc:
            errors.append(exc)

    _run_while_the_token_request_is_held(client, call, 8)
    assert len(errors) == 8 and client.requests_made == 1
    # a later call tries again
    assert refresher.refresh("t1").access_token == "t3"
    assert client.requests_made == 2


def test_same_token_again_is_shared_by_waiters() -> None:
    # Salesforce hands out the same session for an identical login while it is valid
    client = _StandInTokenClient([_token("t1"), _token("t1")])
    refresher = Refresher(client, _token("t1"))  # type: ignore[arg-type]
    client.gate.clear()
    _run_while_the_token_request_is_held(client, lambda: refresher.refresh("t1"), 8)
    assert client.requests_made == 1
    assert refresher.refresh_count == 1


def test_refreshing_session_copies_a_callers_session(org: Any) -> None:
    base = requests.Session()
    base.headers["X-Team"] = "data"
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=4)
    base.mount("https://", adapter)
    base.cookies.set("c", "1")
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, session=base)
    assert isinstance(sf.session, RefreshingSession) and sf.session is not base
    assert sf.session.get_adapter("https://127.0.0.1/") is adapter
    assert sf.session.headers["X-Team"] == "data"
    assert sf.session.cookies.get("c") == "1"
    assert sf.query(SOQL)["totalSize"] == 3


def test_identity_url_on_the_login_host_gets_the_token(org: Any, sf: SalesforceJWT) -> None:
    identity = sf.token.id
    assert identity.startswith(org.login_url)
    response = sf.session.get(identity)
    assert response.status_code == 200
    assert response.json()["user_id"] == org.credentials.user_id


def test_clients_follow_a_new_instance_url() -> None:
    client = _StandInTokenClient([_token("t2", "https://127.0.0.2:8443")])
    refresher = Refresher(client, _token("t1", "https://127.0.0.1:9443"))  # type: ignore[arg-type]
    sf = SalesforceJWT(refresher=refresher, session=RefreshingSession(refresher), version="59.0")
    bulk2_before = sf.bulk2
    assert sf.base_url == "https://127.0.0.1:9443/services/data/v59.0/"
    refresher.refresh("t1")
    assert sf.session_id == "t2" and sf.headers["Authorization"] == "Bearer t2"
    assert sf.sf_instance == "127.0.0.2:8443"
    for url in (sf.base_url, sf.apex_url, sf.bulk_url, sf.bulk2_url, sf.metadata_url, sf.tooling_url, sf.oauth2_url):
        assert url.startswith("https://127.0.0.2:8443/services/")
    assert sf.bulk2.bulk2_url.startswith("https://127.0.0.2:8443/") and bulk2_before.session_id == "t1"
    # both hosts are ours for the session: an old handler's token is still swapped
    assert sf.session._wants_token("https://127.0.0.1:9443/services/data/")
    assert sf.session._wants_token("https://127.0.0.2:8443/services/data/")
    assert not sf.session._wants_token("https://127.0.0.3/services/data/")


def test_resend_follows_an_instance_that_moved_during_the_refresh(org: Any, sf: SalesforceJWT) -> None:
    # The org "migrates": new logins name another instance origin (the same server reached
    # as localhost, which its certificate also covers).
    old_url = sf.base_url + "limits/"
    org.instance_url = org.instance_url.replace("127.0.0.1", "localhost")
    org.expire_all_sessions()
    response = sf.session.get(old_url)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert response.history[0].url == old_url  # the failed call went to the old origin,
    assert response.url.startswith(org.instance_url + "/services/data/")  # the resend to the new
    assert sf.base_url.startswith(org.instance_url + "/services/data/")
    assert sf.query(SOQL)["totalSize"] == 3


def test_an_interrupt_during_a_refresh_is_not_handed_to_the_waiters() -> None:
    import sys

    client = _StandInTokenClient([KeyboardInterrupt(), _token("t2")])
    refresher = Refresher(client, _token("t1"))  # type: ignore[arg-type]
    client.gate.clear()
    outcomes: Dict[str, Any] = {}

    def call(name: str) -> None:
        try:
            outcomes[name] = refresher.refresh("t1").access_token
        except BaseException as exc:  # noqa: B902 - KeyboardInterrupt is the point
            outcomes[name] = exc

    first = threading.Thread(target=call, args=("first",))
    first.start()
    deadline = time.monotonic() + 10
    while client.requests_made == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    waiter = threading.Thread(target=call, args=("waiter",))
    waiter.start()
    # the waiter is inside refresh() (it has noted when it started waiting)
    while True:
        assert time.monotonic() < deadline
        frame = sys._current_frames().get(waiter.ident or -1)
        if frame is not None and frame.f_code.co_name == "refresh" and "waited_since" in frame.f_locals:
            break
        time.sleep(0.01)
    client.gate.set()
    first.join(10)
    waiter.join(10)
    assert isinstance(outcomes["first"], KeyboardInterrupt)
    assert outcomes["waiter"] == "t2"  # refreshed itself, not the other thread's Ctrl-C
    assert client.requests_made == 2


def test_a_late_notification_never_puts_an_older_token_back(org: Any, sf: SalesforceJWT) -> None:
    sf.query(SOQL)
    old = sf.refresher.token
    org.expire_all_sessions()
    sf.query(SOQL)
    new = sf.refresher.token
    assert new.access_token != old.access_token
    # the notification of an earlier refresh arrives after the one of the later refresh
    sf._sfjwt_token_changed(old)
    assert sf.session_id == new.access_token
    assert sf.headers["Authorization"] == "Bearer " + new.access_token
