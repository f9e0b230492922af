"""Bulk API 2.0, Bulk API 1.0 and the SOAP Metadata API of the local org (sfjwt_ext.testing.core.jobs).

Driven by simple-salesforce's own clients (sf.bulk2, sf.bulk, sf.mdapi with zeep and the
bundled metadata.wsdl) with a token from a JWT signed here with PyJWT, plus raw requests for
the exact status codes, headers and bodies.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple
from xml.etree import ElementTree as ET

import jwt
import pytest
import requests

DATALOAD_NS = "http://www.force.com/2009/06/asyncapi/dataload"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Ctx:
    org: Any
    sf: Any
    token: str
    http: requests.Session

    @property
    def v(self) -> str:
        return str(self.org.api_version)

    def url(self, path: str) -> str:
        return self.org.instance_url.rstrip("/") + path

    def bulk2(self, method: str, path: str = "", **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   "Accept": "application/json"}
        headers.update(kw.pop("headers", {}))
        return self.http.request(method, self.url(f"/services/data/v{self.v}/jobs/query{path}"),
                                 headers=headers, timeout=10, **kw)

    def bulk1(self, method: str, path: str = "", *, fmt: str = "JSON", token: str = "", **kw: Any) -> requests.Response:
        ct = {"JSON": "application/json", "XML": "application/xml", "CSV": "text/csv"}[fmt]
        headers = {"X-SFDC-Session": token or self.token, "Content-Type": f"{ct}; charset=UTF-8"}
        headers.update(kw.pop("headers", {}))
        return self.http.request(method, self.url(f"/services/async/{self.v}/job{path}"),
                                 headers=headers, timeout=10, **kw)


def _get_token(org: Any) -> str:
    creds = org.credentials
    key = Path(creds.private_key_file).read_bytes()
    claims = {"iss": creds.consumer_key, "sub": creds.username, "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    assertion = jwt.encode(claims, key, algorithm="RS256")
    resp = requests.post(org.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion},
                         verify=org.ca_file, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["instance_url"].rstrip("/") == org.instance_url.rstrip("/")
    return str(body["access_token"])


@pytest.fixture
def ctx(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    from simple_salesforce import Salesforce

    # zeep (mdapi) uses its own requests.Session: the CA must come from the environment
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce_org.ca_file)
    token = _get_token(salesforce_org)
    http = requests.Session()
    http.verify = salesforce_org.ca_file
    sf = Salesforce(session_id=token, instance_url=salesforce_org.instance_url, session=http,
                    version=str(salesforce_org.api_version))
    return Ctx(salesforce_org, sf, token, http)


def _accounts(org: Any, n: int, prefix: str = "Bulk") -> List[str]:
    return org.insert("Account", [{"Name": f"{prefix} {i:03d}"} for i in range(n)])


def _parse_csv(text: str, delimiter: str = ",") -> Tuple[List[str], List[List[str]]]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return rows[0], rows[1:]


def _poll(fn: Any, done: Any, *, limit: int = 50) -> List[Any]:
    seen = []
    for _ in range(limit):
        value = fn()
        seen.append(value)
        if done(value):
            return seen
    raise AssertionError(f"not done after {limit} polls: {seen[-3:]}")


# =========================================================================== Bulk API 2.0


def test_bulk2_query_through_simple_salesforce(ctx: Ctx) -> None:
    ids = _accounts(ctx.org, 7)
    pages = list(ctx.sf.bulk2.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name",
                                            wait=0))
    assert len(pages) == 1
    header, rows = _parse_csv(pages[0])
    assert header == ["Id", "Name"]
    assert [r[1] for r in rows] == [f"Bulk {i:03d}" for i in range(7)]
    assert sorted(r[0] for r in rows) == sorted(ids)
    # Bulk CSV quotes every value
    assert pages[0].splitlines()[1].startswith('"')


def test_bulk2_locator_paging_over_several_pages(ctx: Ctx) -> None:
    _accounts(ctx.org, 25, prefix="Paged")
    soql = "SELECT Id, Name FROM Account WHERE Name LIKE 'Paged%' ORDER BY Name"
    pages = list(ctx.sf.bulk2.Account.query(soql, max_records=10, wait=0))
    assert len(pages) == 3
    names = [r[1] for page in pages for r in _parse_csv(page)[1]]
    assert names == [f"Paged {i:03d}" for i in range(25)]

    # the raw protocol: Sforce-Locator / Sforce-NumberOfRecords, "null" on the last page
    job = ctx.bulk2("POST", json={"operation": "query", "query": soql}).json()
    _poll(lambda: ctx.bulk2("GET", f"/{job['id']}").json()["state"], lambda s: s == "JobComplete")
    seen: List[Tuple[str, str]] = []
    params: Dict[str, Any] = {"maxRecords": 10}
    while True:
        resp = ctx.bulk2("GET", f"/{job['id']}/results", params=params, headers={"Accept": "text/csv"})
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/csv")
        seen.append((resp.headers["Sforce-NumberOfRecords"], resp.headers["Sforce-Locator"]))
        if resp.headers["Sforce-Locator"] == "null":
            break
        params = {"maxRecords": 10, "locator": resp.headers["Sforce-Locator"]}
    assert [n for n, _ in seen] == ["10", "10", "5"]
    assert seen[-1][1] == "null" and all(loc not in ("", "null") for _, loc in seen[:-1])
    bad = ctx.bulk2("GET", f"/{job['id']}/results", params={"locator": "not-a-locator!"})
    assert bad.status_code == 400


def test_bulk2_job_lifecycle_and_in_progress_hold(ctx: Ctx) -> None:
    _accounts(ctx.org, 3, prefix="Hold")
    ctx.org.bulk.hold_polls = 2
    created = ctx.bulk2("POST", json={"operation": "query", "query": "SELECT Id, Name FROM Account"})
    assert created.status_code == 200
    job = created.json()
    assert job["id"].startswith("750") and len(job["id"]) == 18
    assert job["state"] == "UploadComplete"
    assert (job["operation"], job["object"], job["contentType"]) == ("query", "Account", "CSV")
    assert (job["lineEnding"], job["columnDelimiter"]) == ("LF", "COMMA")

    states = [ctx.bulk2("GET", f"/{job['id']}").json()["state"] for _ in range(3)]
    assert states == ["InProgress", "InProgress", "JobComplete"]
    info = ctx.bulk2("GET", f"/{job['id']}").json()
    assert info["jobType"] == "V2Query" and info["numberRecordsProcessed"] == 3

    # results before completion are refused; abort/delete work as documented
    pending = ctx.bulk2("POST", json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    early = ctx.bulk2("GET", f"/{pending['id']}/results")
    assert early.status_code == 400
    aborted = ctx.bulk2("PATCH", f"/{pending['id']}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    listed = ctx.bulk2("GET").json()
    assert listed["done"] is True
    assert {r["id"] for r in listed["records"]} >= {job["id"], pending["id"]}
    assert ctx.bulk2("DELETE", f"/{pending['id']}").status_code == 204
    assert ctx.bulk2("GET", f"/{pending['id']}").status_code == 404

    # simple-salesforce's own polling copes with InProgress jobs
    ctx.org.bulk.hold_polls = 3
    pages = list(ctx.sf.bulk2.Account.query("SELECT Name FROM Account WHERE Name LIKE 'Hold%'", wait=0))
    assert sorted(r[0] for r in _parse_csv(pages[0])[1]) == ["Hold 000", "Hold 001", "Hold 002"]


def test_bulk2_query_all_delimiters_and_relationship_columns(ctx: Ctx) -> None:
    acct = ctx.org.insert("Account", [{"Name": "Parent Co"}])[0]
    ctx.org.insert("Contact", [{"LastName": "Kid", "AccountId": acct}, {"LastName": "Orphan"}])
    gone = ctx.org.insert("Account", [{"Name": "Gone Co"}])[0]
    ctx.org.store.delete("Account", gone)

    soql = "SELECT Id, LastName, Account.Name FROM Contact ORDER BY LastName"
    page = list(ctx.sf.bulk2.Contact.query(soql, column_delimiter="SEMICOLON", line_ending="CRLF", wait=0))[0]
    assert "\r\n" in page
    header, rows = _parse_csv(page.replace("\r\n", "\n"), delimiter=";")
    assert header == ["Id", "LastName", "Account.Name"]
    assert [(r[1], r[2]) for r in rows] == [("Kid", "Parent Co"), ("Orphan", "")]

    live = list(ctx.sf.bulk2.Account.query("SELECT Name FROM Account WHERE Name LIKE '%Co'", wait=0))[0]
    everything = list(ctx.sf.bulk2.Account.query_all("SELECT Name FROM Account WHERE Name LIKE '%Co'", wait=0))[0]
    assert sorted(r[0] for r in _parse_csv(live)[1]) == ["Parent Co"]
    assert sorted(r[0] for r in _parse_csv(everything)[1]) == ["Gone Co", "Parent Co"]


def test_bulk2_bad_queries(ctx: Ctx) -> None:
    resp = ctx.bulk2("POST", json={"operation": "query", "query": "SELECT Id FROM NoSuchThing"})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "INVALID_TYPE"
    resp = ctx.bulk2("POST", json={"operation": "query",
                                   "query": "SELECT Id, (SELECT Id FROM Contacts) FROM Account"})
    assert resp.status_code == 400
    assert resp.json() == [{"errorCode": "INVALIDJOB",
                            "message": "Aggregate Relationships not supported in Bulk Query with CSV content type"}]
    assert ctx.bulk2("GET", "/750000000000000AAA").status_code == 404


def test_bulk2_expired_session(ctx: Ctx) -> None:
    from simple_salesforce.exceptions import SalesforceExpiredSession

    job = ctx.bulk2("POST", json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    ctx.org.expire_all_sessions()
    for method, path in (("POST", ""), ("GET", ""), ("GET", f"/{job['id']}"), ("GET", f"/{job['id']}/results")):
        resp = ctx.bulk2(method, path, json={"operation": "query", "query": "SELECT Id FROM Account"}
                         if method == "POST" else None)
        assert resp.status_code == 401, (method, path)
        assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):
        list(ctx.sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))


# =========================================================================== Bulk API 1.0


def test_bulk1_query_json_through_simple_salesforce(ctx: Ctx) -> None:
    ids = _accounts(ctx.org, 5, prefix="One")
    records = ctx.sf.bulk.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'One%' ORDER BY Name", wait=0)
    assert [r["Name"] for r in records] == [f"One {i:03d}" for i in range(5)]
    assert sorted(r["Id"] for r in records) == sorted(ids)
    assert records[0]["attributes"]["type"] == "Account"
    assert records[0]["attributes"]["url"].endswith(f"/sobjects/Account/{records[0]['Id']}")

    # several result files per batch, batches held InProgress for a few polls
    ctx.org.bulk.bulk1_result_size = 2
    ctx.org.bulk.hold_polls = 2
    records = ctx.sf.bulk.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'One%'", wait=0)
    assert sorted(r["Name"] for r in records) == [f"One {i:03d}" for i in range(5)]
    job_id = max(ctx.org.bulk.bulk1_jobs.values(), key=lambda j: j.created).id
    job = ctx.org.bulk.bulk1_jobs[job_id]
    assert len(job.batches[0].result_ids) == 3
    assert job.state == "Closed"


def test_bulk1_query_all_and_lazy(ctx: Ctx) -> None:
    keep, drop = ctx.org.insert("Account", [{"Name": "QA Keep"}, {"Name": "QA Drop"}])
    ctx.org.store.delete("Account", drop)
    live = ctx.sf.bulk.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'QA%'", wait=0)
    everything = ctx.sf.bulk.Account.query_all("SELECT Id, Name FROM Account WHERE Name LIKE 'QA%'", wait=0)
    assert [r["Id"] for r in live] == [keep]
    assert sorted(r["Id"] for r in everything) == sorted([keep, drop])
    lazy = ctx.sf.bulk.Account.query("SELECT Id FROM Account WHERE Name LIKE 'QA%'", lazy_operation=True, wait=0)
    assert [r["Id"] for chunk in lazy for r in chunk] == [keep]


def test_bulk1_failed_batch_raises_in_simple_salesforce(ctx: Ctx) -> None:
    from simple_salesforce.exceptions import SalesforceGeneralError

    with pytest.raises(SalesforceGeneralError) as info:
        ctx.sf.bulk.Account.query("SELECT NoSuchField__c FROM Account", wait=0)
    assert "InvalidBatch" in str(info.value) and "INVALID_FIELD" in str(info.value)


def test_bulk1_xml_and_csv_jobs(ctx: Ctx) -> None:
    _accounts(ctx.org, 3, prefix="Xml")
    job_xml = (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD_NS}">'
               "<operation>query</operation><object>Account</object><contentType>{ct}</contentType></jobInfo>")
    for ct in ("XML", "CSV"):
        resp = ctx.bulk1("POST", fmt="XML", data=job_xml.format(ct=ct))
        assert resp.status_code == 201, resp.text
        info = ET.fromstring(resp.content)
        assert info.tag == f"{{{DATALOAD_NS}}}jobInfo"
        job_id = info.findtext(f"{{{DATALOAD_NS}}}id")
        assert info.findtext(f"{{{DATALOAD_NS}}}state") == "Open"
        assert info.findtext(f"{{{DATALOAD_NS}}}contentType") == ct
        batch = ctx.bulk1("POST", f"/{job_id}/batch", fmt="CSV" if ct == "CSV" else "XML",
                          data="SELECT Id, Name FROM Account WHERE Name LIKE 'Xml%' ORDER BY Name")
        assert batch.status_code == 201
        batch_id = ET.fromstring(batch.content).findtext(f"{{{DATALOAD_NS}}}id")
        states = _poll(lambda: ET.fromstring(ctx.bulk1("GET", f"/{job_id}/batch/{batch_id}", fmt="XML").content)
                       .findtext(f"{{{DATALOAD_NS}}}state"), lambda s: s == "Completed")
        assert states[-1] == "Completed"
        listing = ET.fromstring(ctx.bulk1("GET", f"/{job_id}/batch/{batch_id}/result", fmt="XML").content)
        assert listing.tag == f"{{{DATALOAD_NS}}}result-list"
        result_ids = [e.text for e in listing]
        assert len(result_ids) == 1
        data = ctx.bulk1("GET", f"/{job_id}/batch/{batch_id}/result/{result_ids[0]}", fmt="XML")
        if ct == "CSV":
            header, rows = _parse_csv(data.text)
            assert header == ["Id", "Name"]
            assert [r[1] for r in rows] == ["Xml 000", "Xml 001", "Xml 002"]
        else:
            root = ET.fromstring(data.content)
            names = [r.findtext(f"{{{DATALOAD_NS}}}Name") for r in root.findall(f"{{{DATALOAD_NS}}}records")]
            assert names == ["Xml 000", "Xml 001", "Xml 002"]
        batches = ET.fromstring(ctx.bulk1("GET", f"/{job_id}/batch", fmt="XML").content)
        assert [b.findtext(f"{{{DATALOAD_NS}}}id") for b in batches] == [batch_id]
        request_text = ctx.bulk1("GET", f"/{job_id}/batch/{batch_id}/request", fmt="XML").text
        assert request_text.startswith("SELECT Id, Name FROM Account")
        closed = ctx.bulk1("POST", f"/{job_id}", fmt="XML",
                           data=f'<jobInfo xmlns="{DATALOAD_NS}"><state>Closed</state></jobInfo>')
        assert ET.fromstring(closed.content).findtext(f"{{{DATALOAD_NS}}}state") == "Closed"
    missing = ctx.bulk1("GET", "/750000000000000AAA", fmt="JSON")
    assert missing.status_code == 400 and missing.json()["exceptionCode"] == "InvalidJob"


def test_bulk1_expired_session_json_and_xml(ctx: Ctx) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    job = ctx.bulk1("POST", json={"operation": "query", "object": "Account", "contentType": "JSON"}).json()
    ctx.org.expire_all_sessions()
    resp = ctx.bulk1("GET", f"/{job['id']}", fmt="JSON")
    assert resp.status_code == 400
    assert resp.json() == {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"}

    resp = ctx.bulk1("POST", fmt="XML", data=f'<jobInfo xmlns="{DATALOAD_NS}"><operation>query</operation>'
                                             "<object>Account</object></jobInfo>")
    assert resp.status_code == 400
    root = ET.fromstring(resp.content)
    assert root.tag == f"{{{DATALOAD_NS}}}error"
    assert root.findtext(f"{{{DATALOAD_NS}}}exceptionCode") == "InvalidSessionId"
    assert root.findtext(f"{{{DATALOAD_NS}}}exceptionMessage") == "Invalid session id"

    unknown = ctx.bulk1("GET", f"/{job['id']}", fmt="JSON", token="00Dnotatoken")
    assert unknown.status_code == 400 and unknown.json()["exceptionCode"] == "InvalidSessionId"
    with pytest.raises(SalesforceMalformedRequest) as info:
        ctx.sf.bulk.Account.query("SELECT Id FROM Account", wait=0)
    assert info.value.status == 400
    assert info.value.content["exceptionCode"] == "InvalidSessionId"


# =========================================================================== Metadata API (SOAP)


def _package_zip(files: Dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_mdapi_describe_and_list_metadata(ctx: Ctx) -> None:
    described = ctx.sf.mdapi.describe_metadata()
    names = {o.xmlName for o in described.metadataObjects}
    assert {"ApexClass", "CustomObject", "ApexTrigger"} <= names
    apex = next(o for o in described.metadataObjects if o.xmlName == "ApexClass")
    assert (apex.directoryName, apex.suffix, apex.metaFile, apex.inFolder) == ("classes", "cls", True, False)
    assert described.partialSaveAllowed is True and described.testRequired is False

    query = ctx.sf.mdapi.ListMetadataQuery(type="CustomObject")
    listed = ctx.sf.mdapi.list_metadata([query])
    full_names = {p.fullName for p in listed}
    assert "Account" in full_names
    account = next(p for p in listed if p.fullName == "Account")
    assert account.type == "CustomObject" and account.fileName == "objects/Account.object"
    assert account.createdDate.year >= 2000   # parsed as xsd:dateTime by zeep


def test_mdapi_deploy_list_and_retrieve(ctx: Ctx) -> None:
    package = _package_zip({
        "package.xml": '<?xml version="1.0" encoding="UTF-8"?><Package xmlns="http://soap.sforce.com/2006/04/metadata">'
                       "<types><members>HelloBulk</members><name>ApexClass</name></types>"
                       "<version>62.0</version></Package>",
        "classes/HelloBulk.cls": "public class HelloBulk { }",
        "classes/HelloBulk.cls-meta.xml": "<ApexClass/>",
    })
    ctx.org.bulk.hold_polls = 1
    async_id, state = ctx.sf.mdapi.deploy(io.BytesIO(package), sandbox=False)
    assert async_id and async_id.startswith("0Af") and state == "Queued"
    statuses = _poll(lambda: ctx.sf.mdapi.check_deploy_status(async_id), lambda s: s[0] in ("Succeeded", "Failed"))
    assert statuses[0][0] == "InProgress"
    status, detail, deployment, tests = statuses[-1]
    assert status == "Succeeded"
    assert deployment["total_count"] == "1" and deployment["deployed_count"] == "1"
    assert deployment["errors"] == []

    listed = ctx.sf.mdapi.list_metadata([ctx.sf.mdapi.ListMetadataQuery(type="ApexClass")])
    assert [p.fullName for p in listed] == ["HelloBulk"]
    read = ctx.sf.mdapi.ApexClass.read(["HelloBulk", "Missing"])
    assert (read[0].fullName, read[0].content, read[0].status) == ("HelloBulk", b"public class HelloBulk { }", "Active")
    assert read[1].fullName is None      # Salesforce answers an empty record for unknown names

    retrieve_id, state = ctx.sf.mdapi.retrieve("retrieve", unpackaged={"ApexClass": ["HelloBulk", "Missing"]})
    assert retrieve_id and state == "Queued"
    statuses = _poll(lambda: ctx.sf.mdapi.check_retrieve_status(retrieve_id), lambda s: s[0] == "Succeeded")
    state, error, messages = statuses[-1]
    assert error is None
    # RetrieveResult.messages sit directly under <result> (metadata.wsdl); simple-salesforce looks
    # for them under details/ (a bug of its own), so read the element it parsed
    ns = {"mt": "http://soap.sforce.com/2006/04/metadata"}
    result = ctx.sf.mdapi.retrieve_retrieve_result(retrieve_id, "false")
    problems = [(m.findtext("mt:fileName", None, ns), m.findtext("mt:problem", None, ns))
                for m in result.findall("mt:messages", ns)]
    assert problems == [("package.xml", "Entity of type 'ApexClass' named 'Missing' cannot be found")]
    assert result.findtext("mt:zipFile", None, ns) is None   # includeZip=false
    state, error, messages, zip_bytes = ctx.sf.mdapi.retrieve_zip(retrieve_id)
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        assert zf.read("classes/HelloBulk.cls") == b"public class HelloBulk { }"
        assert b"<members>HelloBulk</members>" in zf.read("package.xml")


def test_mdapi_bad_zip_fails_deploy(ctx: Ctx) -> None:
    async_id, _state = ctx.sf.mdapi.deploy(io.BytesIO(b"not a zip"), sandbox=True)
    status, _detail, deployment, _tests = ctx.sf.mdapi.check_deploy_status(async_id)
    assert status == "Failed"
    assert deployment["failed_count"] == "1"


def test_mdapi_expired_session_soap_fault(ctx: Ctx) -> None:
    import zeep.exceptions
    from simple_salesforce.exceptions import SalesforceGeneralError

    mdapi = ctx.sf.mdapi
    mdapi.describe_metadata()   # works before
    ctx.org.expire_all_sessions()

    with pytest.raises(zeep.exceptions.Fault) as info:
        mdapi.describe_metadata()
    assert info.value.code == "sf:INVALID_SESSION_ID"
    prefix = ("INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session. "
              "Session not found, missing session hash: ")
    assert info.value.message.startswith(prefix)
    assert ctx.token not in info.value.message

    with pytest.raises(SalesforceGeneralError) as general:
        mdapi.deploy(io.BytesIO(_package_zip({"package.xml": "<Package/>"})), sandbox=True)
    assert general.value.status == 500

    envelope = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:met="http://soap.sforce.com/2006/04/metadata"><soapenv:Header><met:SessionHeader>'
                f"<met:sessionId>{ctx.token}</met:sessionId></met:SessionHeader></soapenv:Header>"
                "<soapenv:Body><met:describeMetadata><met:asOfVersion>62.0</met:asOfVersion>"
                "</met:describeMetadata></soapenv:Body></soapenv:Envelope>")
    raw = ctx.http.post(ctx.url(f"/services/Soap/m/{ctx.v}"), data=envelope,
                        headers={"Content-Type": "text/xml", "SOAPAction": "describeMetadata"}, timeout=10)
    assert raw.status_code == 500
    assert raw.headers["Content-Type"].startswith("text/xml")
    fault = ET.fromstring(raw.content).find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "sf:INVALID_SESSION_ID"
    assert fault.findtext("faultstring").startswith(prefix)
    assert fault.findtext("faultstring").endswith(
        "This error usually occurs after a session expires or a user logs out.")

    # a fresh login works again for all three flavours
    token = _get_token(ctx.org)
    fresh = requests.post(ctx.url(f"/services/Soap/m/{ctx.v}"), data=envelope.replace(ctx.token, token),
                          headers={"Content-Type": "text/xml", "SOAPAction": "describeMetadata"},
                          verify=ctx.org.ca_file, timeout=10)
    assert fresh.status_code == 200 and b"describeMetadataResponse" in fresh.content


def test_mdapi_session_not_valid_for_api(ctx: Ctx) -> None:
    import zeep.exceptions

    ctx.org.reject_sessions = True
    with pytest.raises(zeep.exceptions.Fault) as info:
        ctx.sf.mdapi.describe_metadata()
    assert info.value.code == "sf:INVALID_SESSION_ID"
    assert info.value.message == "INVALID_SESSION_ID: This session is not valid for use with the API"
