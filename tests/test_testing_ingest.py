"""Bulk API 2.0 ingest in the local org, driven by simple-salesforce (``sf.bulk2``), by raw
HTTP for the exact shapes, and by jsforce (``bulk2.loadAndWaitForResults``).

Shapes and codes: docs/testing-org-writes.md (Bulk API 2.0 guide)."""
from __future__ import annotations

import csv
import io
import time
from typing import Any, Dict, List

import pytest
import requests
from simple_salesforce.exceptions import SalesforceOperationError

from sfjwt_ext.client import SalesforceJWT, connect_jwt

from _writes import add_external_id, run_writes

CSV = "text/csv"


@pytest.fixture
def sf(salesforce_org: Any) -> SalesforceJWT:
    return connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)


def _rows(text: str) -> List[Dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _names(sf: SalesforceJWT, like: str, *, all_rows: bool = False) -> List[str]:
    soql = f"SELECT Name FROM Account WHERE Name LIKE '{like}' ORDER BY Name"
    result = sf.query_all(soql, include_deleted=True) if all_rows else sf.query_all(soql)
    return [r["Name"] for r in result["records"]]


def _ingest(sf: SalesforceJWT) -> str:
    return sf.base_url + "jobs/ingest"


def _create(sf: SalesforceJWT, **body: Any) -> requests.Response:
    return sf.session.post(_ingest(sf), json=body, headers={"Content-Type": "application/json"})


def _wait_final(sf: SalesforceJWT, job_id: str) -> Dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = sf.session.get(f"{_ingest(sf)}/{job_id}").json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
    pytest.fail(f"job {job_id} never finished")


def _run_job(sf: SalesforceJWT, data: str, **job: Any) -> Dict[str, Any]:
    created = _create(sf, **job)
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    put = sf.session.put(f"{_ingest(sf)}/{job_id}/batches", data=data.encode("utf-8"),
                         headers={"Content-Type": CSV})
    assert put.status_code == 201, put.text
    closed = sf.session.patch(f"{_ingest(sf)}/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200, closed.text
    return _wait_final(sf, job_id)


# ----------------------------------------------------------------------------- simple-salesforce


def test_simple_salesforce_insert_writes_every_row(sf: SalesforceJWT) -> None:
    records = [{"Name": f"Ingest {i}", "NumberOfEmployees": str(i)} for i in range(5)]
    [result] = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == 5 and result["numberRecordsFailed"] == 0
    assert _names(sf, "Ingest %") == [f"Ingest {i}" for i in range(5)]
    rows = _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    assert [r["Name"] for r in rows] == [f"Ingest {i}" for i in range(5)]
    assert {r["sf__Created"] for r in rows} == {"true"}
    stored = sf.query("SELECT Id, NumberOfEmployees FROM Account WHERE Name = 'Ingest 3'")["records"][0]
    assert stored["NumberOfEmployees"] == 3
    assert rows[3]["sf__Id"] == stored["Id"]


def test_a_bad_row_fails_alone_with_salesforces_error(sf: SalesforceJWT) -> None:
    records = [{"Name": "Good 1", "Website": "a"}, {"Name": "", "Website": "nameless"}, {"Name": "Good 2", "Website": "b"}]
    [result] = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == 3
    assert result["numberRecordsFailed"] == 1
    assert _names(sf, "Good %") == ["Good 1", "Good 2"]
    [failed] = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert failed["Website"] == "nameless"
    assert failed["sf__Error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]")
    assert failed["sf__Id"] == ""
    assert len(_rows(sf.bulk2.Account.get_successful_records(result["job_id"]))) == 2
    assert _rows(sf.bulk2.Account.get_unprocessed_records(result["job_id"])) == []


def test_simple_salesforce_update_upsert_delete_and_hard_delete(salesforce_org: Any, sf: SalesforceJWT) -> None:
    ids = salesforce_org.insert("Account", [{"Name": f"Old {i}"} for i in range(4)])
    [updated] = sf.bulk2.Account.update(records=[{"Id": ids[0], "Name": "Renamed 0"},
                                                 {"Id": ids[1], "NumberOfEmployees": "12"}], wait=0)
    assert updated["numberRecordsFailed"] == 0
    assert sf.Account.get(ids[0])["Name"] == "Renamed 0"
    assert sf.Account.get(ids[1])["NumberOfEmployees"] == 12
    assert sf.Account.get(ids[1])["Name"] == "Old 1"  # an empty CSV value leaves the field alone

    # upsert on Id: an Id updates, a blank Id creates (simple-salesforce's default external id)
    [upserted] = sf.bulk2.Account.upsert(records=[{"Id": ids[2], "Name": "Upserted 2"}, {"Id": "", "Name": "Upserted new"}],
                                         external_id_field="Id", wait=0)
    assert upserted["numberRecordsFailed"] == 0
    created = {r["Name"]: r["sf__Created"] for r in _rows(sf.bulk2.Account.get_successful_records(upserted["job_id"]))}
    assert created == {"Upserted 2": "false", "Upserted new": "true"}
    assert sf.Account.get(ids[2])["Name"] == "Upserted 2"

    [again] = sf.bulk2.Account.upsert(records=[{"Id": "001000000000000AAA", "Name": "x"}, {"Id": "bad", "Name": "y"}],
                                      external_id_field="Id", wait=0)
    errors = sorted(r["sf__Error"].split(":")[0] for r in _rows(sf.bulk2.Account.get_failed_records(again["job_id"])))
    assert errors == ["INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"]

    [deleted] = sf.bulk2.Account.delete(records=[{"Id": ids[0]}], wait=0)
    assert deleted["numberRecordsProcessed"] == 1 and deleted["numberRecordsFailed"] == 0
    assert "Renamed 0" not in _names(sf, "%")
    assert "Renamed 0" in _names(sf, "%", all_rows=True)  # soft delete: queryAll still sees it

    [gone] = sf.bulk2.Account.upsert(records=[{"Id": ids[0], "Name": "Back?"}], external_id_field="Id", wait=0)
    [error] = _rows(sf.bulk2.Account.get_failed_records(gone["job_id"]))
    assert error["sf__Error"].startswith("ENTITY_IS_DELETED:")

    [hard] = sf.bulk2.Account.hard_delete(records=[{"Id": ids[3]}], wait=0)
    assert hard["numberRecordsFailed"] == 0
    assert "Old 3" not in _names(sf, "%", all_rows=True)


def test_update_of_missing_and_malformed_ids_fails_those_rows(salesforce_org: Any, sf: SalesforceJWT) -> None:
    [good] = salesforce_org.insert("Account", [{"Name": "Stays"}])
    salesforce_org.insert("Account", [{"Name": "Gone"}])
    gone = sf.query("SELECT Id FROM Account WHERE Name = 'Gone'")["records"][0]["Id"]
    sf.Account.delete(gone)
    [result] = sf.bulk2.Account.update(records=[{"Id": good, "Name": "Changed"}, {"Id": "not-an-id", "Name": "x"},
                                                {"Id": gone, "Name": "y"}], wait=0)
    assert result["numberRecordsFailed"] == 2
    errors = {r["Id"]: r["sf__Error"] for r in _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))}
    assert errors["not-an-id"].startswith("MALFORMED_ID:")
    assert errors[gone].startswith("ENTITY_IS_DELETED:")
    assert sf.Account.get(good)["Name"] == "Changed"


def test_a_header_naming_an_unknown_field_fails_the_job(sf: SalesforceJWT) -> None:
    with pytest.raises(SalesforceOperationError, match="Field name not found : Nope__c"):
        sf.bulk2.Account.insert(records=[{"Name": "x", "Nope__c": "y"}], wait=0)
    assert _names(sf, "x") == []


# ----------------------------------------------------------------------------- raw shapes


def test_job_lifecycle_shapes_and_status_codes(sf: SalesforceJWT) -> None:
    created = _create(sf, object="Account", operation="insert", columnDelimiter="SEMICOLON", lineEnding="CRLF")
    assert created.status_code == 200
    info = created.json()
    job_id = info["id"]
    assert job_id.startswith("750") and len(job_id) == 18
    assert info["state"] == "Open" and info["operation"] == "insert" and info["object"] == "Account"
    assert info["contentType"] == "CSV" and info["concurrencyMode"] == "Parallel"
    assert info["columnDelimiter"] == "SEMICOLON" and info["lineEnding"] == "CRLF"
    assert info["contentUrl"] == f"services/data/v{sf.sf_version}/jobs/ingest/{job_id}/batches"
    assert info["apiVersion"] == float(sf.sf_version)
    for key in ("createdById", "createdDate", "systemModstamp"):
        assert info[key]

    data = 'Name;Website\r\n"Semi; colon";one\r\nPlain;two\r\n'
    put = sf.session.put(f"{_ingest(sf)}/{job_id}/batches", data=data.encode(), headers={"Content-Type": CSV})
    assert put.status_code == 201 and put.content == b""
    again = sf.session.put(f"{_ingest(sf)}/{job_id}/batches", data=data.encode(), headers={"Content-Type": CSV})
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "BULK_API_ERROR"

    closed = sf.session.patch(f"{_ingest(sf)}/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    final = _wait_final(sf, job_id)
    assert final["state"] == "JobComplete" and final["jobType"] == "V2Ingest"
    assert final["numberRecordsProcessed"] == 2 and final["numberRecordsFailed"] == 0
    for key in ("retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"):
        assert isinstance(final[key], int)
    assert _names(sf, "%") == ["Plain", "Semi; colon"]

    listing = sf.session.get(_ingest(sf)).json()
    assert listing["done"] is True and "nextRecordsUrl" in listing
    assert [j["id"] for j in listing["records"]] == [job_id]

    ok = sf.session.get(f"{_ingest(sf)}/{job_id}/successfulResults/")
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(ok.text))) == ["sf__Id", "sf__Created", "Name", "Website"]
    failed = sf.session.get(f"{_ingest(sf)}/{job_id}/failedResults/")
    assert next(csv.reader(io.StringIO(failed.text))) == ["sf__Id", "sf__Error", "Name", "Website"]
    for spelling in ("unprocessedrecords", "unprocessedRecords"):
        unprocessed = sf.session.get(f"{_ingest(sf)}/{job_id}/{spelling}/")
        assert unprocessed.status_code == 200
        assert next(csv.reader(io.StringIO(unprocessed.text))) == ["Name", "Website"]

    deleted = sf.session.delete(f"{_ingest(sf)}/{job_id}")
    assert deleted.status_code == 204
    assert sf.session.get(f"{_ingest(sf)}/{job_id}").status_code == 404


def test_aborted_job_changes_nothing_and_reports_rows_unprocessed(sf: SalesforceJWT) -> None:
    job_id = _create(sf, object="Account", operation="insert").json()["id"]
    sf.session.put(f"{_ingest(sf)}/{job_id}/batches", data=b"Name\nNever 1\nNever 2\n", headers={"Content-Type": CSV})
    aborted = sf.session.patch(f"{_ingest(sf)}/{job_id}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert _names(sf, "Never %") == []
    rows = _rows(sf.session.get(f"{_ingest(sf)}/{job_id}/unprocessedrecords/").text)
    assert [r["Name"] for r in rows] == ["Never 1", "Never 2"]
    again = sf.session.patch(f"{_ingest(sf)}/{job_id}", json={"state": "UploadComplete"})
    assert again.status_code == 400


@pytest.mark.parametrize("body, code", [
    ({"object": "NoSuchObject__c", "operation": "insert"}, "INVALIDJOB"),
    ({"object": "Account", "operation": "merge"}, "INVALIDJOB"),
    ({"object": "Account", "operation": "upsert"}, "INVALIDJOB"),                      # no externalIdFieldName
    ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Website"}, "INVALIDJOB"),
    ({"object": "Account", "operation": "insert", "columnDelimiter": "SPACE"}, "INVALIDJOB"),
    ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "INVALIDJOB"),
    ({"operation": "insert"}, "INVALIDJOB"),
])
def test_bad_job_requests_are_refused(sf: SalesforceJWT, body: Dict[str, Any], code: str) -> None:
    response = _create(sf, **body)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code and error["message"]


def test_line_endings_that_do_not_match_the_job_fail_it(sf: SalesforceJWT) -> None:
    info = _run_job(sf, "Name\r\nCRLF row\r\n", object="Account", operation="insert", lineEnding="LF")
    assert info["state"] == "Failed"
    assert "LineEnding is invalid on user data" in info["errorMessage"]
    assert _names(sf, "CRLF row") == []


def test_na_sets_a_field_to_null(salesforce_org: Any, sf: SalesforceJWT) -> None:
    [rid] = salesforce_org.insert("Account", [{"Name": "Has site", "Website": "example.com"}])
    info = _run_job(sf, f"Id,Website\n{rid},#N/A\n", object="Account", operation="update")
    assert info["numberRecordsFailed"] == 0
    assert sf.Account.get(rid)["Website"] is None


def test_type_errors_and_too_long_values_fail_their_rows(sf: SalesforceJWT) -> None:
    data = "Name,NumberOfEmployees,BillingCity\nFine,3,Paris\nBad number,many,Rome\nLong city,4," + "x" * 41 + "\n"
    info = _run_job(sf, data, object="Account", operation="insert")
    assert info["numberRecordsProcessed"] == 3 and info["numberRecordsFailed"] == 2
    job_id = info["id"]
    errors = {r["Name"]: r["sf__Error"] for r in _rows(sf.session.get(f"{_ingest(sf)}/{job_id}/failedResults/").text)}
    assert errors["Bad number"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert errors["Long city"].startswith("STRING_TOO_LONG:")
    assert _names(sf, "%") == ["Fine"]


# ----------------------------------------------------------------------------- external ids


def test_upsert_by_external_id_and_relationship_column(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org, "Account")
    salesforce_org.insert("Account", [{"Name": "Before", "Legacy_Id__c": "X-1"}])
    [result] = sf.bulk2.Account.upsert(records=[{"Legacy_Id__c": "X-1", "Name": "After"},
                                                {"Legacy_Id__c": "X-2", "Name": "Brand new"}],
                                       external_id_field="Legacy_Id__c", wait=0)
    assert result["numberRecordsFailed"] == 0
    assert _names(sf, "%") == ["After", "Brand new"]
    # a child row names its parent by the parent's external id
    info = _run_job(sf, "LastName,Account.Legacy_Id__c\nChild,X-2\nOrphan,X-404\n", object="Contact", operation="insert")
    assert info["numberRecordsFailed"] == 1
    contact = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'Child'")["records"][0]
    assert contact["Account"]["Name"] == "Brand new"


def test_a_duplicate_unique_value_fails_its_row(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org, "Account")
    [result] = sf.bulk2.Account.insert(records=[{"Name": "First", "Legacy_Id__c": "U-1"},
                                                {"Name": "Second", "Legacy_Id__c": "U-1"}], wait=0)
    assert result["numberRecordsFailed"] == 1
    [failed] = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert failed["Name"] == "Second" and failed["sf__Error"].startswith("DUPLICATE_VALUE:")
    assert _names(sf, "%") == ["First"]


def test_custom_fields_added_later_are_ingested(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org, "Account", "Batch_Code__c")
    [result] = sf.bulk2.Account.insert(records=[{"Name": "Custom", "Batch_Code__c": "B-7"}], wait=0)
    assert result["numberRecordsFailed"] == 0
    assert sf.query("SELECT Batch_Code__c FROM Account")["records"][0]["Batch_Code__c"] == "B-7"


# ----------------------------------------------------------------------------- jsforce


def test_jsforce_load_and_wait_for_results(salesforce_org: Any, sf: SalesforceJWT) -> None:
    events = run_writes(salesforce_org, ["bulk2"], SF_PREFIX="JS Bulk")
    bulk2 = events["bulk2"]
    assert bulk2["inserted"] == 3 and bulk2["names"] == ["JS Bulk 1", "JS Bulk 2", "JS Bulk 3"]
    assert bulk2["created"] == ["true", "true", "true"]
    assert len(bulk2["failed"]) == 1 and bulk2["failed"][0].startswith("REQUIRED_FIELD_MISSING:")
    assert bulk2["unprocessed"] == 0 and bulk2["updated"] == 3
    assert bulk2["deleted"] == bulk2["ids"][:1]
    rows = sf.query("SELECT Name, NumberOfEmployees FROM Account ORDER BY Name")["records"]
    assert [(r["Name"], r["NumberOfEmployees"]) for r in rows] == [("JS Bulk 2", 100), ("JS Bulk 3", 100)]
