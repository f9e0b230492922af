"""The local org's REST routes backed by the store: query paging, queryAll, columns, SOQL
errors, sobject CRUD and describe, Tooling query, the Organization / User records, and
simple-salesforce 1.12.10 driving them over HTTPS (with REQUESTS_CA_BUNDLE set)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterator

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sfjwt_ext.testing import LocalOrg
from sfjwt_ext.testing.core import tls

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
V = "/services/data/v62.0"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LocalOrg]:
    with LocalOrg() as o:
        o.credentials = o.new_app_with_key(tmp_path, username="user@example.com")
        yield o


@pytest.fixture
def token(org: LocalOrg) -> str:
    assert org.credentials is not None
    assertion = jwt.encode({"iss": org.credentials.consumer_key, "sub": org.credentials.username,
                            "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180},
                           tls.app_key_pair()[0], algorithm="RS256")
    r = requests.post(org.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion},
                      verify=org.ca_file, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def get(org: LocalOrg, token: str) -> Any:
    session = requests.Session()

    def call(path: str, method: str = "GET", **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        url = path if path.startswith("https://") else org.instance_url + path
        return session.request(method, url, headers=headers, verify=org.ca_file, timeout=10, **kw)

    yield call
    session.close()


def accounts(org: LocalOrg, n: int) -> list:
    return org.insert("Account", [{"Name": f"Acme {i:04d}"} for i in range(n)])


def test_organization_and_user_records(org: LocalOrg, get: Any) -> None:
    r = get(f"{V}/query/", params={"q": "SELECT Id, Name, IsSandbox, OrganizationType FROM Organization"})
    assert r.status_code == 200, r.text
    (rec,) = r.json()["records"]
    assert rec["Id"] == org.org_id and rec["IsSandbox"] is False
    assert rec["OrganizationType"] == "Developer Edition"
    users = get(f"{V}/query", params={"q": "SELECT Id, Username, Email, IsActive FROM User"}).json()["records"]
    assert org.credentials is not None
    assert [(u["Id"], u["Username"]) for u in users] == [(org.credentials.user_id, "user@example.com")]


def test_organization_and_user_records_have_every_field(org: LocalOrg, get: Any) -> None:
    org.add_user("ann.lee@example.com", name="Ann Lee", email="ann@example.com", active=False, approved=False)
    r = get(f"{V}/query", params={"q": "SELECT Id, Name, IsSandbox, InstanceName, OrganizationType, "
                                       "TrialExpirationDate, NamespacePrefix FROM Organization"})
    assert r.status_code == 200, r.text
    (rec,) = r.json()["records"]
    assert rec["attributes"] == {"type": "Organization", "url": f"{V}/sobjects/Organization/{org.org_id}"}
    assert rec["Id"] == org.org_id and rec["Name"] == org.name
    assert rec["IsSandbox"] is False and rec["OrganizationType"] == "Developer Edition"
    assert isinstance(rec["InstanceName"], str) and rec["InstanceName"]
    assert "TrialExpirationDate" in rec and "NamespacePrefix" in rec and rec["NamespacePrefix"] is None
    users = get(f"{V}/query", params={"q": "SELECT Id, Username, Name, Email, IsActive, ProfileId FROM User "
                                           "ORDER BY Username"}).json()["records"]
    assert [u["Username"] for u in users] == ["ann.lee@example.com", "user@example.com"]
    ann = users[0]
    assert ann["Name"] == "Ann Lee" and ann["Email"] == "ann@example.com" and ann["IsActive"] is False
    assert all(u["ProfileId"] and u["ProfileId"].startswith("00e") for u in users)
    assert all(u["IsActive"] is True for u in users[1:])
    assert get(f"{V}/sobjects/User/{ann['Id']}", params={"fields": "Username,IsActive"}).json()["IsActive"] is False


def test_default_page_is_2000_rows(org: LocalOrg, get: Any) -> None:
    accounts(org, 2001)
    for path in (f"{V}/query", f"{V}/query/", f"{V}/queryAll", f"{V}/queryAll/"):
        body = get(path, params={"q": "SELECT Id FROM Account"}).json()
        assert body["totalSize"] == 2001 and body["done"] is False and len(body["records"]) == 2000
        assert body["nextRecordsUrl"].startswith(f"{V}/query/01g") and body["nextRecordsUrl"].endswith("-2000")
        last = get(body["nextRecordsUrl"]).json()
        assert last["done"] is True and len(last["records"]) == 1 and "nextRecordsUrl" not in last
    body = get(f"{V}/query", params={"q": "SELECT Id FROM Account"},
               headers={"Sforce-Query-Options": "batchSize=5000"}).json()  # above the maximum of 2000
    assert len(body["records"]) == 2000


def test_columns_true_shape(get: Any) -> None:
    body = get(f"{V}/query", params={"q": "SELECT Id, LastName, Account.Name FROM Contact",
                                     "columns": "true"}).json()
    assert body["entityName"] == "Contact"
    cols = body["columnMetadata"]
    assert [c["columnName"] for c in cols] == ["Id", "LastName", "Account"]
    for c in cols:
        assert {"columnName", "displayName", "apexType", "aggregate", "joinColumns"} <= set(c)
        assert c["aggregate"] is False
    assert cols[1]["apexType"] == "String" and cols[1]["joinColumns"] == []
    (join,) = cols[2]["joinColumns"]
    assert join["columnName"] == "Name" and join["displayName"] == "Account.Name"
    assert "records" not in body  # metadata only, no rows
    agg = get(f"{V}/query", params={"q": "SELECT AccountId, COUNT(Id) cnt FROM Contact GROUP BY AccountId",
                                    "columns": "true"}).json()
    assert [(c["columnName"], c["aggregate"]) for c in agg["columnMetadata"]] == [("AccountId", False), ("cnt", True)]


def test_query_paging_with_next_records_url(org: LocalOrg, get: Any) -> None:
    org.page_size = 300
    accounts(org, 650)
    first = get(f"{V}/query", params={"q": "SELECT Id, Name FROM Account ORDER BY Name"})
    body = first.json()
    assert first.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert body["totalSize"] == 650 and body["done"] is False and len(body["records"]) == 300
    assert body["records"][0]["Name"] == "Acme 0000"
    assert body["nextRecordsUrl"].startswith(f"{V}/query/01g") and body["nextRecordsUrl"].endswith("-300")
    names = [r["Name"] for r in body["records"]]
    while not body["done"]:
        body = get(body["nextRecordsUrl"]).json()
        names += [r["Name"] for r in body["records"]]
    assert names == [f"Acme {i:04d}" for i in range(650)]
    assert "nextRecordsUrl" not in body


def test_batch_size_header(org: LocalOrg, get: Any) -> None:
    accounts(org, 450)
    body = get(f"{V}/query/", params={"q": "SELECT Id FROM Account"},
               headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert len(body["records"]) == 200 and body["nextRecordsUrl"].endswith("-200")
    body = get(f"{V}/query/", params={"q": "SELECT Id FROM Account"},
               headers={"Sforce-Query-Options": "batchSize=5"}).json()  # below the minimum of 200
    assert len(body["records"]) == 200
    body = get(f"{V}/query/", params={"q": "SELECT Id FROM Account"}).json()
    assert len(body["records"]) == 450 and body["done"] is True


def test_invalid_locator(get: Any) -> None:
    r = get(f"{V}/query/01gXXXXXXXXXXXXXXX-2000")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_sees_deleted_rows(org: LocalOrg, get: Any) -> None:
    (rid,) = accounts(org, 1)
    assert get(f"{V}/sobjects/Account/{rid}", "DELETE").status_code == 204
    q = {"q": "SELECT Id, IsDeleted FROM Account"}
    assert get(f"{V}/query", params=q).json()["totalSize"] == 0
    rows = get(f"{V}/queryAll/", params=q).json()["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(rid, True)]


def test_count_and_columns(org: LocalOrg, get: Any) -> None:
    accounts(org, 3)
    count = get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"}).json()
    assert count["totalSize"] == 3 and count["records"] == [] and count["done"] is True
    cols = get(f"{V}/query", params={"q": "SELECT Id, Name FROM Account", "columns": "true"}).json()
    assert cols["entityName"] == "Account" and len(cols["columnMetadata"]) == 2


@pytest.mark.parametrize("soql,code", [
    ("SELEC Id FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Nope", "INVALID_TYPE"),
    ("SELECT Nope FROM Account", "INVALID_FIELD"),
])
def test_soql_errors(get: Any, soql: str, code: str) -> None:
    r = get(f"{V}/query", params={"q": soql})
    assert r.status_code == 400
    (err,) = r.json()
    assert err["errorCode"] == code and err["message"]


def test_missing_q(get: Any) -> None:
    r = get(f"{V}/query")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_sobject_crud(org: LocalOrg, get: Any) -> None:
    created = get(f"{V}/sobjects/Account/", "POST", json={"Name": "Globex", "Industry": "Energy"})
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("001")
    rid = body["id"]
    rec = get(f"{V}/sobjects/Account/{rid}", params={"fields": "Name,Industry"}).json()
    assert rec["Name"] == "Globex" and rec["Industry"] == "Energy"
    assert rec["attributes"]["type"] == "Account"
    assert get(f"{V}/sobjects/Account/{rid}", "PATCH", json={"Name": "Globex 2"}).status_code == 204
    assert get(f"{V}/sobjects/Account/{rid}").json()["Name"] == "Globex 2"
    assert get(f"{V}/sobjects/Account/{rid}", "DELETE").status_code == 204
    missing = get(f"{V}/sobjects/Account/{rid}")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    assert get(f"{V}/sobjects/Nope/", "POST", json={"Name": "x"}).status_code == 404
    bad = get(f"{V}/sobjects/Account/", "POST", json={"NoSuchField__c": 1})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"]


def test_describe(get: Any) -> None:
    glob = get(f"{V}/sobjects/").json()
    assert "Account" in {o["name"] for o in glob["sobjects"]}
    desc = get(f"{V}/sobjects/Account/describe/").json()
    assert desc["name"] == "Account" and any(f["name"] == "Name" for f in desc["fields"])
    basic = get(f"{V}/sobjects/Account").json()
    assert basic["objectDescribe"]["name"] == "Account" and basic["recentItems"] == []
    assert "fields" not in basic["objectDescribe"]


def test_tooling_query(org: LocalOrg, get: Any) -> None:
    r = get(f"{V}/tooling/query/", params={"q": "SELECT Id, Name FROM ApexClass"})
    assert r.status_code == 200, r.text
    assert r.json()["done"] is True
    assert_401 = get(f"{V}/tooling/query/", params={"q": "SELECT Id FROM ApexClass"},
                     headers={"Authorization": "Bearer nope"})
    assert assert_401.status_code == 401


def test_simple_salesforce_against_the_org(org: LocalOrg, token: str) -> None:
    org.page_size = 250
    accounts(org, 600)
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override session.verify
    session.verify = org.ca_file
    sf = Salesforce(instance_url=org.instance_url, session_id=token, session=session, version="62.0")
    result = sf.query_all("SELECT Id, Name FROM Account")
    assert result["totalSize"] == 600 and len(result["records"]) == 600
    new = sf.Contact.create({"LastName": "Smith"})
    assert new["success"] is True
    assert sf.Contact.get(new["id"])["LastName"] == "Smith"
    assert sf.Contact.update(new["id"], {"FirstName": "Ann"}) == 204
    assert sf.Contact.delete(new["id"]) == 204
    assert sf.Account.describe()["name"] == "Account"
    assert "DailyApiRequests" in sf.limits()
    assert sf.toolingexecute("query/?q=SELECT+Id+FROM+ApexClass")["totalSize"] == 0
    org.register_apex_route("GET", "/Ping", lambda req: (200, {"pong": True}))
    assert sf.apexecute("Ping") == {"pong": True}
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT FROM")
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")
    session.close()


def test_load_sample_data(org: LocalOrg, get: Any) -> None:
    pytest.importorskip("sfjwt_ext.testing.sample")
    counts: Dict[str, int] = org.load_sample_data()
    assert counts and all(v >= 0 for v in counts.values())
    if "Account" in counts:
        body = get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"}).json()
        assert body["totalSize"] == counts["Account"]
