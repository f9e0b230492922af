"""A service that runs for months: no limit on how many refreshes a client survives
(issue 9, item 5). Before: after 33 refreshes (32 old tokens remembered) ``sf.mdapi`` and
``sf.bulk`` / ``sf.bulk2`` handlers kept from before failed with INVALID_SESSION_ID."""
from __future__ import annotations

from typing import Any

import pytest
import requests

from sfjwt_ext.client import SalesforceJWT, connect_jwt

REFRESHES = 100


def test_handlers_from_before_the_first_refresh_survive_100_refreshes(org: Any) -> None:
    sf: SalesforceJWT = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    sf.query("SELECT Id FROM Account")
    bulk1, bulk2 = sf.bulk, sf.bulk2          # both hold the first token
    first = sf.session_id
    before = org.token_requests
    for _ in range(REFRESHES):
        org.expire_all_sessions()
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 3
    assert org.token_requests - before == REFRESHES
    assert sf.refresher.refresh_count == REFRESHES
    assert bulk2.session_id == first != sf.session_id

    since, tokens = len(org.requests), org.token_requests
    assert len("".join(bulk2.Account.query("SELECT Id FROM Account", wait=0.05)).strip().splitlines()) == 4
    assert len(bulk1.Account.query("SELECT Id FROM Account", wait=0.05)) == 3
    # the first token was swapped before sending: no refused request, no login
    assert [r.status for r in org.requests[since:] if r.status in (400, 401, 500)] == []
    assert org.token_requests == tokens


def test_mdapi_from_before_the_first_refresh_survives_100_refreshes(org: Any) -> None:
    sf: SalesforceJWT = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    try:
        api = sf.mdapi
    except Exception as exc:  # pragma: no cover - zeep / WSDL trouble
        pytest.skip(f"simple-salesforce's metadata client could not be built: {exc}")
    if requests.post(sf.metadata_url, data=b"<x/>", headers={"Content-Type": "text/xml"},
                     verify=sf.session.verify).status_code == 404:
        pytest.skip("the local org serves no SOAP Metadata route")
    api.describe_metadata()
    for _ in range(REFRESHES):
        org.expire_all_sessions()
        sf.limits()
    assert sf.refresher.refresh_count == REFRESHES
    since, tokens = len(org.requests), org.token_requests
    assert api.describe_metadata() is not None
    assert [r.status for r in org.requests[since:]] == [200]
    assert org.token_requests == tokens


def test_old_tokens_are_remembered_by_digest_only(org: Any) -> None:
    """Remembering every old token costs 32 bytes each and keeps no old secret in clear."""
    sf: SalesforceJWT = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    old = sf.session_id
    org.expire_all_sessions()
    sf.limits()
    assert sf.refresher.is_old_token(old)
    assert all(isinstance(d, bytes) and len(d) == 32 for d in sf.refresher._old_tokens)
    assert old not in repr(vars(sf.refresher))
