"""Composite resources of the local org: sObject Collections (``/composite/sobjects``),
``/composite`` with ``@{ref.id}`` references, ``/composite/tree`` and ``/composite/batch``;
driven by simple-salesforce (``sf.restful``) and jsforce (``sobject(...).create([...])``).
Shapes: docs/testing-org-writes.md."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext.client import SalesforceJWT, connect_jwt

from _writes import add_external_id, run_writes


@pytest.fixture
def sf(salesforce_org: Any) -> SalesforceJWT:
    return connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)


def _post(sf: SalesforceJWT, path: str, body: Any) -> Any:
    return sf.restful(path, method="POST", data=json.dumps(body))


def _names(sf: SalesforceJWT, sobject: str = "Account", field: str = "Name") -> List[str]:
    return sorted(r[field] for r in sf.query_all(f"SELECT {field} FROM {sobject}")["records"])


def _accounts(*names: str) -> List[Dict[str, Any]]:
    return [{"attributes": {"type": "Account"}, "Name": n} for n in names]


# ----------------------------------------------------------------------------- collections


def test_collections_create_returns_save_results_in_order(sf: SalesforceJWT) -> None:
    records = _accounts("C1", "C2") + [{"attributes": {"type": "Contact"}, "LastName": "Contact 1"}]
    results = _post(sf, "composite/sobjects", {"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, True, True]
    assert all(r["errors"] == [] for r in results)
    assert results[0]["id"].startswith("001") and results[2]["id"].startswith("003")
    assert _names(sf) == ["C1", "C2"] and _names(sf, "Contact", "LastName") == ["Contact 1"]


def test_collections_partial_success_without_all_or_none(sf: SalesforceJWT) -> None:
    records = _accounts("Kept") + [{"attributes": {"type": "Account"}, "Website": "nameless"}]
    results = _post(sf, "composite/sobjects", {"records": records})
    assert results[0]["success"] is True
    assert results[1]["success"] is False
    [error] = results[1]["errors"]
    assert error["statusCode"] == "REQUIRED_FIELD_MISSING" and error["fields"] == ["Name"]
    assert _names(sf) == ["Kept"]


def test_collections_all_or_none_rolls_back_every_record(sf: SalesforceJWT) -> None:
    records = _accounts("Rolled 1", "Rolled 2") + [{"attributes": {"type": "Account"}, "Website": "nameless"}]
    results = _post(sf, "composite/sobjects", {"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert _names(sf) == []


def test_collections_update_upsert_retrieve_delete(salesforce_org: Any, sf: SalesforceJWT) -> None:
    ids = salesforce_org.insert("Account", [{"Name": f"U{i}"} for i in range(3)])
    updated = sf.restful("composite/sobjects", method="PATCH", data=json.dumps({
        "records": [{"attributes": {"type": "Account"}, "id": ids[0], "Name": "U0 renamed"},
                    {"attributes": {"type": "Account"}, "id": ids[1], "NumberOfEmployees": 9}]}))
    assert [(r["id"], r["success"]) for r in updated] == [(ids[0], True), (ids[1], True)]
    retrieved = sf.restful("composite/sobjects/Account", params={"ids": ",".join(ids[:2]), "fields": "Name,NumberOfEmployees"})
    assert [(r["Name"], r["NumberOfEmployees"]) for r in retrieved] == [("U0 renamed", None), ("U1", 9)]
    assert retrieved[0]["attributes"]["type"] == "Account"
    posted = _post(sf, "composite/sobjects/Account", {"ids": [ids[2]], "fields": ["Id", "Name"]})
    assert posted[0]["Name"] == "U2"
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2])})
    assert [(r["id"], r["success"]) for r in deleted] == [(ids[0], True), (ids[1], True)]
    assert _names(sf) == ["U2"]


def test_collections_upsert_by_external_id(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    salesforce_org.insert("Account", [{"Name": "Existing", "Legacy_Id__c": "E-1"}])
    results = sf.restful("composite/sobjects/Account/Legacy_Id__c", method="PATCH", data=json.dumps({
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Legacy_Id__c": "E-1", "Name": "Existing, renamed"},
                    {"attributes": {"type": "Account"}, "Legacy_Id__c": "E-2", "Name": "New"}]}))
    assert [(r["success"], r["created"]) for r in results] == [(True, False), (True, True)]
    assert _names(sf) == ["Existing, renamed", "New"]


def test_collections_refuse_more_than_200_records(sf: SalesforceJWT) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        _post(sf, "composite/sobjects", {"records": _accounts(*[f"A{i}" for i in range(201)])})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert _names(sf) == []


# ----------------------------------------------------------------------------- composite


def test_composite_references_an_earlier_result(sf: SalesforceJWT) -> None:
    v = f"/services/data/v{sf.sf_version}"
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "newAccount", "body": {"Name": "Composite Co"}},
        {"method": "POST", "url": f"{v}/sobjects/Contact", "referenceId": "newContact",
         "body": {"LastName": "Ref", "AccountId": "@{newAccount.id}"}},
        {"method": "GET", "url": f"{v}/sobjects/Account/@{{newAccount.id}}?fields=Name", "referenceId": "readBack"},
        {"method": "GET", "url": f"{v}/query?q=SELECT+Id+FROM+Contact", "referenceId": "contacts"},
    ]}
    response = _post(sf, "composite", body)["compositeResponse"]
    assert [r["referenceId"] for r in response] == ["newAccount", "newContact", "readBack", "contacts"]
    assert [r["httpStatusCode"] for r in response] == [201, 201, 200, 200]
    account_id = response[0]["body"]["id"]
    assert response[0]["httpHeaders"]["Location"] == f"{v}/sobjects/Account/{account_id}"
    assert response[2]["body"]["Name"] == "Composite Co"
    assert response[3]["body"]["totalSize"] == 1
    contact = sf.query("SELECT AccountId FROM Contact")["records"][0]
    assert contact["AccountId"] == account_id


def test_composite_all_or_none_rolls_back_and_halts_the_others(sf: SalesforceJWT) -> None:
    v = f"/services/data/v{sf.sf_version}"
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "ok", "body": {"Name": "Undone"}},
        {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "bad", "body": {"Website": "nameless"}},
    ]}
    response = _post(sf, "composite", body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in response] == [400, 400]
    assert response[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert response[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert _names(sf) == []


def test_composite_without_all_or_none_keeps_what_worked(sf: SalesforceJWT) -> None:
    v = f"/services/data/v{sf.sf_version}"
    body = {"compositeRequest": [
        {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "bad", "body": {"Website": "nameless"}},
        {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "ok", "body": {"Name": "Kept"}},
        {"method": "POST", "url": f"{v}/sobjects/Contact", "referenceId": "dependent",
         "body": {"LastName": "Dep", "AccountId": "@{bad.id}"}},
    ]}
    response = _post(sf, "composite", body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in response] == [400, 201, 400]
    assert _names(sf) == ["Kept"]
    assert _names(sf, "Contact", "LastName") == []


def test_composite_refuses_more_than_25_subrequests(sf: SalesforceJWT) -> None:
    v = f"/services/data/v{sf.sf_version}"
    body = {"compositeRequest": [{"method": "GET", "url": f"{v}/limits", "referenceId": f"r{i}"} for i in range(26)]}
    with pytest.raises(SalesforceMalformedRequest):
        _post(sf, "composite", body)


# ----------------------------------------------------------------------------- tree and batch


def test_tree_creates_parents_and_children(sf: SalesforceJWT) -> None:
    body = {"records": [
        {"attributes": {"type": "Account", "referenceId": "acme"}, "Name": "Tree Acme",
         "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "c1"}, "LastName": "Leaf 1"},
                                  {"attributes": {"type": "Contact", "referenceId": "c2"}, "LastName": "Leaf 2"}]}},
        {"attributes": {"type": "Account", "referenceId": "other"}, "Name": "Tree Other"},
    ]}
    result = _post(sf, "composite/tree/Account", body)
    assert result["hasErrors"] is False
    refs = {r["referenceId"]: r["id"] for r in result["results"]}
    assert set(refs) == {"acme", "c1", "c2", "other"}
    children = sf.query(f"SELECT LastName FROM Contact WHERE AccountId = '{refs['acme']}' ORDER BY LastName")["records"]
    assert [c["LastName"] for c in children] == ["Leaf 1", "Leaf 2"]


def test_tree_error_creates_nothing(sf: SalesforceJWT) -> None:
    body = {"records": [{"attributes": {"type": "Account", "referenceId": "good"}, "Name": "Tree Good"},
                        {"attributes": {"type": "Account", "referenceId": "bad"}, "Website": "nameless"}]}
    with pytest.raises(SalesforceMalformedRequest) as caught:
        _post(sf, "composite/tree/Account", body)
    result = caught.value.content
    assert result["hasErrors"] is True
    [failure] = result["results"]
    assert failure["referenceId"] == "bad" and failure["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert _names(sf) == []


def test_batch_runs_independent_subrequests(salesforce_org: Any, sf: SalesforceJWT) -> None:
    [rid] = salesforce_org.insert("Account", [{"Name": "Batched"}])
    v = f"v{sf.sf_version}"
    body = {"batchRequests": [
        {"method": "PATCH", "url": f"{v}/sobjects/Account/{rid}", "richInput": {"Name": "Batched, renamed"}},
        {"method": "GET", "url": f"{v}/sobjects/Account/{rid}?fields=Name"},
        {"method": "GET", "url": f"{v}/sobjects/Account/001000000000000AAA"},
    ]}
    result = _post(sf, "composite/batch", body)
    assert result["hasErrors"] is True
    assert [r["statusCode"] for r in result["results"]] == [204, 200, 404]
    assert result["results"][0]["result"] is None
    assert result["results"][1]["result"]["Name"] == "Batched, renamed"


def test_batch_halt_on_error(sf: SalesforceJWT) -> None:
    v = f"v{sf.sf_version}"
    body = {"haltOnError": True, "batchRequests": [
        {"method": "POST", "url": f"{v}/sobjects/Account", "richInput": {"Website": "nameless"}},
        {"method": "POST", "url": f"{v}/sobjects/Account", "richInput": {"Name": "Never"}},
    ]}
    result = _post(sf, "composite/batch", body)
    assert [r["statusCode"] for r in result["results"]] == [400, 412]
    assert result["results"][1]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    assert _names(sf) == []


# ----------------------------------------------------------------------------- jsforce


def test_jsforce_arrays_go_through_collections(salesforce_org: Any, sf: SalesforceJWT) -> None:
    salesforce_org.reset_counters()
    events = run_writes(salesforce_org, ["collections"], SF_PREFIX="JS Coll")
    collections = events["collections"]
    assert [c["success"] for c in collections["created"]] == [True, True, False]
    assert collections["created"][2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert collections["updated"] == [True, True]
    assert collections["retrieved"] == [{"Name": "JS Coll A", "NumberOfEmployees": 7},
                                        {"Name": "JS Coll B", "NumberOfEmployees": 7}]
    assert [d["success"] for d in collections["destroyed"]] == [True]
    assert _names(sf) == ["JS Coll B"]
    paths = [(r.method, r.path.rstrip("/")) for r in salesforce_org.requests if r.host == "instance"]
    assert ("POST", f"/services/data/v{salesforce_org.api_version}/composite/sobjects") in paths
    assert ("DELETE", f"/services/data/v{salesforce_org.api_version}/composite/sobjects") in paths


def test_jsforce_composite_tree_and_batch(salesforce_org: Any, sf: SalesforceJWT) -> None:
    events = run_writes(salesforce_org, ["composite"], SF_PREFIX="JS Comp")
    composite = events["composite"]
    assert composite["graph"] == [201, 201]
    assert composite["tree"] == {"hasErrors": False, "refs": ["root", "leaf"]}
    assert composite["batch"] == [[200, 2]]
    assert _names(sf) == ["JS Comp Parent", "JS Comp Tree"]
    kid = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'JS Comp Kid'")["records"][0]
    assert kid["Account"]["Name"] == "JS Comp Parent"
