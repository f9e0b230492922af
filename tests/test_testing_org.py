"""The local org (sfjwt_ext.testing): token endpoint, identity, sessions, controls, faults,
REST routes, lifecycle, the pytest plugin and ``python -m sfjwt_ext.testing``.

Everything goes over real HTTPS to 127.0.0.1 with ``verify=org.ca_file`` passed per request
(``REQUESTS_CA_BUNDLE`` stays set to the system bundle). Assertions are signed with PyJWT.
"""
from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from sfjwt_ext.testing import LocalOrg, OrgCredentials, RequestRecord
from sfjwt_ext.testing.core import tls
from sfjwt_ext.testing.core.http import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER = "user@example.com"


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(interval)


@pytest.fixture(scope="module")
def app_key() -> Any:
    return tls.app_key_pair()[0]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LocalOrg]:
    with LocalOrg() as o:
        o.credentials = o.new_app_with_key(tmp_path, username=USER)
        yield o


@pytest.fixture
def http(org: LocalOrg) -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def sign(key: Any, claims: Dict[str, Any], alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def claims_for(org: LocalOrg, **overrides: Any) -> Dict[str, Any]:
    assert org.credentials is not None
    claims: Dict[str, Any] = {"iss": org.credentials.consumer_key, "sub": USER,
                              "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def post_token(org: LocalOrg, assertion: str, grant_type: str = JWT_BEARER, **kw: Any) -> requests.Response:
    return requests.post(org.token_url, data={"grant_type": grant_type, "assertion": assertion},
                         verify=org.ca_file, timeout=10, **kw)


def login(org: LocalOrg, key: Any, **overrides: Any) -> Dict[str, Any]:
    r = post_token(org, sign(key, claims_for(org, **overrides)))
    assert r.status_code == 200, r.text
    return r.json()


def api(org: LocalOrg, token: Optional[str], path: str, method: str = "GET", **kw: Any) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, org.instance_url + path, headers=headers, verify=org.ca_file,
                            timeout=kw.pop("timeout", 10), **kw)


def assert_invalid_session(r: requests.Response, message: str = "Session expired or invalid") -> None:
    assert r.status_code == 401, r.text
    assert r.json() == [{"message": message, "errorCode": "INVALID_SESSION_ID"}]


# --------------------------------------------------------------------------- token endpoint
def token_error(r: requests.Response) -> Any:
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_success_shape(org: LocalOrg, app_key: Any) -> None:
    body = login(org, app_key)
    assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}  # no expires_in / refresh_token
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api full"
    assert body["instance_url"] == org.instance_url != org.login_url
    assert org.credentials is not None
    assert body["id"] == f"{org.login_url}/id/{org.org_id}/{org.credentials.user_id}"
    token = body["access_token"]
    assert token.startswith(org.org_id[:15] + "!") and org.org_id.startswith("00D")
    assert len(token) > 100
    assert org.credentials.user_id.startswith("005") and len(org.credentials.user_id) == 18


def test_unsupported_grant_type_comes_first(org: LocalOrg) -> None:
    r = post_token(org, "garbage", grant_type="password")
    assert token_error(r) == {"error": "unsupported_grant_type", "error_description": "grant type not supported"}


def test_unknown_issuer_before_signature_and_audience(org: LocalOrg, app_key: Any) -> None:
    bad = sign(app_key, claims_for(org, iss="3MVG9unknown", aud="https://nope.example.com")) + "x"
    assert token_error(post_token(org, bad)) == {"error": "invalid_client_id",
                                                  "error_description": "client identifier invalid"}


def test_bad_signature_before_audience(org: LocalOrg, app_key: Any) -> None:
    good = sign(app_key, claims_for(org, aud="https://nope.example.com"))
    head, payload, sig = good.split(".")
    tampered = f"{head}.{payload}.{sig[:-6]}AAAAAA"
    assert token_error(post_token(org, tampered)) == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_only_rs256_is_accepted(org: LocalOrg) -> None:
    hs = sign("a-shared-secret-of-enough-length-for-hs256!", claims_for(org), alg="HS256")
    assert token_error(post_token(org, hs)) == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_malformed_assertion(org: LocalOrg) -> None:
    assert token_error(post_token(org, "not-a-jwt")) == {"error": "invalid_grant",
                                                         "error_description": "invalid assertion"}


def test_audience_checked_before_expiry(org: LocalOrg, app_key: Any) -> None:
    a = sign(app_key, claims_for(org, aud="https://acme.my.salesforce.com", exp=int(time.time()) - 3600))
    assert token_error(post_token(org, a)) == {"error": "invalid_grant", "error_description": "audience is invalid"}


@pytest.mark.parametrize("aud", ["https://login.salesforce.com", "https://test.salesforce.com", "LOGIN_URL"])
def test_default_audiences(org: LocalOrg, app_key: Any, aud: str) -> None:
    login(org, app_key, aud=org.login_url if aud == "LOGIN_URL" else aud)


def test_configured_audiences(tmp_path: Path, app_key: Any) -> None:
    with LocalOrg(audiences=["https://community.example.com"]) as o:
        o.credentials = o.new_app_with_key(tmp_path)
        login(o, app_key, aud="https://community.example.com")
        r = post_token(o, sign(app_key, claims_for(o, aud="https://login.salesforce.com")))
        assert token_error(r)["error_description"] == "audience is invalid"


def test_expired_before_user_checks(org: LocalOrg, app_key: Any) -> None:
    a = sign(app_key, claims_for(org, sub="nobody@example.com", exp=int(time.time()) - 600))
    assert token_error(post_token(org, a)) == {"error": "invalid_grant", "error_description": "expired authorization code"}


@pytest.mark.parametrize("form", ["int", "str", "ms", "ms_str", "float", "now"])
def test_exp_formats(org: LocalOrg, app_key: Any, form: str) -> None:
    now = time.time()
    value = {"int": int(now) + 120, "str": str(int(now) + 120), "ms": int((now + 120) * 1000),
             "ms_str": str(int((now + 120) * 1000)), "float": now + 120.5, "now": int(now)}[form]
    login(org, app_key, exp=value)


@pytest.mark.parametrize("form", ["int", "str", "ms"])
def test_exp_in_the_past_refused_in_every_format(org: LocalOrg, app_key: Any, form: str) -> None:
    past = time.time() - 600
    value: Any = {"int": int(past), "str": str(int(past)), "ms": int(past * 1000)}[form]
    r = post_token(org, sign(app_key, claims_for(org, exp=value)))
    assert token_error(r)["error_description"] == "expired authorization code"


@pytest.mark.parametrize("value", [None, "soon", True])
def test_missing_or_garbage_exp_is_invalid_assertion(org: LocalOrg, app_key: Any, value: Any) -> None:
    claims = claims_for(org)
    if value is None:
        del claims["exp"]
    else:
        claims["exp"] = value
    assert token_error(post_token(org, sign(app_key, claims)))["error_description"] == "invalid assertion"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "inf", "Infinity", "NaN",
                                   "UNDERSCORED_FUTURE", "0x7fffffff", ""])
def test_non_finite_or_non_numeric_exp_is_invalid_assertion(org: LocalOrg, app_key: Any, value: Any) -> None:
    # NaN compares false with everything: unchecked it would be a token that never expires
    if value == "UNDERSCORED_FUTURE":  # built here: a time in a test id differs between xdist workers
        value = f"{int(time.time()) + 120:_}"
    r = post_token(org, sign(app_key, claims_for(org, exp=value)))
    assert token_error(r) == {"error": "invalid_grant", "error_description": "invalid assertion"}
    assert org.sessions == []


def test_user_errors(org: LocalOrg, app_key: Any) -> None:
    def attempt(username: str) -> Any:
        return token_error(post_token(org, sign(app_key, claims_for(org, sub=username))))

    assert attempt("nobody@example.com") == {"error": "invalid_grant", "error_description": "invalid user"}
    org.add_user("off@example.com", active=False, approved=False, app_access=False)
    assert attempt("off@example.com") == {"error": "invalid_grant", "error_description": "inactive user"}
    org.add_user("new@example.com", approved=False, app_access=False)
    assert attempt("new@example.com") == {"error": "invalid_grant",
                                          "error_description": "user hasn't approved this consumer"}
    org.add_user("noaccess@example.com", app_access=False)
    assert attempt("noaccess@example.com") == {"error": "invalid_app_access",
                                               "error_description": "user is not admin approved to access this app"}
    org.set_user("noaccess@example.com", app_access=True)
    login(org, app_key, sub="noaccess@example.com")


def test_set_user_active_is_the_user_records_is_active(org: LocalOrg, app_key: Any) -> None:
    user_id = org.add_user("leaver@example.com")
    org.set_user("leaver@example.com", active=False)
    assert org.store.get("User", user_id)["IsActive"] is False
    assert token_error(post_token(org, sign(app_key, claims_for(org, sub="leaver@example.com")))) == {
        "error": "invalid_grant", "error_description": "inactive user"}
    org.set_user("leaver@example.com", active=True)
    assert org.store.get("User", user_id)["IsActive"] is True


def test_username_is_case_insensitive(org: LocalOrg, app_key: Any) -> None:
    login(org, app_key, sub=USER.upper())


def test_login_rate_limit(tmp_path: Path, app_key: Any) -> None:
    with LocalOrg(login_rate_limit=2) as o:
        o.credentials = o.new_app_with_key(tmp_path)
        login(o, app_key)
        login(o, app_key)
        r = post_token(o, sign(app_key, claims_for(o)))
        assert token_error(r) == {"error": "rate_limit_exceeded", "error_description": "number of logins exceeded"}


def test_no_rate_limit_by_default(org: LocalOrg, app_key: Any) -> None:
    for _ in range(30):
        login(org, app_key)


def test_chunked_form_body(org: LocalOrg, app_key: Any) -> None:
    body = f"grant_type={JWT_BEARER}&assertion={sign(app_key, claims_for(org))}".encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i:i + 100]

    r = requests.post(org.token_url, data=chunks(), verify=org.ca_file, timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert org.requests[-1] == RequestRecord("login", "POST", "/services/oauth2/token", 200)


def test_same_login_reuses_the_session(org: LocalOrg, app_key: Any, tmp_path: Path) -> None:
    first = login(org, app_key)["access_token"]
    assert login(org, app_key)["access_token"] == first
    other_app = org.new_app_with_key(tmp_path / "other", username=USER)
    second = login(org, app_key, iss=other_app.consumer_key)["access_token"]
    assert second != first
    org.expire_all_sessions()
    fresh = login(org, app_key)["access_token"]
    assert fresh != first
    assert api(org, fresh, "/services/data/v62.0/limits").status_code == 200


# --------------------------------------------------------------------------- identity
def test_identity_and_userinfo(org: LocalOrg, app_key: Any) -> None:
    body = login(org, app_key)
    token = body["access_token"]
    assert org.credentials is not None
    r = requests.get(body["id"], headers={"Authorization": f"Bearer {token}"}, verify=org.ca_file, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json;charset=UTF-8"
    ident = r.json()
    assert ident["user_id"] == org.credentials.user_id
    assert ident["organization_id"] == org.org_id
    assert ident["username"] == USER
    assert ident["email"] == USER and ident["display_name"]
    assert ident["urls"]["rest"] == org.instance_url + "/services/data/v{version}/"
    for base in (org.login_url, org.instance_url):
        info = requests.get(base + "/services/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"},
                            verify=org.ca_file, timeout=10)
        assert info.status_code == 200
        assert info.json()["user_id"] == org.credentials.user_id
        assert info.json()["preferred_username"] == USER
    assert requests.get(body["id"], verify=org.ca_file, timeout=10).status_code == 401
    bad = requests.get(body["id"], headers={"Authorization": "Bearer 00Dnope!nope"}, verify=org.ca_file, timeout=10)
    assert bad.status_code == 401


# --------------------------------------------------------------------------- hosts & REST basics
def test_login_host_does_not_serve_the_api(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    r = requests.get(org.login_url + "/services/data/v62.0/limits", headers={"Authorization": f"Bearer {token}"},
                     verify=org.ca_file, timeout=10)
    assert r.status_code == 404
    # the instance host answers the token endpoint as a My Domain does (tests/test_testing_eca.py)
    refused = api(org, None, "/services/oauth2/token", "POST", data={"grant_type": JWT_BEARER})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_versions_resources_limits(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    versions = api(org, token, "/services/data/")
    assert versions.status_code == 200
    assert versions.headers["Content-Type"] == "application/json;charset=UTF-8"
    latest = versions.json()[-1]
    assert latest == {"label": "Winter '27", "url": "/services/data/v68.0", "version": "68.0"}
    assert {"version": "62.0", "label": "Winter '25", "url": "/services/data/v62.0"} in versions.json()
    assert {"version": "66.0", "label": "Spring '26", "url": "/services/data/v66.0"} in versions.json()
    assert {"version": "59.0", "label": "Winter '24", "url": "/services/data/v59.0"} in versions.json()
    resources = api(org, token, "/services/data/v62.0/").json()
    assert resources["query"] == "/services/data/v62.0/query"
    assert resources["sobjects"] == "/services/data/v62.0/sobjects"
    limits = api(org, token, "/services/data/v62.0/limits/")
    assert limits.status_code == 200
    assert limits.json()["DailyApiRequests"]["Max"] == 15000
    assert limits.json()["DailyApiRequests"]["Remaining"] < 15000
    assert limits.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert api(org, token, "/services/data/v99.0/limits").status_code == 404


def test_every_api_call_needs_a_token(org: LocalOrg) -> None:
    # GET /services/data/ (the versions list) is the exception: Salesforce serves it without a token
    for path in ("/services/data/v62.0/", "/services/data/v62.0/limits",
                 "/services/data/v62.0/query/?q=SELECT+Id+FROM+Account", "/services/data/v62.0/sobjects/"):
        assert_invalid_session(api(org, None, path))
        assert_invalid_session(api(org, "00Dxxxxxxxxxxxxxxx!bogus", path))


# --------------------------------------------------------------------------- controls
def test_revoke(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200
    org.revoke(token)
    assert_invalid_session(api(org, token, "/services/data/v62.0/limits"))
    new = login(org, app_key)["access_token"]
    assert new != token
    r = requests.post(org.login_url + "/services/oauth2/revoke", data={"token": new}, verify=org.ca_file, timeout=10)
    assert r.status_code == 200
    assert_invalid_session(api(org, new, "/services/data/v62.0/limits"))


def test_expire_all_sessions(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    org.expire_all_sessions()
    assert_invalid_session(api(org, token, "/services/data/v62.0/limits"))


def test_inactivity_timeout(org: LocalOrg, app_key: Any) -> None:
    org.inactivity_timeout = 0.2
    token = login(org, app_key)["access_token"]
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200
    # poll the session state without API calls (each API call would reset the timer)
    wait_for(lambda: not org.is_session_valid(token), timeout=5)
    assert_invalid_session(api(org, token, "/services/data/v62.0/limits"))
    assert login(org, app_key)["access_token"] != token


def test_inactivity_timer_is_reset_by_api_calls(org: LocalOrg, app_key: Any) -> None:
    org.inactivity_timeout = 60
    token = login(org, app_key)["access_token"]
    sessions = [s for s in org.sessions if s.user_id == org.credentials.user_id]  # type: ignore[union-attr]
    before = sessions[0].last_used
    wait_for(lambda: time.monotonic() > before)
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200
    assert sessions[0].last_used > before


def test_reject_sessions_mode(org: LocalOrg, app_key: Any) -> None:
    org.reject_sessions = True
    token = login(org, app_key)["access_token"]
    assert_invalid_session(api(org, token, "/services/data/v62.0/limits"),
                           "This session is not valid for use with the REST API")
    org.reject_sessions = False
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200


# --------------------------------------------------------------------------- auth helper for bulk / soap
def test_require_session_flavours(org: LocalOrg, app_key: Any) -> None:
    def handler(api_name: str) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            session = org.require_session(request, api=api_name)
            return json_response({"user": session.user_id})
        return serve

    org.router.add("instance", "*", r"/test/bulk1", handler("bulk1"))
    org.router.add("instance", "POST", r"/test/soap", handler("soap"))
    token = login(org, app_key)["access_token"]
    ok = api(org, None, "/test/bulk1", headers={"X-SFDC-Session": token})
    assert ok.status_code == 200 and ok.json()["user"] == org.credentials.user_id  # type: ignore[union-attr]
    xml = api(org, None, "/test/bulk1", "POST", headers={"X-SFDC-Session": "bad", "Content-Type": "application/xml"})
    assert xml.status_code == 400 and "<exceptionCode>InvalidSessionId</exceptionCode>" in xml.text
    js = api(org, None, "/test/bulk1", "POST", headers={"X-SFDC-Session": "bad", "Content-Type": "application/json"})
    assert js.status_code == 400 and js.json()["exceptionCode"] == "InvalidSessionId"
    # bare media types, as every other Bulk 1.0 answer (salesforce-bulk compares them with ==)
    assert (xml.headers["Content-Type"], js.headers["Content-Type"]) == ("application/xml", "application/json")
    envelope = ('<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
                '<env:Header><SessionHeader><sessionId>{}</sessionId></SessionHeader></env:Header>'
                '<env:Body/></env:Envelope>')
    soap_ok = api(org, None, "/test/soap", "POST", data=envelope.format(token), headers={"Content-Type": "text/xml"})
    assert soap_ok.status_code == 200
    soap_bad = api(org, None, "/test/soap", "POST", data=envelope.format("nope"), headers={"Content-Type": "text/xml"})
    assert soap_bad.status_code == 500
    assert "<faultcode>sf:INVALID_SESSION_ID</faultcode>" in soap_bad.text
    assert soap_bad.headers["Content-Type"].startswith("text/xml")


# --------------------------------------------------------------------------- faults
def test_fault_status_and_body_then_normal(org: LocalOrg, app_key: Any) -> None:
    org.inject_fault("token", count=2, status=503, body="<html>Maintenance</html>")
    a = sign(app_key, claims_for(org))
    for _ in range(2):
        r = post_token(org, a)
        assert r.status_code == 503 and "Maintenance" in r.text
        assert r.headers["Content-Type"].startswith("text/html")
    assert post_token(org, a).status_code == 200
    assert org.token_requests == 3
    assert len(org.assertions) == 3


def test_fault_429_with_retry_after(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    org.inject_fault("api", status=429, body=b"", headers={"Retry-After": "1"})
    r = api(org, token, "/services/data/v62.0/limits")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200


def test_fault_html_with_200(org: LocalOrg, app_key: Any) -> None:
    org.inject_fault("token", status=200, body="<html><body>Captive portal</body></html>")
    r = post_token(org, sign(app_key, claims_for(org)))
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        r.json()


def test_fault_drop_connection(org: LocalOrg, app_key: Any) -> None:
    token = login(org, app_key)["access_token"]
    org.inject_fault("api", drop=True)
    with pytest.raises(requests.ConnectionError):
        api(org, token, "/services/data/v62.0/limits")
    assert org.requests[-1].status == 0
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200


def test_fault_delay(org: LocalOrg, app_key: Any) -> None:
    org.inject_fault("identity", delay=0.5)
    token = login(org, app_key)["access_token"]
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(org.login_url + "/services/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"},
                     verify=org.ca_file, timeout=(5, 0.05))
    r = requests.get(org.login_url + "/services/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"},
                     verify=org.ca_file, timeout=10)
    assert r.status_code == 200


def test_stop_cuts_an_injected_delay_short(tmp_path: Path, app_key: Any) -> None:
    before = set(threading.enumerate())
    org = LocalOrg().start()
    try:
        org.credentials = org.new_app_with_key(tmp_path)
        token = login(org, app_key)["access_token"]
        org.inject_fault("api", delay=120)
        with pytest.raises(requests.exceptions.ReadTimeout):  # the handler is now inside the delay
            api(org, token, "/services/data/v62.0/limits", timeout=(5, 0.2))
    finally:
        org.stop()
    # without the cut, stop() would wait for the delay and a handler thread would outlive the org
    wait_for(lambda: set(threading.enumerate()) <= before, timeout=5)
    assert org.requests[-1] == RequestRecord("instance", "GET", "/services/data/v62.0/limits", 0)


def test_fault_delay_then_status(org: LocalOrg) -> None:
    org.inject_fault("token", delay=0.01, status=500, body={"oops": True})
    r = requests.post(org.token_url, data={"grant_type": JWT_BEARER}, verify=org.ca_file, timeout=10)
    assert r.status_code == 500 and r.json() == {"oops": True}


def test_fault_endpoint_validation(org: LocalOrg) -> None:
    with pytest.raises(ValueError):
        org.inject_fault("bulk", status=500)


# --------------------------------------------------------------------------- observation
def test_observation_and_reset(org: LocalOrg, app_key: Any) -> None:
    body = login(org, app_key)
    api(org, body["access_token"], "/services/data/v62.0/limits")
    api(org, None, "/services/data/v62.0/limits")
    assert org.token_requests == 1
    header, claims = org.assertions[0]
    assert header["alg"] == "RS256" and claims["sub"] == USER
    assert org.requests == [
        RequestRecord("login", "POST", "/services/oauth2/token", 200),
        RequestRecord("instance", "GET", "/services/data/v62.0/limits", 200),
        RequestRecord("instance", "GET", "/services/data/v62.0/limits", 401),
    ]
    org.reset_counters()
    assert org.requests == [] and org.assertions == [] and org.token_requests == 0


def test_concurrent_logins_are_counted(org: LocalOrg, app_key: Any) -> None:
    assertion = sign(app_key, claims_for(org))
    results = []

    def worker() -> None:
        with requests.Session() as s:
            for _ in range(5):
                results.append(s.post(org.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion},
                                      verify=org.ca_file, timeout=10).json()["access_token"])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert org.token_requests == 30 and len(org.assertions) == 30
    assert len(set(results)) == 1  # one session for identical logins


def test_handler_exception_is_a_500_that_is_observed(org: LocalOrg, app_key: Any) -> None:
    org.register_apex_route("GET", "/Broken", lambda req: (200, {"x": 1 // 0}))
    token = login(org, app_key)["access_token"]
    r = api(org, token, "/services/apexrest/Broken")
    assert r.status_code == 500
    assert r.json() == [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred in the local org"}]
    assert org.requests[-1] == RequestRecord("instance", "GET", "/services/apexrest/Broken", 500)
    assert api(org, token, "/services/data/v62.0/limits").status_code == 200  # still serving


# --------------------------------------------------------------------------- apex
def test_apex_route(org: LocalOrg, app_key: Any) -> None:
    seen = []

    def handler(req: Any) -> Any:
        seen.append(req)
        return 200, {"echo": req.json, "path": req.path, "user": req.username}

    org.register_apex_route("POST", "/Echo/*", handler)
    org.register_apex_route("GET", "/Hello", lambda req: (200, "hi " + req.params.get("name", "")))
    token = login(org, app_key)["access_token"]
    r = api(org, token, "/services/apexrest/Echo/abc", "POST", json={"a": 1})
    assert r.status_code == 200
    assert r.json() == {"echo": {"a": 1}, "path": "/Echo/abc", "user": USER}
    assert api(org, token, "/services/apexrest/Hello", params={"name": "x"}).text == "hi x"
    assert_invalid_session(api(org, None, "/services/apexrest/Hello"))
    assert api(org, token, "/services/apexrest/Missing").status_code == 404


# --------------------------------------------------------------------------- credentials & files
def test_new_app_with_key_files(org: LocalOrg, tmp_path: Path) -> None:
    creds = org.credentials
    assert isinstance(creds, OrgCredentials)
    assert stat.S_IMODE(os.stat(creds.private_key_file).st_mode) == 0o600
    assert Path(creds.certificate_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
    key = serialization.load_pem_private_key(Path(creds.private_key_file).read_bytes(), None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert creds.consumer_key.startswith("3MVG9") and 80 <= len(creds.consumer_key) <= 90
    assert creds.connect_kwargs() == {"username": USER, "consumer_key": creds.consumer_key,
                                      "private_key_file": creds.private_key_file, "login_url": org.login_url,
                                      "verify": org.ca_file}
    assert creds.env() == {"SF_USERNAME": USER, "SF_CONSUMER_KEY": creds.consumer_key,
                           "SF_PRIVATE_KEY_FILE": creds.private_key_file, "SF_LOGIN_URL": org.login_url,
                           "SF_CA_BUNDLE": org.ca_file}
    assert Path(org.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_create_app_with_public_key(org: LocalOrg, app_key: Any) -> None:
    pem = app_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    consumer_key = org.create_app(public_key=pem)
    login(org, app_key, iss=consumer_key)
    with pytest.raises(ValueError):
        org.create_app()


# --------------------------------------------------------------------------- lifecycle
def test_stop_leaves_no_threads_or_files(tmp_path: Path, app_key: Any) -> None:
    before = set(threading.enumerate())
    org = LocalOrg().start()
    org.credentials = org.new_app_with_key(tmp_path)
    session = requests.Session()  # keep-alive connections stay open across stop()
    token = session.post(org.token_url, data={"grant_type": JWT_BEARER, "assertion": sign(app_key, claims_for(org))},
                         verify=org.ca_file, timeout=10).json()["access_token"]
    session.get(org.instance_url + "/services/data/v62.0/limits", headers={"Authorization": f"Bearer {token}"},
                verify=org.ca_file, timeout=10)
    ca_dir = os.path.dirname(org.ca_file)
    assert len(set(threading.enumerate()) - before) >= 2
    org.stop()
    wait_for(lambda: set(threading.enumerate()) <= before, timeout=5)
    assert not os.path.exists(ca_dir)
    for url in (org.login_url, org.instance_url):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2)
    session.close()
    org.stop()  # idempotent


def test_tls_certificate_names(org: LocalOrg) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(tls.authority().server_cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    localhost_url = org.instance_url.replace("127.0.0.1", "localhost")
    assert_invalid_session(requests.get(localhost_url + "/services/data/v62.0/", verify=org.ca_file, timeout=10))
    with pytest.raises(requests.exceptions.SSLError):  # REQUESTS_CA_BUNDLE alone does not trust the org
        requests.get(org.instance_url + "/services/data/", timeout=10)


def test_orgs_are_independent(tmp_path: Path, app_key: Any) -> None:
    with LocalOrg() as a, LocalOrg() as b:
        ca = a.new_app_with_key(tmp_path / "a")
        b.new_app_with_key(tmp_path / "b")
        assert a.org_id != b.org_id and a.login_url != b.login_url
        r = post_token(b, sign(app_key, {"iss": ca.consumer_key, "sub": USER, "aud": "https://login.salesforce.com",
                                         "exp": int(time.time()) + 60}))
        assert r.json()["error"] == "invalid_client_id"


# --------------------------------------------------------------------------- pytest plugin
def test_plugin_fixtures(salesforce_org: LocalOrg, salesforce_credentials: OrgCredentials, app_key: Any,
                         tmp_path: Path) -> None:
    assert salesforce_org.running
    assert salesforce_org.credentials is salesforce_credentials
    assert salesforce_credentials.login_url == salesforce_org.login_url
    assert Path(salesforce_credentials.private_key_file).parent.parent == tmp_path
    login(salesforce_org, app_key)


def _clean_env() -> Dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    return env


def test_plugin_is_a_pytest11_entry_point_and_cheap_to_import() -> None:
    from importlib.metadata import entry_points

    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    assert {(ep.name, ep.value) for ep in group} >= {("sfjwt_ext", "sfjwt_ext.testing.plugin")}
    code = ("import sys; import pytest; before = set(sys.modules); import sfjwt_ext.testing.plugin; "
            "new = sorted(set(sys.modules) - before); print(new); "
            "heavy = [m for m in new if m.split('.')[0] in ('requests', 'cryptography', 'simple_salesforce', 'jwt', "
            "'pandas', 'ssl', 'sqlite3') or m.startswith(('sfjwt_ext.testing.org', 'sfjwt_ext.testing.core.store', "
            "'sfjwt_ext.testing.core.http', 'sfjwt_ext.testing.core.tls'))]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_org_imports_nothing_of_the_client() -> None:
    """Every import in sfjwt_ext/testing (its API folders included) stays inside the package
    (``from .x`` / ``from ..core.x``) or is of a third-party package."""
    import ast

    folder = Path(__file__).resolve().parents[1] / "sfjwt_ext" / "testing"
    outside = []
    for path in sorted(folder.rglob("*.py")):
        depth = len(path.relative_to(folder).parts)   # 1 for testing/x.py: only "from ." stays inside
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level > depth or (node.level == 0 and node.module and
                                                                            node.module.split(".")[0] == "sfjwt_ext")):
                outside.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sfjwt_ext" for a in node.names):
                outside.append(f"{path.name}:{node.lineno}")
    assert len(list(folder.rglob("*.py"))) > 20 and outside == []


def test_pytest_fixtures_lists_the_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=120, env=_clean_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "salesforce_org -- " in out and "salesforce_credentials -- " in out
    assert "sfjwt_ext/testing/plugin.py" in out.replace(os.sep, "/")
    assert "A fresh local Salesforce org" in out


# --------------------------------------------------------------------------- python -m sfjwt_ext.testing
def test_module_main_prints_exports_and_stops_on_sigint(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "0"
    proc = subprocess.Popen([sys.executable, "-m", "sfjwt_ext.testing", "--dir", str(tmp_path / "key")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    exports: Dict[str, str] = {}
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "SF_CA_BUNDLE" not in exports:
            assert time.monotonic() < deadline, "no export lines before the deadline"
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"exited early: {proc.wait(5)} {proc.stderr.read() if proc.stderr else ''}")
            assert line.startswith("export "), line
            name, _, value = line[len("export "):].rstrip("\n").partition("=")
            import shlex
            exports[name] = shlex.split(value)[0]
        assert set(exports) == {"SF_USERNAME", "SF_CONSUMER_KEY", "SF_PRIVATE_KEY_FILE", "SF_LOGIN_URL",
                                "SF_CA_BUNDLE"}
        assert exports["SF_PRIVATE_KEY_FILE"] == str(tmp_path / "key" / "salesforce.key")
        key = serialization.load_pem_private_key(Path(exports["SF_PRIVATE_KEY_FILE"]).read_bytes(), None)
        assertion = jwt.encode({"iss": exports["SF_CONSUMER_KEY"], "sub": exports["SF_USERNAME"],
                                "aud": "https://login.salesforce.com", "exp": int(time.time()) + 60}, key,
                               algorithm="RS256")
        r = requests.post(exports["SF_LOGIN_URL"] + "/services/oauth2/token",
                          data={"grant_type": JWT_BEARER, "assertion": assertion},
                          verify=exports["SF_CA_BUNDLE"], timeout=10)
        assert r.status_code == 200, r.text
        login_body = r.json()
        # the sample data is loaded before the export lines are printed
        count = requests.get(login_body["instance_url"] + "/services/data/v62.0/query",
                             params={"q": "SELECT COUNT() FROM Opportunity"},
                             headers={"Authorization": f"Bearer {login_body['access_token']}"},
                             verify=exports["SF_CA_BUNDLE"], timeout=10)
        assert count.status_code == 200, count.text
        assert count.json()["totalSize"] >= 1000
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_credentials_are_typed_and_missing_ones_say_what_to_do(tmp_path: Any) -> None:
    bare = LocalOrg()
    with pytest.raises(LookupError, match="LocalOrg.with_app"):
        bare.credentials
    with LocalOrg.with_app(tmp_path) as org:
        assert org.credentials.username == "user@example.com"
