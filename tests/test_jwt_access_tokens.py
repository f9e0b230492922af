"""JWT-format access tokens (issue 15 item 4), against the local org over HTTPS.

An app with "Issue JSON Web Token (JWT)-based access tokens for named users"
(``isNamedUserJwtEnabled``; the local org's ``jwt_access_tokens=True``) answers the JWT login
with a signed JWT (``eyJ...``, ~1,200 characters, ``token_format: "jwt"``) instead of an opaque
``00D...!...`` token. The client must work with it wherever it works with an opaque one, keep it
out of logs and reprs, take the org and user ids from the identity URL, and refuse a SOAP call
below API 68.0 before sending anything (Salesforce would refuse the token there, and the
refusal looks like an expired session: a refresh would only bring another JWT).
"""
from __future__ import annotations

import logging
import pickle
import re
import traceback
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext import clear_cache, connect_jwt
from sfjwt_ext._internal.redact import JWT_MASK, looks_like_jwt, mask_token, redact
from sfjwt_ext.errors import SfJwtError, SoapJwtTokenError
from sfjwt_ext.auth.token_client import TokenResponse
from sfjwt_ext.testing import LocalOrg
from sfjwt_ext.testing.org import OrgCredentials

SOQL = "SELECT Id, Name FROM Account"
# a JWS compact JWT: header and claims are JSON objects
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ")
SOAP_DESCRIBE = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:met="http://soap.sforce.com/2006/04/metadata">'
    "<soapenv:Header><met:SessionHeader><met:sessionId>{token}</met:sessionId></met:SessionHeader></soapenv:Header>"
    "<soapenv:Body><met:describeMetadata><met:asOfVersion>{version}</met:asOfVersion></met:describeMetadata>"
    "</soapenv:Body></soapenv:Envelope>"
)


@pytest.fixture
def jwt_org(salesforce_org: LocalOrg, tmp_path: Path) -> LocalOrg:
    """The local org with an External Client App that issues JWT-format access tokens;
    ``org.jwt_credentials`` log in through it."""
    org = salesforce_org
    org.insert("Account", [{"Name": f"Acme {i}"} for i in range(3)])
    creds = org.new_app_with_key(tmp_path / "jwt-app", username="jwt@example.com", jwt_access_tokens=True)
    org.jwt_credentials = creds  # type: ignore[attr-defined]
    return org


def _creds(org: LocalOrg) -> OrgCredentials:
    return org.jwt_credentials  # type: ignore[attr-defined,no-any-return]


def _connect(org: LocalOrg, **changes: Any) -> Any:
    kwargs = _creds(org).connect_kwargs()
    kwargs.update({"cache": False, **changes})
    return connect_jwt(**kwargs)


# ---------------------------------------------------------------------------------------
# the token and what the client shows of it
# ---------------------------------------------------------------------------------------
def test_the_login_gives_a_jwt_token_whose_ids_come_from_the_identity_url(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org)
    token = sf.token
    assert token.token_format == "jwt" and token.is_jwt
    assert looks_like_jwt(sf.session_id) and not sf.session_id.startswith("00D")
    assert len(sf.session_id) > 500  # a signed JWT, not an opaque session id
    assert token.org_id == jwt_org.org_id and token.user_id == _creds(jwt_org).user_id
    # what the client shows of it: masked, still recognisable (a JWT, and which one)
    shown = [repr(sf), str(sf), sf._repr_html_(), repr(token), str(token), repr(sf.refresher), repr(sf.session)]
    assert not any(sf.session_id in text or JWT_RE.search(text) for text in shown)
    assert f"eyJ…{sf.session_id[-4:]}" in repr(token) and mask_token(sf.session_id) == f"eyJ…{sf.session_id[-4:]}"
    assert f"org={jwt_org.org_id!r}" in repr(sf)


def test_an_opaque_token_is_not_taken_for_a_jwt(salesforce_org: LocalOrg) -> None:
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)
    assert sf.session_id.startswith("00D") and not sf.token.is_jwt and sf.token.token_format == ""
    assert sf.token.org_id == salesforce_org.org_id
    assert repr(sf.session_id) == repr(mask_token(sf.session_id)) and "!" not in repr(sf.headers)


def test_is_jwt_follows_token_format_or_the_shape() -> None:
    jwt_shaped = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1aWQ6MDA1In0.c2lnbmF0dXJl"
    base = {"instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA"}
    said = TokenResponse.from_json({**base, "access_token": "opaque-but-declared", "token_format": "jwt"})
    shaped = TokenResponse.from_json({**base, "access_token": jwt_shaped})
    opaque = TokenResponse.from_json({**base, "access_token": "00D000000000001!AQ0AQH.abc.def"})
    assert said.is_jwt and shaped.is_jwt and not opaque.is_jwt
    assert shaped.org_id == "00D000000000001AAA" and shaped.user_id == "005000000000001AAA"
    assert not looks_like_jwt("00D000000000001!AQ.eyJ.x") and not looks_like_jwt("eyJa.eyJb")


def test_redact_masks_a_jwt_access_token_in_any_text(jwt_org: LocalOrg) -> None:
    token = _connect(jwt_org).session_id
    for text in (f"Authorization: Bearer {token}", f"<sessionId>{token}</sessionId>", f'{{"access_token":"{token}"}}'):
        masked = redact(text)
        assert token not in masked and JWT_MASK in masked and not JWT_RE.search(masked)


# ---------------------------------------------------------------------------------------
# the APIs, refresh, token cache, pickles
# ---------------------------------------------------------------------------------------
def test_rest_and_bulk2_work_with_a_jwt_token(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org)
    assert sf.query(SOQL)["totalSize"] == 3
    csv_parts = list(sf.bulk2.Account.query(SOQL))
    assert sum(part.count("Acme") for part in csv_parts) == 3
    assert sf.refresh_count == 0 and jwt_org.token_requests == 1


def test_an_expired_jwt_token_is_refreshed_once_for_another_jwt(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org)
    first = sf.session_id
    bulk = sf.bulk2  # a handler made before the refresh
    jwt_org.expire_all_sessions()
    assert sf.query(SOQL)["totalSize"] == 3
    assert sf.refresh_count == 1 and jwt_org.token_requests == 2
    assert sf.session_id != first and sf.token.is_jwt and jwt_org.is_session_valid(sf.session_id)
    assert sum(part.count("Acme") for part in bulk.Account.query(SOQL)) == 3
    assert jwt_org.token_requests == 2


def test_the_token_cache_keeps_a_jwt_token_encrypted_and_its_format(jwt_org: LocalOrg, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    first = _connect(jwt_org, cache=True, token_cache=str(folder))
    assert jwt_org.token_requests == 1
    (entry,) = sorted(folder.glob("*.token"))
    raw = entry.read_bytes()
    assert first.session_id.encode() not in raw and not re.search(rb"eyJ[A-Za-z0-9_\-]{8,}\.eyJ", raw)
    clear_cache()  # as a new process would
    second = _connect(jwt_org, cache=True, token_cache=str(folder))
    assert jwt_org.token_requests == 1  # from the entry
    assert second.session_id == first.session_id
    assert second.token.token_format == "jwt" and second.token.org_id == jwt_org.org_id
    assert second.query(SOQL)["totalSize"] == 3


def test_a_pickled_client_keeps_its_jwt_token_and_refreshes(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org)
    copy = pickle.loads(pickle.dumps(sf))
    assert copy.session_id == sf.session_id and copy.token.token_format == "jwt"
    assert copy.query(SOQL)["totalSize"] == 3 and jwt_org.token_requests == 1
    jwt_org.expire_all_sessions()
    assert copy.query(SOQL)["totalSize"] == 3
    assert jwt_org.token_requests == 2 and copy.token.is_jwt


def test_a_debug_run_logs_no_jwt_token(jwt_org: LocalOrg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3 and zeep included
    sf = _connect(jwt_org, version="68.0")
    sf.query(SOQL)
    list(sf.bulk2.Account.query(SOQL))
    jwt_org.expire_all_sessions()
    sf.query(SOQL)
    sf.mdapi.describe_metadata()  # zeep logs SOAP envelopes (with <sessionId>) at DEBUG
    old = _connect(jwt_org, version="62.0")
    with pytest.raises(SoapJwtTokenError) as refused:
        old.mdapi.describe_metadata()
    lines = [f"{r.name} {r.getMessage()}" for r in caplog.records]
    haystack = "\n".join(lines + [caplog.text, str(refused.value), repr(refused.value)])
    assert any("oauth2/token" in line for line in lines), "urllib3's DEBUG lines were not collected"
    assert any("sessionId" in line for line in lines), "zeep's envelopes were not collected"
    assert any("JWT-format token" in line for line in lines)  # the login says which kind
    tokens = {session.token for session in jwt_org.sessions if looks_like_jwt(session.token)}
    assert len(tokens) >= 2  # before and after the refresh (a second login reuses the live session)
    for token in tokens:
        assert token not in haystack
        assert token.split(".")[1] not in haystack and token.split(".")[2] not in haystack
    assert not JWT_RE.search(haystack)


# ---------------------------------------------------------------------------------------
# SOAP: refused below 68.0 before anything is sent, works from 68.0
# ---------------------------------------------------------------------------------------
@pytest.fixture
def counted(jwt_org: LocalOrg) -> Iterator[LocalOrg]:
    jwt_org.requests.clear()
    yield jwt_org


def test_metadata_api_below_68_is_refused_before_sending_and_without_a_login(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org, version="62.0")
    assert sf.query(SOQL)["totalSize"] == 3  # REST takes the token at any version
    sent, logins = len(jwt_org.requests), jwt_org.token_requests
    with pytest.raises(SoapJwtTokenError) as refused:
        sf.mdapi.describe_metadata()
    assert len(jwt_org.requests) == sent, "a request reached the org"
    assert jwt_org.token_requests == logins and sf.refresh_count == 0
    assert isinstance(refused.value, SfJwtError)
    message = str(refused.value)
    assert "Issue JSON Web Token (JWT)-based access tokens for named users" in message
    assert "isNamedUserJwtEnabled" in message and "version='68.0'" in message
    assert "/services/Soap/m/62.0" in message and refused.value.version == "62.0"
    assert sf.session_id not in message and not JWT_RE.search(message)


@pytest.mark.parametrize("path", ["/services/Soap/u/62.0", "/services/Soap/c/67.0/{org}", "/services/Soap/T/48.0"])
def test_any_soap_url_below_68_through_the_session_is_refused_before_sending(jwt_org: LocalOrg, path: str) -> None:
    sf = _connect(jwt_org)
    url = f"https://{sf.sf_instance}" + path.format(org=jwt_org.org_id)
    sent, logins = len(jwt_org.requests), jwt_org.token_requests
    with pytest.raises(SoapJwtTokenError):
        sf.session.post(url, data=SOAP_DESCRIBE.format(token=sf.session_id, version="62.0"),
                        headers={"Content-Type": "text/xml", "SOAPAction": '""'})
    assert len(jwt_org.requests) == sent and jwt_org.token_requests == logins


def test_metadata_api_at_68_works_with_a_jwt_token(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org, version="68.0")
    described = sf.mdapi.describe_metadata()
    assert described is not None
    soap = [r for r in jwt_org.requests if r.path.startswith("/services/Soap/m/68.0")]
    assert soap and all(r.status == 200 for r in soap)
    assert sf.refresh_count == 0 and jwt_org.token_requests == 1


def test_without_the_check_the_org_refuses_the_jwt_below_68(jwt_org: LocalOrg) -> None:
    """What the check saves: the org (as Salesforce) answers a SOAP call below 68.0 that
    carries a JWT-format token with INVALID_SESSION_ID, the signal of an expired session."""
    sf = _connect(jwt_org)
    answer = requests.post(f"https://{sf.sf_instance}/services/Soap/m/62.0",
                           data=SOAP_DESCRIBE.format(token=sf.session_id, version="62.0"),
                           headers={"Content-Type": "text/xml", "SOAPAction": '""'},
                           verify=_creds(jwt_org).ca_file, timeout=10)
    assert answer.status_code == 500 and "INVALID_SESSION_ID" in answer.text


def test_an_opaque_token_still_does_soap_below_68(salesforce_org: LocalOrg) -> None:
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), version="62.0", cache=False)
    assert sf.mdapi.describe_metadata() is not None
    assert any(r.path.startswith("/services/Soap/m/62.0") and r.status == 200 for r in salesforce_org.requests)


def test_an_app_switched_to_jwt_tokens_is_caught_at_the_resend_after_a_refresh(salesforce_org: LocalOrg) -> None:
    """The app starts issuing JWT-format tokens while a client runs: its SOAP call at 62.0 expires,
    the refresh brings a JWT, and the resend is stopped before it is sent (no refusal loop)."""
    org = salesforce_org
    sf = connect_jwt(**org.credentials.connect_kwargs(), version="62.0", cache=False)
    assert sf.mdapi.describe_metadata() is not None and not sf.token.is_jwt
    org.set_app(org.credentials.consumer_key, jwt_access_tokens=True)
    org.expire_all_sessions()
    soap_before = [r for r in org.requests if r.path.startswith("/services/Soap/")]
    with pytest.raises(SoapJwtTokenError):
        sf.mdapi.describe_metadata()
    soap_after = [r for r in org.requests if r.path.startswith("/services/Soap/")]
    assert len(soap_after) == len(soap_before) + 1  # the expired call only; the resend never left
    assert sf.refresh_count == 1 and org.token_requests == 2 and sf.token.is_jwt
    assert sf.query(SOQL)["totalSize"] == 0  # REST goes on with the JWT


def _frames_text(exc: BaseException) -> str:
    """What a traceback shown with its locals shows (Sentry, ``pytest --showlocals``)."""
    return "".join(traceback.TracebackException(type(exc), exc, exc.__traceback__, capture_locals=True).format())


def test_no_frame_of_a_refused_soap_call_or_a_failed_rest_call_shows_the_jwt(jwt_org: LocalOrg) -> None:
    sf = _connect(jwt_org, version="62.0")
    with pytest.raises(SoapJwtTokenError) as soap:
        sf.mdapi.describe_metadata()  # refused at sf.mdapi: zeep never builds an envelope
    with pytest.raises(SalesforceMalformedRequest) as rest:
        sf.query("SELECT Nope FROM Nowhere")  # simple-salesforce's frames hold sf.headers' copy
    for exc in (soap.value, rest.value):
        text = _frames_text(exc)
        assert "headers = {" in text or "sent = " in text  # the locals are there, masked
        assert sf.session_id not in text and not JWT_RE.search(text), type(exc).__name__
    assert repr(sf.session_id) == repr(f"eyJ…{sf.session_id[-4:]}")
    assert repr(sf.headers["Authorization"]) == repr(f"Bearer eyJ…{sf.session_id[-4:]}")
    assert sf.headers["Authorization"] == "Bearer " + str(sf.session_id)  # sent as is
