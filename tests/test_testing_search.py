"""SOSL in the local org: ``/search?q=FIND {...} RETURNING ...`` and ``/parameterizedSearch``
over text fields, answered with ``searchRecords`` in Salesforce's shape; driven by
simple-salesforce (``sf.search``, ``sf.quick_search``) and jsforce (``conn.search``)."""
from __future__ import annotations

from typing import Any, List, Tuple

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext.client import SalesforceJWT, connect_jwt

from _writes import add_external_id, run_writes


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    accounts = salesforce_org.insert("Account", [
        {"Name": "Zebra Logistics", "BillingCity": "Oslo", "Website": "zebra.example"},
        {"Name": "Acme Zebrafish", "BillingCity": "Lima"},
        {"Name": "Quiet Corp", "BillingCity": "Zebra Falls", "Phone": "555-0100"},
        {"Name": "Nothing Here", "BillingCity": "Rome"},
    ])
    salesforce_org.insert("Contact", [
        {"LastName": "Zebra", "FirstName": "Zed", "Email": "zed@zebra.example", "AccountId": accounts[0]},
        {"LastName": "Horse", "FirstName": "Hal", "Email": "hal@example.com"},
    ])
    return salesforce_org


@pytest.fixture
def sf(org: Any) -> SalesforceJWT:
    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


def _found(result: Any) -> List[Tuple[str, str]]:
    return sorted((r["attributes"]["type"], r.get("Name") or r["Id"]) for r in result["searchRecords"])


def test_find_returning_fields(sf: SalesforceJWT) -> None:
    result = sf.search("FIND {Zebra} IN ALL FIELDS RETURNING Account(Id, Name, BillingCity), Contact(Id, Name)")
    assert _found(result) == [("Account", "Quiet Corp"), ("Account", "Zebra Logistics"), ("Contact", "Zed Zebra")]
    record = next(r for r in result["searchRecords"] if r.get("Name") == "Zebra Logistics")
    assert set(record) == {"attributes", "Id", "Name", "BillingCity"}
    assert record["attributes"]["url"].endswith(f"/sobjects/Account/{record['Id']}")


def test_words_match_whole_tokens_and_wildcards_extend_them(sf: SalesforceJWT) -> None:
    exact = sf.search("FIND {Zebra} RETURNING Account(Name)")
    assert "Acme Zebrafish" not in [r["Name"] for r in exact["searchRecords"]]
    wild = sf.search("FIND {Zebra*} RETURNING Account(Name)")
    assert "Acme Zebrafish" in [r["Name"] for r in wild["searchRecords"]]


def test_without_returning_each_record_has_attributes_and_id(sf: SalesforceJWT) -> None:
    result = sf.quick_search("Horse")
    [record] = result["searchRecords"]
    assert set(record) == {"attributes", "Id"}
    assert record["attributes"]["type"] == "Contact"


def test_name_fields_and_email_fields_scopes(sf: SalesforceJWT) -> None:
    names = sf.search("FIND {Zebra} IN NAME FIELDS RETURNING Account(Name), Contact(Name)")
    assert _found(names) == [("Account", "Zebra Logistics"), ("Contact", "Zed Zebra")]
    emails = sf.search("FIND {zed@zebra.example} IN EMAIL FIELDS RETURNING Contact(Name)")
    assert _found(emails) == [("Contact", "Zed Zebra")]


def test_returning_where_order_by_and_limit_use_soql(sf: SalesforceJWT) -> None:
    result = sf.search("FIND {Zebra* OR Corp} RETURNING Account(Name WHERE BillingCity != 'Lima' ORDER BY Name DESC LIMIT 2)")
    assert [r["Name"] for r in result["searchRecords"]] == ["Zebra Logistics", "Quiet Corp"]


def test_and_or_not_and_phrases(sf: SalesforceJWT) -> None:
    assert _found(sf.search('FIND {"Zebra Logistics"} RETURNING Account(Name)')) == [("Account", "Zebra Logistics")]
    assert _found(sf.search("FIND {Zebra AND NOT Oslo} RETURNING Account(Name)")) == [("Account", "Quiet Corp")]
    assert _found(sf.search("FIND {Lima OR Rome} RETURNING Account(Name)")) == [("Account", "Acme Zebrafish"),
                                                                               ("Account", "Nothing Here")]


@pytest.mark.parametrize("sosl", ["FIND {a}", "FIND Zebra", "FIND {Zebra} RETURNING", "SELECT Id FROM Account"])
def test_malformed_searches(sf: SalesforceJWT, sosl: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.search(sosl)
    assert caught.value.content[0]["errorCode"] == "MALFORMED_SEARCH"


def test_unknown_field_in_returning_is_invalid_field(sf: SalesforceJWT) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.search("FIND {Zebra} RETURNING Account(Nope__c)")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_parameterized_search_get_and_post(sf: SalesforceJWT) -> None:
    got = sf.restful("parameterizedSearch", params={"q": "Zebra", "sobject": "Account", "Account.fields": "Id,Name",
                                                     "Account.limit": "10"})
    assert _found(got) == [("Account", "Quiet Corp"), ("Account", "Zebra Logistics")]
    posted = sf.restful("parameterizedSearch", method="POST", json={
        "q": "Zebra", "in": "NAME", "sobjects": [{"name": "Contact", "fields": ["Id", "Name"]}]})
    assert _found(posted) == [("Contact", "Zed Zebra")]


def test_custom_text_fields_are_searched(org: Any, sf: SalesforceJWT) -> None:
    add_external_id(org, "Account", "Legacy_Id__c")
    org.insert("Account", [{"Name": "Legacy Holder", "Legacy_Id__c": "LEG-991"}])
    assert _found(sf.search("FIND {LEG-991} RETURNING Account(Name)")) == [("Account", "Legacy Holder")]


def test_jsforce_search(org: Any) -> None:
    events = run_writes(org, ["search"], SF_SOSL="FIND {Zebra} RETURNING Account(Id, Name), Contact(Id, Name)")
    names = sorted((r["type"], r["Name"]) for r in events["search"]["records"])
    assert names == [("Account", "Quiet Corp"), ("Account", "Zebra Logistics"), ("Contact", "Zed Zebra")]
    assert events["search"]["parameterized"] == ["Quiet Corp", "Zebra Logistics"]
