"""A session that expires between calls is refreshed transparently, for every API
simple-salesforce reaches: REST, SObject CRUD, Apex REST, Tooling, Bulk 1.0, Bulk 2.0, and
the Metadata API (SOAP through zeep)."""
from __future__ import annotations

import io
import zipfile
from typing import Any, Callable, Dict, List

import pytest
import requests

from sfjwt_ext.client import SalesforceJWT, connect_jwt

N_ACCOUNTS = 23


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.insert("Account", [{"Name": f"Account {i:02d}"} for i in range(N_ACCOUNTS)])
    salesforce_org.register_apex_route("POST", "/hello", lambda r: (200, {"hello": (r.json or {}).get("name")}))
    return salesforce_org


@pytest.fixture
def sf(org: Any) -> SalesforceJWT:
    client = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    client.query("SELECT Id FROM Account LIMIT 1")  # the session is in use before it expires
    return client


def _expires_then(org: Any, sf: SalesforceJWT, call: Callable[[], Any]) -> Any:
    old = sf.session_id
    before = org.token_requests
    org.expire_all_sessions()
    result = call()
    assert org.token_requests - before == 1, "expected exactly one token request"
    assert sf.refresher.refresh_count == 1
    assert sf.session_id != old
    assert sf.headers["Authorization"] == "Bearer " + sf.session_id
    return result


def _route_exists(sf: SalesforceJWT, method: str, url: str, **kw: Any) -> bool:
    """False when the local org does not serve this route (another engineer's module)."""
    response = sf.session.request(method, url, **kw)
    return response.status_code != 404


CALLS: Dict[str, Callable[[SalesforceJWT], Any]] = {
    "query": lambda sf: sf.query("SELECT Id FROM Account")["totalSize"] == N_ACCOUNTS,
    "query_all": lambda sf: len(sf.query_all("SELECT Id FROM Account")["records"]) == N_ACCOUNTS,
    "describe": lambda sf: any(o["name"] == "Account" for o in sf.describe()["sobjects"]),
    "limits": lambda sf: "DailyApiRequests" in sf.limits(),
    "restful": lambda sf: "DailyApiRequests" in sf.restful("limits"),
    "sobject_describe": lambda sf: sf.Account.describe()["name"] == "Account",
    "apexecute": lambda sf: sf.apexecute("hello", method="POST", data={"name": "Ada"}) == {"hello": "Ada"},
    "toolingexecute": lambda sf: "records" in sf.toolingexecute("query", params={"q": "SELECT Id FROM ApexClass"}),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_expiry_between_calls(org: Any, sf: SalesforceJWT, name: str) -> None:
    assert _expires_then(org, sf, lambda: CALLS[name](sf)) is True


def test_sobject_crud_across_expiries(org: Any, sf: SalesforceJWT) -> None:
    created = _expires_then(org, sf, lambda: sf.Account.create({"Name": "Created"}))
    record_id = created["id"]
    for expected_refreshes, call in enumerate(
        [
            lambda: sf.Account.get(record_id)["Name"] == "Created",
            lambda: sf.Account.update(record_id, {"Name": "Renamed"}) == 204,
            lambda: sf.Account.get(record_id)["Name"] == "Renamed",
            lambda: sf.Account.delete(record_id) == 204,
        ],
        start=2,
    ):
        org.expire_all_sessions()
        assert call() is True
        assert sf.refresher.refresh_count == expected_refreshes


def test_query_all_iter_expiring_halfway_yields_every_row_once(org: Any, sf: SalesforceJWT) -> None:
    org.page_size = 5
    ids: List[str] = []
    for i, record in enumerate(sf.query_all_iter("SELECT Id, Name FROM Account ORDER BY Name")):
        ids.append(record["Id"])
        if i == 7:  # in the middle of the second page
            org.expire_all_sessions()
    assert len(ids) == N_ACCOUNTS == len(set(ids))
    assert sf.refresher.refresh_count == 1


def test_query_more_after_expiry(org: Any, sf: SalesforceJWT) -> None:
    org.page_size = 10
    first = sf.query("SELECT Id FROM Account")
    assert not first["done"]
    org.expire_all_sessions()
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(second["records"]) == 10
    assert sf.refresher.refresh_count == 1
    org.expire_all_sessions()
    rows = sf.query_all("SELECT Id FROM Account")["records"]
    assert len({r["Id"] for r in rows}) == N_ACCOUNTS
    assert sf.refresher.refresh_count == 2


def test_bulk2_query_after_expiry(org: Any, sf: SalesforceJWT) -> None:
    if not _route_exists(sf, "GET", sf.bulk2_url + "query"):
        pytest.skip("the local org serves no Bulk 2.0 query routes (sfjwt_ext.testing.core.jobs)")
    chunks = _expires_then(org, sf, lambda: list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", wait=0.05)))
    lines = "".join(chunks).strip().splitlines()
    assert len(lines) == N_ACCOUNTS + 1  # header + rows


def test_bulk1_query_after_expiry(org: Any, sf: SalesforceJWT) -> None:
    if not _route_exists(sf, "POST", sf.bulk_url + "job", json={"operation": "query", "object": "Account",
                                                               "contentType": "JSON"},
                         headers={"X-SFDC-Session": sf.session_id, "Content-Type": "application/json"}):
        pytest.skip("the local org serves no Bulk 1.0 routes (sfjwt_ext.testing.core.jobs)")
    rows = _expires_then(org, sf, lambda: sf.bulk.Account.query("SELECT Id, Name FROM Account", wait=0.05))
    assert len(rows) == N_ACCOUNTS


def test_handlers_created_before_a_refresh_keep_working(org: Any, sf: SalesforceJWT) -> None:
    if not _route_exists(sf, "GET", sf.bulk2_url + "query"):
        pytest.skip("the local org serves no Bulk 2.0 query routes (sfjwt_ext.testing.core.jobs)")
    bulk1, bulk2, account = sf.bulk, sf.bulk2, sf.Account   # snapshots of the old token
    old = sf.session_id
    org.expire_all_sessions()
    sf.limits()                                             # the refresh happens here
    assert sf.session_id != old and bulk2.session_id == old
    since, tokens = len(org.requests), org.token_requests
    assert len("".join(bulk2.Account.query("SELECT Id FROM Account", wait=0.05)).strip().splitlines()) == N_ACCOUNTS + 1
    assert len(bulk1.Account.query("SELECT Id FROM Account", wait=0.05)) == N_ACCOUNTS
    assert account.describe()["name"] == "Account"
    # the stale token was swapped before sending: not one refused request, no login
    assert [r.status for r in org.requests[since:] if r.status in (400, 401, 500)] == []
    assert org.token_requests == tokens


def _mdapi_or_skip(sf: SalesforceJWT) -> Any:
    try:
        api = sf.mdapi
    except Exception as exc:  # pragma: no cover - zeep / WSDL trouble
        pytest.skip(f"simple-salesforce's metadata client could not be built: {exc}")
    response = requests.post(sf.metadata_url, data=b"<x/>", headers={"Content-Type": "text/xml"},
                             verify=sf.session.verify)
    if response.status_code == 404:
        pytest.skip("the local org serves no SOAP Metadata route (sfjwt_ext.testing.core.jobs)")
    return api


def test_mdapi_after_expiry_uses_the_refreshing_session(org: Any, sf: SalesforceJWT) -> None:
    api = _mdapi_or_skip(sf)
    assert api._client.transport.session is sf.session
    headers_before = dict(sf.headers)
    result = _expires_then(org, sf, lambda: api.describe_metadata())
    assert result is not None
    assert sf.headers == {**headers_before, "Authorization": "Bearer " + sf.session_id}


def test_mdapi_created_before_a_refresh_keeps_working(org: Any, sf: SalesforceJWT) -> None:
    api = _mdapi_or_skip(sf)
    api.describe_metadata()
    org.expire_all_sessions()
    sf.limits()                       # refresh; the zeep SessionHeader still has the old id
    since, tokens = len(org.requests), org.token_requests
    assert api.describe_metadata() is not None
    assert [r.status for r in org.requests[since:]] == [200]
    assert org.token_requests == tokens


def _package(files: Dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    buffer.seek(0)
    return buffer


def test_deploy_and_retrieve_after_expiry(org: Any, sf: SalesforceJWT) -> None:
    """deploy/retrieve post raw SOAP envelopes with the session id in the body: the resend
    carries the new id there."""
    _mdapi_or_skip(sf)
    package = _package({
        "package.xml": '<?xml version="1.0" encoding="UTF-8"?><Package xmlns="http://soap.sforce.com/2006/04/metadata">'
                       "<types><members>Expiring</members><name>ApexClass</name></types><version>62.0</version></Package>",
        "classes/Expiring.cls": "public class Expiring { }",
        "classes/Expiring.cls-meta.xml": "<ApexClass/>",
    })
    since = len(org.requests)
    async_id, state = _expires_then(org, sf, lambda: sf.mdapi.deploy(package, sandbox=False))
    assert async_id and state in ("Queued", "InProgress", "Succeeded")
    soap = [r.status for r in org.requests[since:] if "/Soap/m/" in r.path]
    assert soap == [500, 200]  # the fault, then the resent envelope
    assert sf.mdapi.check_deploy_status(async_id)[0] == "Succeeded"

    org.expire_all_sessions()
    since, tokens = len(org.requests), org.token_requests
    retrieve_id, state = sf.mdapi.retrieve("retrieve", unpackaged={"ApexClass": ["Expiring"]})
    assert retrieve_id and state == "Queued"
    assert org.token_requests == tokens + 1
    assert [r.status for r in org.requests[since:] if "/Soap/m/" in r.path] == [500, 200]
    state, _error, _messages, zip_bytes = sf.mdapi.retrieve_zip(retrieve_id)
    assert state == "Succeeded"
    assert "classes/Expiring.cls" in zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()
