"""REST writes by external id in the local org: ``/sobjects/{Object}/{Field}/{Value}`` (GET,
PATCH upsert, DELETE), simple-salesforce's ``upsert`` and ``get_by_custom_id``, and a parent
named by its external id in a write body. Shapes: docs/testing-org-writes.md."""
from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMoreThanOneRecord, SalesforceResourceNotFound

from sfjwt_ext.client import SalesforceJWT, connect_jwt

from _writes import add_external_id, run_writes


def _connect(org: Any, **kwargs: Any) -> SalesforceJWT:
    return connect_jwt(**org.credentials.connect_kwargs(), cache=False, **kwargs)


@pytest.fixture
def sf(salesforce_org: Any) -> SalesforceJWT:
    return _connect(salesforce_org)


# ----------------------------------------------------------------------------- Id as the external id


def test_patch_on_id_updates_with_200_and_created_false(salesforce_org: Any, sf: SalesforceJWT) -> None:
    [rid] = salesforce_org.insert("Account", [{"Name": "By Id"}])
    response = sf.session.patch(f"{sf.base_url}sobjects/Account/Id/{rid}", json={"Name": "By Id, renamed"})
    assert response.status_code == 200
    assert response.json() == {"id": rid, "success": True, "errors": [], "created": False}
    assert sf.Account.get(rid)["Name"] == "By Id, renamed"


def test_before_api_46_an_update_by_upsert_answers_204(salesforce_org: Any) -> None:
    [rid] = salesforce_org.insert("Account", [{"Name": "Old API"}])
    sf = _connect(salesforce_org, version="45.0")
    assert sf.Account.upsert(f"Id/{rid}", {"Name": "Old API, renamed"}) == 204
    assert sf.Account.get(rid)["Name"] == "Old API, renamed"


def test_post_on_id_creates(sf: SalesforceJWT) -> None:
    response = sf.session.post(f"{sf.base_url}sobjects/Account/Id", json={"Name": "Posted"})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["created"] is True
    assert sf.Account.get(body["id"])["Name"] == "Posted"


def test_get_by_id_field(salesforce_org: Any, sf: SalesforceJWT) -> None:
    [rid] = salesforce_org.insert("Account", [{"Name": "Fetched"}])
    assert sf.Account.get_by_custom_id("Id", rid)["Name"] == "Fetched"


def test_a_field_that_is_not_an_external_id_is_not_found(sf: SalesforceJWT) -> None:
    response = sf.session.patch(f"{sf.base_url}sobjects/Account/Website/example.com", json={"Name": "x"})
    assert response.status_code == 404
    [error] = response.json()
    assert error["errorCode"] == "NOT_FOUND"
    assert "Website" in error["message"]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


# ----------------------------------------------------------------------------- a custom external id


def test_simple_salesforce_upsert_creates_then_updates(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    assert sf.Account.upsert("Legacy_Id__c/X-1", {"Name": "Legacy"}) == 201
    assert sf.Account.upsert("Legacy_Id__c/X-1", {"Name": "Legacy, renamed"}) == 200
    rows = sf.query("SELECT Name, Legacy_Id__c FROM Account")["records"]
    assert [(r["Name"], r["Legacy_Id__c"]) for r in rows] == [("Legacy, renamed", "X-1")]
    record = sf.Account.get_by_custom_id("Legacy_Id__c", "X-1")
    assert record["Name"] == "Legacy, renamed"
    raw = sf.Account.upsert("Legacy_Id__c/X-1", {"Name": "Third"}, raw_response=True)
    assert raw.json()["created"] is False and raw.json()["id"] == record["Id"]


def test_update_only_does_not_create(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    response = sf.session.patch(f"{sf.base_url}sobjects/Account/Legacy_Id__c/NOPE?updateOnly=true", json={"Name": "n"})
    assert response.status_code == 404
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_several_matches_answer_300_and_change_nothing(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org, unique=False)
    ids = salesforce_org.insert("Account", [{"Name": "Twin 1", "Legacy_Id__c": "T"}, {"Name": "Twin 2", "Legacy_Id__c": "T"}])
    response = sf.session.patch(f"{sf.base_url}sobjects/Account/Legacy_Id__c/T", json={"Name": "Which?"})
    assert response.status_code == 300
    assert sorted(response.json()) == sorted(f"/services/data/v{sf.sf_version}/sobjects/Account/{i}" for i in ids)
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Account.get_by_custom_id("Legacy_Id__c", "T")
    assert sorted(r["Name"] for r in sf.query("SELECT Name FROM Account")["records"]) == ["Twin 1", "Twin 2"]


def test_delete_by_external_id(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    salesforce_org.insert("Account", [{"Name": "Doomed", "Legacy_Id__c": "D-1"}])
    response = sf.session.delete(f"{sf.base_url}sobjects/Account/Legacy_Id__c/D-1")
    assert response.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get_by_custom_id("Legacy_Id__c", "D-1")


def test_a_parent_named_by_external_id_in_a_write_body(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    [parent] = salesforce_org.insert("Account", [{"Name": "Parent", "Legacy_Id__c": "P-1"}])
    created = sf.Contact.create({"LastName": "Child", "Account": {"Legacy_Id__c": "P-1"}})
    assert sf.Contact.get(created["id"])["AccountId"] == parent
    response = sf.session.post(f"{sf.base_url}sobjects/Contact", json={"LastName": "Lost", "Account": {"Legacy_Id__c": "P-404"}})
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "INVALID_FIELD" and "P-404" in error["message"]


def test_jsforce_upsert_by_external_id(salesforce_org: Any, sf: SalesforceJWT) -> None:
    add_external_id(salesforce_org)
    events = run_writes(salesforce_org, ["upsert"], SF_PREFIX="JS Up")
    assert events["upsert"]["many"] == [{"success": True, "created": True}, {"success": True, "created": True}]
    assert events["upsert"]["one"] == {"success": True, "created": False}
    rows = sf.query("SELECT Name, Legacy_Id__c FROM Account ORDER BY Legacy_Id__c")["records"]
    assert [(r["Legacy_Id__c"], r["Name"]) for r in rows] == [("J-1", "JS Up 1, again"), ("J-2", "JS Up 2")]
