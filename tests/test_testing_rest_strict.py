"""The local org as strict as Salesforce on writes, describe and versions (issue 20 items 1, 6-10,
15-17; issue 18 item 11): where a user's test would pass here and fail in production, or the
reverse. Raw HTTPS with requests and simple-salesforce against ``salesforce_org``; the write
rules are checked through every write API (REST, Collections, tree, extid upsert, Bulk 2.0 and
1.0) since they share one path."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Dict

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext.testing.core import ids

from _support import raw_login
from _writes import run_writes


@pytest.fixture
def http(salesforce_org: Any) -> Any:
    """``call(method, path, **kw)``: raw HTTPS to the org with the user's token."""
    token = raw_login(salesforce_org)["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"{salesforce_org.instance_url}/services/data/v{salesforce_org.api_version}"

    def call(method: str, path: str, **kw: Any) -> requests.Response:
        url = path if path.startswith("https://") else (salesforce_org.instance_url + path if path.startswith(
            "/services") else base + path)
        return session.request(method, url, timeout=20, verify=salesforce_org.ca_file, **kw)

    yield call
    session.close()


@pytest.fixture
def sf(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce_org.ca_file)
    session = requests.Session()
    session.verify = salesforce_org.ca_file
    return Salesforce(session_id=raw_login(salesforce_org)["access_token"], instance_url=salesforce_org.instance_url,
                      session=session, version=str(salesforce_org.api_version))


def _error(resp: requests.Response, status: int = 400) -> Dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, body
    return dict(body[0])


def _no_record_id(prefix: str) -> str:
    """A well-formed id (right checksum) that names no record."""
    return ids.to_18(prefix + "5gzzzzzzzzzz")


# ------------------------------------------------------------------ 1: "" is null


def test_an_empty_string_is_stored_and_answered_as_null(http: Any, sf: Salesforce) -> None:
    created = http("POST", "/sobjects/Account", json={"Name": "Blank phone", "Phone": "", "Website": ""})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    got = http("GET", f"/sobjects/Account/{record_id}").json()
    assert got["Phone"] is None and got["Website"] is None
    found = sf.query("SELECT Id FROM Account WHERE Phone = null AND Name = 'Blank phone'")["records"]
    assert [r["Id"] for r in found] == [record_id]
    assert http("PATCH", f"/sobjects/Account/{record_id}", json={"Name": ""}).status_code == 400  # required
    http("PATCH", f"/sobjects/Account/{record_id}", json={"Phone": "555"})
    assert http("PATCH", f"/sobjects/Account/{record_id}", json={"Phone": ""}).status_code == 204
    assert sf.Account.get(record_id)["Phone"] is None


def test_rest_and_bulk_agree_on_an_emptied_field(salesforce_org: Any, http: Any, sf: Salesforce) -> None:
    record_id = http("POST", "/sobjects/Account", json={"Name": "Agree", "Site": ""}).json()["id"]
    assert http("GET", f"/sobjects/Account/{record_id}").json()["Site"] is None
    assert sf.query(f"SELECT Site FROM Account WHERE Id = '{record_id}'")["records"][0]["Site"] is None
    [result] = sf.bulk2.Account.update(records=[{"Id": record_id, "Site": "#N/A"}], wait=0)
    assert result["numberRecordsFailed"] == 0
    assert http("GET", f"/sobjects/Account/{record_id}").json()["Site"] is None


# ------------------------------------------------------------------ 6: a lookup to no record


def test_a_lookup_to_an_id_of_no_record_is_a_bad_cross_reference(salesforce_org: Any, http: Any) -> None:
    ghost = _no_record_id("001")
    err = _error(http("POST", "/sobjects/Contact", json={"LastName": "Orphan", "AccountId": ghost}))
    assert err["errorCode"] == "INVALID_CROSS_REFERENCE_KEY" and err["message"] == "invalid cross reference id"
    err = _error(http("POST", "/sobjects/Account", json={"Name": "Child", "ParentId": ghost}))
    assert err["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert salesforce_org.store.count("Contact") == 0
    parent = http("POST", "/sobjects/Account", json={"Name": "Real"}).json()["id"]
    contact = http("POST", "/sobjects/Contact", json={"LastName": "Kid", "AccountId": parent})
    assert contact.status_code == 201, contact.text
    err = _error(http("PATCH", f"/sobjects/Contact/{contact.json()['id']}", json={"AccountId": ghost}))
    assert err["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    http("DELETE", f"/sobjects/Account/{parent}")
    err = _error(http("POST", "/sobjects/Contact", json={"LastName": "Late", "AccountId": parent}))
    assert err["errorCode"] == "ENTITY_IS_DELETED"


def test_a_bad_lookup_fails_its_row_in_collections_and_bulk(http: Any, sf: Salesforce) -> None:
    ghost = _no_record_id("001")
    resp = http("POST", "/composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "A", "AccountId": ghost},
        {"attributes": {"type": "Contact"}, "LastName": "B"}]})
    bad, good = resp.json()
    assert bad["success"] is False and bad["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert good["success"] is True
    [result] = sf.bulk2.Contact.insert(records=[{"LastName": "C", "AccountId": ghost}], wait=0)
    assert result["numberRecordsFailed"] == 1
    [failed] = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(result["job_id"]))))
    assert failed["sf__Error"].startswith("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id")


# ------------------------------------------------------------------ 7: audit fields


AUDIT = {"CreatedDate": "2020-01-01T00:00:00.000+0000", "LastModifiedDate": "2020-01-01T00:00:00.000+0000",
         "SystemModstamp": "2020-01-01T00:00:00.000+0000", "CreatedById": None, "LastModifiedById": None}


@pytest.mark.parametrize("field", sorted(AUDIT))
def test_audit_fields_are_not_writable_on_insert_or_update(salesforce_org: Any, http: Any, field: str) -> None:
    value = AUDIT[field] or salesforce_org.credentials.user_id
    err = _error(http("POST", "/sobjects/Account", json={"Name": "Audit", field: value}))
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE" and err["fields"] == [field]
    assert err["message"].startswith(f"Unable to create/update fields: {field}. Please check the security settings")
    [record_id] = salesforce_org.insert("Account", [{"Name": "Seeded"}])
    err = _error(http("PATCH", f"/sobjects/Account/{record_id}", json={field: value}))
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_audit_fields_fail_in_every_write_api(salesforce_org: Any, http: Any, sf: Salesforce) -> None:
    stamp = AUDIT["CreatedDate"]
    [saved] = http("POST", "/composite/sobjects", json={"records": [
        {"attributes": {"type": "Account"}, "Name": "C1", "CreatedDate": stamp}]}).json()
    assert saved["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    tree = http("POST", "/composite/tree/Account", json={"records": [
        {"attributes": {"type": "Account", "referenceId": "r1"}, "Name": "T1", "CreatedDate": stamp}]})
    assert tree.status_code == 400 and tree.json()["results"][0]["errors"][0]["statusCode"] == \
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    salesforce_org.add_field("Account", "Legacy_Id__c", type="string", external_id=True)
    upsert = http("PATCH", "/sobjects/Account/Legacy_Id__c/L1", json={"Name": "U1", "CreatedDate": stamp})
    assert _error(upsert)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    [result] = sf.bulk2.Account.insert(records=[{"Name": "B1", "CreatedDate": stamp}], wait=0)
    assert result["numberRecordsFailed"] == 1
    [failed] = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(result["job_id"]))))
    assert failed["sf__Error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: "
                                          "CreatedDate.")
    [bulk1] = sf.bulk.Account.insert([{"Name": "B2", "CreatedDate": stamp}])
    assert bulk1["success"] is False and bulk1["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    names = {r["Name"] for r in salesforce_org.store.query("SELECT Name FROM Account").records}
    assert not names & {"C1", "T1", "U1", "B1", "B2"}


def test_the_python_api_still_seeds_audit_fields(salesforce_org: Any) -> None:
    """``org.insert`` is the test's own seeding: like a user with "Set Audit Fields upon Record Creation"."""
    [record_id] = salesforce_org.insert("Account", [{"Name": "Old", "CreatedDate": "2020-01-01T00:00:00Z"}])
    assert salesforce_org.store.get("Account", record_id)["CreatedDate"] == "2020-01-01T00:00:00.000+0000"


# ------------------------------------------------------------------ 8: number range and scale


@pytest.mark.parametrize("sobject, body, field, shown", [
    ("Opportunity", {"Amount": 1e19}, "Amount", "1.0E19"),
    ("Opportunity", {"Probability": 1000}, "Probability", "1000.0"),
    ("Account", {"NumberOfEmployees": 12345678901}, "NumberOfEmployees", "12345678901"),
    ("Account", {"AnnualRevenue": -1e18}, "AnnualRevenue", "-1.0E18"),
])
def test_a_number_outside_its_fields_range_is_refused(http: Any, sobject: str, body: Dict[str, Any], field: str,
                                                      shown: str) -> None:
    base = {"Name": "Big", "StageName": "Prospecting", "CloseDate": "2024-01-31"} if sobject == "Opportunity" \
        else {"Name": "Big"}
    err = _error(http("POST", f"/sobjects/{sobject}", json={**base, **body}))
    assert err["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE" and err["fields"] == [field]
    assert err["message"].endswith(f": value outside of valid range on numeric field: {shown}")


def test_bulk_apis_word_range_and_type_errors_alike(salesforce_org: Any, sf: Salesforce) -> None:
    rows = [{"Name": "Range", "NumberOfEmployees": "123456789"}, {"Name": "Type", "NumberOfEmployees": "many"}]
    bulk1 = sf.bulk.Account.insert(rows)  # a JSON batch: typed values, REST's wording
    assert [r["errors"][0]["statusCode"] for r in bulk1] == ["NUMBER_OUTSIDE_VALID_RANGE", "JSON_PARSER_ERROR"]
    token = raw_login(salesforce_org)["access_token"]
    base, ns = f"{salesforce_org.instance_url}/services/async/{salesforce_org.api_version}/job", \
        "http://www.force.com/2009/06/asyncapi/dataload"
    headers = {"X-SFDC-Session": token, "Content-Type": "application/xml"}
    job = requests.post(base, verify=salesforce_org.ca_file, timeout=20, headers=headers, data=(
        f'<jobInfo xmlns="{ns}"><operation>insert</operation><object>Account</object>'
        f'<contentType>CSV</contentType></jobInfo>')).text.split("<id>")[1].split("</id>")[0]
    batch = requests.post(f"{base}/{job}/batch", verify=salesforce_org.ca_file, timeout=20,
                          headers={**headers, "Content-Type": "text/csv"},
                          data="Name,NumberOfEmployees\nRange,123456789\nType,many\n").text
    batch_id = batch.split("<id>")[1].split("</id>")[0]
    deadline = time.monotonic() + 20
    while "<state>Completed</state>" not in requests.get(f"{base}/{job}/batch/{batch_id}", headers=headers,
                                                         verify=salesforce_org.ca_file, timeout=20).text:
        assert time.monotonic() < deadline, "the CSV batch never completed"
    results = list(csv.DictReader(io.StringIO(requests.get(f"{base}/{job}/batch/{batch_id}/result", headers=headers,
                                                           verify=salesforce_org.ca_file, timeout=20).text)))
    assert [r["Error"].split(":")[0] for r in results] == ["NUMBER_OUTSIDE_VALID_RANGE",
                                                           "INVALID_TYPE_ON_FIELD_IN_RECORD"]
    assert results[1]["Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:Employees: value not of required type: many")
    [result] = sf.bulk2.Account.insert(records=rows, wait=0)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(result["job_id"]))))
    assert sorted(r["sf__Error"].split(":")[0] for r in failed) == ["INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                                    "NUMBER_OUTSIDE_VALID_RANGE"]


def test_numbers_are_rounded_to_the_fields_scale(http: Any) -> None:
    created = http("POST", "/sobjects/Opportunity", json={"Name": "Round", "StageName": "Prospecting",
                                                           "CloseDate": "2024-01-31", "Amount": 12.345,
                                                           "Probability": 33.5})
    assert created.status_code == 201, created.text
    got = http("GET", f"/sobjects/Opportunity/{created.json()['id']}").json()
    assert got["Amount"] == 12.35 and got["Probability"] == 34


def test_numbers_keep_eighteen_digits(http: Any, salesforce_org: Any) -> None:
    created = http("POST", "/sobjects/Account", json={"Name": "Digits", "AnnualRevenue": 123456789012345678})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    assert '"AnnualRevenue":123456789012345678' in http("GET", f"/sobjects/Account/{record_id}").text
    _, rows = salesforce_org.store.query_flat(f"SELECT AnnualRevenue FROM Account WHERE Id = '{record_id}'")
    assert rows == [("123456789012345678",)]


# ------------------------------------------------------------------ 9: If-Modified-Since


def test_describe_answers_304_when_nothing_changed_since(salesforce_org: Any, http: Any) -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(days=1), usegmt=True)
    for path in ("/sobjects/Account/describe", "/sobjects"):
        resp = http("GET", path, headers={"If-Modified-Since": later})
        assert resp.status_code == 304 and resp.content == b"", path
    before = format_datetime(datetime.now(timezone.utc) - timedelta(minutes=5), usegmt=True)
    salesforce_org.add_field("Account", "Tier__c", type="string")
    resp = http("GET", "/sobjects/Account/describe", headers={"If-Modified-Since": before})
    assert resp.status_code == 200 and "Tier__c" in {f["name"] for f in resp.json()["fields"]}
    assert http("GET", "/sobjects", headers={"If-Modified-Since": before}).status_code == 200
    assert http("GET", "/sobjects/Contact/describe", headers={"If-Modified-Since": later}).status_code == 304
    assert http("GET", "/sobjects/Account/describe", headers={"If-Modified-Since": "not a date"}).status_code == 200


# ------------------------------------------------------------------ 10: retired API versions


@pytest.mark.parametrize("version", ["20.0", "21.0", "30.0", "7.0"])
def test_a_retired_api_version_is_gone(http: Any, version: str) -> None:
    for path in ("/sobjects/Account/describe", "/query?q=SELECT+Id+FROM+Account", "/composite/sobjects",
                 "/jobs/ingest", ""):
        resp = http("GET", f"/services/data/v{version}{path}")
        err = _error(resp, 410)
        assert err["errorCode"] == "GONE", path


def test_bulk_1_of_a_retired_version_is_an_invalid_version(salesforce_org: Any, http: Any) -> None:
    token = raw_login(salesforce_org)["access_token"]
    job = ('<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
           '<operation>insert</operation><object>Account</object><contentType>CSV</contentType></jobInfo>')
    for version, status in (("30.0", 400), ("31.0", 201)):
        resp = requests.post(f"{salesforce_org.instance_url}/services/async/{version}/job", data=job,
                             headers={"X-SFDC-Session": token, "Content-Type": "application/xml"},
                             verify=salesforce_org.ca_file, timeout=20)
        assert resp.status_code == status, resp.text
    assert "<exceptionCode>InvalidVersion</exceptionCode>" in requests.post(
        f"{salesforce_org.instance_url}/services/async/20.0/job", data=job, verify=salesforce_org.ca_file, timeout=20,
        headers={"X-SFDC-Session": token, "Content-Type": "application/xml"}).text


def test_the_oldest_supported_version_still_answers(http: Any) -> None:
    assert http("GET", "/services/data/v31.0/sobjects/Account/describe").status_code == 200
    assert _error(http("GET", "/services/data/v99.0/sobjects"), 404)["errorCode"] == "NOT_FOUND"


# ------------------------------------------------------------------ 15: 18-character ids in any case


def test_an_eighteen_character_id_in_another_case_is_found(salesforce_org: Any, http: Any, sf: Salesforce) -> None:
    [record_id] = salesforce_org.insert("Account", [{"Name": "Cased"}])
    for variant in (record_id.upper(), record_id.lower(), record_id[:15].upper() + record_id[15:]):
        if variant == record_id:
            continue
        resp = http("GET", f"/sobjects/Account/{variant}")
        assert resp.status_code == 200 and resp.json()["Id"] == record_id, (variant, resp.text)
    assert http("PATCH", f"/sobjects/Account/{record_id.upper()}", json={"Site": "x"}).status_code == 204
    contact = http("POST", "/sobjects/Contact", json={"LastName": "C", "AccountId": record_id.lower()})
    assert contact.status_code == 201, contact.text
    assert sf.Contact.get(contact.json()["id"])["AccountId"] == record_id
    assert http("DELETE", f"/sobjects/Account/{record_id.lower()}").status_code == 204
    assert http("GET", f"/sobjects/Account/{record_id[:15].upper()}").status_code == 404  # 15 chars: case matters


def test_soql_finds_an_eighteen_character_id_in_another_case(salesforce_org: Any, sf: Salesforce) -> None:
    [record_id] = salesforce_org.insert("Account", [{"Name": "Cased in SOQL"}])
    for variant in (record_id.upper(), record_id.lower()):
        rows = sf.query(f"SELECT Id FROM Account WHERE Id = '{variant}'")["records"]
        assert [r["Id"] for r in rows] == [record_id], variant
        rows = sf.query(f"SELECT Id FROM Account WHERE Id IN ('{variant}')")["records"]
        assert [r["Id"] for r in rows] == [record_id], variant


# ------------------------------------------------------------------ 16: standard fields


OPPORTUNITY_FIELDS = {"LastActivityDate", "IsPrivate", "ExpectedRevenue", "Description", "NextStep",
                      "ForecastCategoryName", "CampaignId", "Pricebook2Id", "HasOpportunityLineItem", "FiscalYear",
                      "FiscalQuarter", "Fiscal", "LastViewedDate", "LastReferencedDate", "TotalOpportunityQuantity"}
ACCOUNT_FIELDS = {"MasterRecordId", "PhotoUrl", "TickerSymbol", "LastActivityDate", "LastViewedDate",
                  "LastReferencedDate", "Jigsaw", "JigsawCompanyId", "CleanStatus", "AccountSource", "DunsNumber",
                  "Tradestyle", "NaicsCode", "NaicsDesc", "YearStarted", "SicDesc"}


def test_opportunity_and_account_have_salesforces_standard_fields(http: Any) -> None:
    opportunity = {f["name"]: f for f in http("GET", "/sobjects/Opportunity/describe").json()["fields"]}
    assert OPPORTUNITY_FIELDS <= set(opportunity), OPPORTUNITY_FIELDS - set(opportunity)
    assert opportunity["IsPrivate"]["type"] == "boolean" and opportunity["IsPrivate"]["defaultedOnCreate"]
    assert opportunity["ExpectedRevenue"]["calculated"] is False and not opportunity["ExpectedRevenue"]["createable"]
    assert (opportunity["Amount"]["precision"], opportunity["Amount"]["scale"]) == (16, 2)
    account = {f["name"] for f in http("GET", "/sobjects/Account/describe").json()["fields"]}
    assert ACCOUNT_FIELDS <= account, ACCOUNT_FIELDS - account
    assert len(account) >= 58


def test_expected_revenue_follows_amount_and_probability(http: Any) -> None:
    created = http("POST", "/sobjects/Opportunity", json={"Name": "E", "StageName": "Value Proposition",
                                                           "CloseDate": "2024-01-31", "Amount": 1000})
    got = http("GET", f"/sobjects/Opportunity/{created.json()['id']}").json()
    assert got["ExpectedRevenue"] == 500.0 and got["IsPrivate"] is False and got["FiscalYear"] == 2024
    assert got["FiscalQuarter"] == 1 and got["Fiscal"] == "2024 1"


# ------------------------------------------------------------------ 17: JSON_PARSER_ERROR wording


@pytest.mark.parametrize("raw, token, shown, column", [
    ('{"Name":"J","NumberOfEmployees":true}', "VALUE_TRUE", "true", 37),
    ('{"Name":"J","NumberOfEmployees":"many"}', "VALUE_STRING", "many", 39),
    ('{"Name":["a"]}', "START_ARRAY", "[", 10),
    ('{"Name":"J","AnnualRevenue":{"x":1}}', "START_OBJECT", "{", 30),
])
def test_json_parser_errors_name_the_json_token_and_place(http: Any, raw: str, token: str, shown: str,
                                                          column: int) -> None:
    resp = http("POST", "/sobjects/Account", data=raw, headers={"Content-Type": "application/json"})
    err = _error(resp)
    assert err["errorCode"] == "JSON_PARSER_ERROR"
    assert f"from {token} value {shown} " in err["message"], err["message"]
    assert err["message"].endswith(f"at [line:1, column:{column}]"), err["message"]
    assert "True" not in err["message"] and "['a']" not in err["message"]


def test_a_wrong_type_in_a_collections_or_tree_body_refuses_the_whole_request(salesforce_org: Any,
                                                                             http: Any) -> None:
    good = {"attributes": {"type": "Account"}, "Name": "Fine"}
    bad = {"attributes": {"type": "Account"}, "Name": "Bad", "NumberOfEmployees": "many"}
    for method, path, body in (("POST", "/composite/sobjects", {"records": [good, bad]}),
                               ("PATCH", "/composite/sobjects/Account/Id", {"records": [good, bad]}),
                               ("POST", "/composite/tree/Account", {"records": [
                                   {**good, "attributes": {"type": "Account", "referenceId": "r1"}},
                                   {**bad, "attributes": {"type": "Account", "referenceId": "r2"}}]})):
        err = _error(http(method, path, json=body))
        assert err["errorCode"] == "JSON_PARSER_ERROR", path
        assert "from VALUE_STRING value many " in err["message"] and "at [line:1, column:" in err["message"]
    assert salesforce_org.store.count("Account") == 0


# ------------------------------------------------------------------ issue 18 item 11: malformed JSON


def test_deeply_nested_json_is_a_400(http: Any) -> None:
    for raw in ("[" * 100_000 + "]" * 100_000, '{"Name":' + "[" * 5000 + "]" * 5000 + "}"):
        resp = http("POST", "/sobjects/Account", data=raw, headers={"Content-Type": "application/json"})
        assert _error(resp)["errorCode"] == "JSON_PARSER_ERROR"
        resp = http("POST", "/composite/sobjects", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400


@pytest.mark.parametrize("raw", ['{"Name":"N","AnnualRevenue":NaN}', '{"Name":"N","AnnualRevenue":1e999}',
                                 '{"Name":"N","AnnualRevenue":-Infinity}'])
def test_nan_and_infinite_numbers_are_refused(salesforce_org: Any, http: Any, raw: str) -> None:
    resp = http("POST", "/sobjects/Account", data=raw, headers={"Content-Type": "application/json"})
    assert _error(resp)["errorCode"] == "JSON_PARSER_ERROR"
    assert salesforce_org.store.count("Account") == 0


@pytest.mark.parametrize("attributes", ["Account", 7, ["type"], True])
def test_a_tree_record_whose_attributes_is_not_an_object_is_a_400(salesforce_org: Any, http: Any,
                                                                   attributes: Any) -> None:
    resp = http("POST", "/composite/tree/Account", json={"records": [{"attributes": attributes, "Name": "A"}]})
    assert resp.status_code == 400, resp.text
    assert salesforce_org.store.count("Account") == 0


def test_jsforce_meets_the_same_rules(salesforce_org: Any) -> None:
    event = run_writes(salesforce_org, ["strict"], SF_PREFIX="JS Strict")["strict"]
    assert event["phone"] is None and event["nulls"] == 1 and event["fetchedId"] == event["id"]
    assert event["audit"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert event["range"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_simple_salesforce_sees_the_refusals(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "X", "CreatedDate": "2020-01-01T00:00:00Z"})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.create({"Name": "X", "StageName": "Prospecting", "CloseDate": "2024-01-31", "Amount": 1e19})
    assert caught.value.content[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    record_id = sf.Account.create({"Name": "Y", "Fax": ""})["id"]
    assert sf.Account.get(record_id)["Fax"] is None
