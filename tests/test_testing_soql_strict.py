"""The local org's SOQL as strict, and as capable, as Salesforce's (issue 20 items 2-5 and 11-14,
issue 18 item 11): OFFSET and LIMIT bounds, semi-join rules, aggregate paging, TYPEOF, nested child
subqueries, ROLLUP/CUBE with GROUPING(), FORMAT(), convertCurrency(), case-insensitive comparison
beyond ASCII, and deeply nested parentheses.

Driven over HTTPS: simple-salesforce for results, raw requests for error bodies.
"""
from __future__ import annotations

from typing import Any, Dict, List

import pytest
import requests
from _support import plain_salesforce
from simple_salesforce import Salesforce


@pytest.fixture
def sf(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return plain_salesforce(salesforce_org, monkeypatch)


def raw_query(sf: Salesforce, soql: str) -> requests.Response:
    return sf.session.get(f"{sf.base_url}query", params={"q": soql},
                          headers={"Authorization": f"Bearer {sf.session_id}"}, timeout=30)


def refused(sf: Salesforce, soql: str, code: str) -> str:
    """The message of Salesforce's 400 answer to ``soql`` (asserting its errorCode)."""
    resp = raw_query(sf, soql)
    assert resp.status_code == 400, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code, body
    return str(body[0]["message"])


def records(sf: Salesforce, soql: str) -> List[Dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(soql)["records"]]


# ------------------------------------------------------------------ item 2: OFFSET above 2,000

def test_offset_above_2000_is_number_outside_valid_range(sf: Salesforce) -> None:
    message = refused(sf, "SELECT Id FROM Account ORDER BY Name LIMIT 10 OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE")
    assert message == "Maximum SOQL offset allowed is 2000"
    assert sf.query("SELECT Id FROM Account LIMIT 10 OFFSET 2000")["records"] == []


# ------------------------------------------------------------------ item 3: semi-join rules

SEMI = "Id IN (SELECT AccountId FROM Contact)"


def test_semi_join_with_or_is_refused(sf: Salesforce) -> None:
    message = refused(sf, f"SELECT Id FROM Account WHERE Name = 'x' OR {SEMI}", "MALFORMED_QUERY")
    assert message.endswith("\nSemi join sub-selects are not allowed with the 'OR' operator"), message
    assert "ERROR at Row:1:Column:" in message


def test_semi_join_in_a_nested_expression_is_refused(sf: Salesforce) -> None:
    message = refused(sf, f"SELECT Id FROM Account WHERE Name = 'x' AND (Name = 'y' OR {SEMI})", "MALFORMED_QUERY")
    assert message.endswith("Semi join sub-selects are only allowed at the top level WHERE expressions and not "
                            "in nested WHERE expressions."), message
    message = refused(sf, f"SELECT Id FROM Account WHERE NOT ({SEMI})", "MALFORMED_QUERY")
    assert "only allowed at the top level WHERE expressions" in message


def test_at_most_two_semi_joins(sf: Salesforce) -> None:
    two = f"SELECT Id FROM Account WHERE {SEMI} AND Id NOT IN (SELECT AccountId FROM Opportunity)"
    assert sf.query(two)["records"] == []
    message = refused(sf, two + " AND Id IN (SELECT AccountId FROM Case)", "EXCEEDED_MAX_SEMIJOIN_SUBSELECTS")
    assert message == "Maximum 2 semi join sub-selects are allowed"


def test_nested_semi_join_is_refused(sf: Salesforce) -> None:
    message = refused(sf, "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Id IN "
                          "(SELECT WhoId FROM Task))", "MALFORMED_QUERY")
    assert message.endswith("Nesting of semi join sub-selects is not supported"), message


@pytest.mark.parametrize("tail,token", [("ORDER BY LastName", "ORDER"), ("LIMIT 5", "LIMIT")])
def test_order_by_or_limit_inside_a_semi_join_is_refused(sf: Salesforce, tail: str, token: str) -> None:
    message = refused(sf, f"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact {tail})",
                      "MALFORMED_QUERY")
    assert message.endswith(f"unexpected token: '{token}'"), message


# ------------------------------------------------------------------ items 4 and 5: aggregate limits

def test_aggregate_of_more_than_2000_groups_is_refused(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.insert("Account", [{"Name": f"Group {i:05d}"} for i in range(2001)])
    message = refused(sf, "SELECT Name, COUNT(Id) FROM Account GROUP BY Name", "EXCEEDED_ID_LIMIT")
    assert message == ("Aggregate query does not support queryMore(), use LIMIT to restrict the results to a "
                       "single batch")
    page = sf.query("SELECT Name, COUNT(Id) FROM Account GROUP BY Name ORDER BY Name LIMIT 2000")
    assert (page["totalSize"], page["done"], len(page["records"])) == (2000, True, 2000)


def test_limit_above_50000_on_an_ungrouped_aggregate_is_refused(sf: Salesforce) -> None:
    message = refused(sf, "SELECT COUNT(Id) FROM Account LIMIT 50001", "MALFORMED_QUERY")
    assert "ERROR at Row:1:Column:" in message
    assert sf.query("SELECT COUNT(Id) FROM Account LIMIT 50000")["records"][0]["expr0"] == 0


# ------------------------------------------------------------------ item 11: TYPEOF

def test_typeof_answers_per_type(salesforce_org: Any, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Typed Co", "Phone": "555-0100"})["id"]
    opp = sf.Opportunity.create({"Name": "Typed deal", "StageName": "Prospecting", "CloseDate": "2024-05-01",
                                 "Amount": 10, "AccountId": account})["id"]
    campaign = sf.Campaign.create({"Name": "Typed campaign"})["id"]
    for subject, what in (("1 account", account), ("2 opp", opp), ("3 campaign", campaign), ("4 none", None)):
        sf.Event.create({"Subject": subject, "WhatId": what, "ActivityDateTime": "2024-05-01T10:00:00Z",
                         "DurationInMinutes": 30})
    rows = sf.query("SELECT Subject, TYPEOF What WHEN Account THEN Name, Phone WHEN Opportunity THEN Name, Amount "
                    "ELSE Name END FROM Event ORDER BY Subject")["records"]
    base = f"/services/data/v{sf.sf_version}/sobjects/"
    assert rows[0]["What"] == {"attributes": {"type": "Account", "url": base + f"Account/{account}"},
                               "Name": "Typed Co", "Phone": "555-0100"}
    assert rows[1]["What"] == {"attributes": {"type": "Opportunity", "url": base + f"Opportunity/{opp}"},
                               "Name": "Typed deal", "Amount": 10.0}
    assert rows[2]["What"] == {"attributes": {"type": "Campaign", "url": base + f"Campaign/{campaign}"},
                               "Name": "Typed campaign"}
    assert rows[3]["What"] is None
    assert list(rows[0]) == ["attributes", "Subject", "What"]


# ------------------------------------------------------------------ item 12: nested child subqueries

def test_child_subquery_inside_a_child_subquery(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Nested Co"})["id"]
    contact = sf.Contact.create({"LastName": "Inner", "AccountId": account})["id"]
    sf.Contact.create({"LastName": "Lonely", "AccountId": account})
    for subject in ("Case B", "Case A"):
        sf.Case.create({"Subject": subject, "ContactId": contact, "AccountId": account})
    rows = sf.query(f"SELECT Name, (SELECT LastName, (SELECT Subject FROM Cases ORDER BY Subject) FROM Contacts "
                    f"ORDER BY LastName) FROM Account WHERE Id = '{account}'")["records"]
    contacts = rows[0]["Contacts"]
    assert (contacts["totalSize"], contacts["done"]) == (2, True)
    inner = contacts["records"][0]
    assert inner["LastName"] == "Inner"
    assert inner["Cases"]["totalSize"] == 2 and inner["Cases"]["done"] is True
    assert [c["Subject"] for c in inner["Cases"]["records"]] == ["Case A", "Case B"]
    assert inner["Cases"]["records"][0]["attributes"]["type"] == "Case"
    assert contacts["records"][1]["Cases"] is None


def test_more_than_five_levels_of_child_subqueries_are_refused(sf: Salesforce) -> None:
    inner = "SELECT Id FROM ChildAccounts"
    for _ in range(5):
        inner = f"SELECT Id, ({inner}) FROM ChildAccounts"
    refused(sf, f"SELECT Id, ({inner}) FROM Account", "MALFORMED_QUERY")


# ------------------------------------------------------------------ item 13: ROLLUP, CUBE, FORMAT, convertCurrency

@pytest.fixture
def grouped(salesforce_org: Any) -> None:
    salesforce_org.insert("Account", [
        {"Name": "a", "Industry": "Energy", "Type": "Customer"},
        {"Name": "b", "Industry": "Energy", "Type": "Partner"},
        {"Name": "c", "Industry": "Banking", "Type": "Customer"},
    ])


@pytest.mark.usefixtures("grouped")
def test_group_by_rollup_adds_subtotal_rows(sf: Salesforce) -> None:
    assert records(sf, "SELECT Industry, COUNT(Id) FROM Account GROUP BY ROLLUP(Industry)") == [
        {"Industry": "Banking", "expr0": 1}, {"Industry": "Energy", "expr0": 2}, {"Industry": None, "expr0": 3}]
    rows = records(sf, "SELECT Industry, Type, GROUPING(Industry) gi, GROUPING(Type) gt, COUNT(Id) n FROM Account "
                       "GROUP BY ROLLUP(Industry, Type)")
    assert rows == [
        {"Industry": "Banking", "Type": "Customer", "gi": 0, "gt": 0, "n": 1},
        {"Industry": "Banking", "Type": None, "gi": 0, "gt": 1, "n": 1},
        {"Industry": "Energy", "Type": "Customer", "gi": 0, "gt": 0, "n": 1},
        {"Industry": "Energy", "Type": "Partner", "gi": 0, "gt": 0, "n": 1},
        {"Industry": "Energy", "Type": None, "gi": 0, "gt": 1, "n": 2},
        {"Industry": None, "Type": None, "gi": 1, "gt": 1, "n": 3},
    ]


@pytest.mark.usefixtures("grouped")
def test_group_by_cube_has_every_combination(sf: Salesforce) -> None:
    rows = records(sf, "SELECT Industry, Type, GROUPING(Industry), GROUPING(Type), COUNT(Id) FROM Account "
                       "GROUP BY CUBE(Industry, Type)")
    by_key = {(r["Industry"], r["Type"], r["expr0"], r["expr1"]): r["expr2"] for r in rows}
    assert by_key[(None, "Customer", 1, 0)] == 2
    assert by_key[(None, "Partner", 1, 0)] == 1
    assert by_key[("Energy", None, 0, 1)] == 2
    assert by_key[(None, None, 1, 1)] == 3
    assert len(rows) == 3 + 2 + 2 + 1


def test_format_and_convert_currency(sf: Salesforce) -> None:
    sf.Opportunity.create({"Name": "Formatted", "StageName": "Prospecting", "CloseDate": "2024-01-31",
                           "Amount": 1234.5})
    row = records(sf, "SELECT Amount, FORMAT(Amount) amt, FORMAT(CloseDate), convertCurrency(Amount) conv, "
                      "FORMAT(convertCurrency(Amount)) fconv FROM Opportunity")[0]
    assert row == {"Amount": 1234.5, "amt": "$1,234.50", "CloseDate": "1/31/2024", "conv": 1234.5,
                   "fconv": "$1,234.50"}
    assert records(sf, "SELECT FORMAT(MAX(Amount)) FROM Opportunity") == [{"expr0": "$1,234.50"}]
    message = refused(sf, "SELECT convertCurrency(Name) FROM Opportunity", "INVALID_FIELD")
    assert "convertCurrency" in message


# ------------------------------------------------------------------ item 14: case folding beyond ASCII

def test_case_insensitive_beyond_ascii(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.insert("Account", [{"Name": n} for n in ("ümlaut Ä", "Zed", "Apfel", "ärger", "Birne")])
    assert records(sf, "SELECT Name FROM Account WHERE Name = 'ÜMLAUT ä'") == [{"Name": "ümlaut Ä"}]
    assert records(sf, "SELECT Name FROM Account WHERE Name LIKE 'ÜML%Ä'") == [{"Name": "ümlaut Ä"}]
    assert records(sf, "SELECT Name FROM Account WHERE Name IN ('ÜMLAUT ä', 'x')") == [{"Name": "ümlaut Ä"}]
    assert records(sf, "SELECT Name FROM Account WHERE Name = 'umlaut a'") == []
    names = [r["Name"] for r in records(sf, "SELECT Name FROM Account ORDER BY Name")]
    assert names == ["Apfel", "ärger", "Birne", "ümlaut Ä", "Zed"]


# ------------------------------------------------------------------ issue 18 item 11: deep parentheses

def test_five_thousand_nested_parentheses_is_malformed_query(sf: Salesforce) -> None:
    soql = "SELECT Id FROM Account WHERE " + "(" * 5000 + "Name = 'x'" + ")" * 5000
    refused(sf, soql, "MALFORMED_QUERY")
    refused(sf, "SELECT Id FROM Account WHERE " + "NOT " * 5000 + "Name = 'x'", "MALFORMED_QUERY")
    refused(sf, "SELECT " + "FORMAT(" * 5000 + "Name" + ")" * 5000 + " FROM Account", "MALFORMED_QUERY")
    assert sf.query("SELECT Id FROM Account WHERE " + "(" * 20 + "Name = 'x'" + ")" * 20)["records"] == []


def test_typeof_and_format_in_column_metadata(sf: Salesforce) -> None:
    """columns=true describes what TYPEOF and FORMAT() select (no 500)."""
    resp = sf.session.get(f"{sf.base_url}query", params={
        "q": "SELECT Id, TYPEOF What WHEN Account THEN Name END, FORMAT(ActivityDate) d FROM Event",
        "columns": "true"}, headers={"Authorization": f"Bearer {sf.session_id}"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert [c["columnName"] for c in resp.json()["columnMetadata"]] == ["Id", "What", "ActivityDate"]


def test_thousands_of_conditions_are_answered(sf: Salesforce) -> None:
    """3,000 ANDed conditions (about 50,000 characters: within Salesforce's 100,000, past a GET
    URL's 16,384 bytes, so sent as a Bulk 2.0 query job) are a query, not a 500 (SQLite's
    expressions may be at most 1,000 deep)."""
    where = " AND ".join(f"Name != 'x{i}'" for i in range(3000))
    resp = sf.session.post(f"{sf.base_url}jobs/query", json={"operation": "query",
                                                             "query": f"SELECT Id FROM Account WHERE {where}"},
                           headers={"Authorization": f"Bearer {sf.session_id}"}, timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["state"] == "UploadComplete"


def test_in_list_mixing_date_literals_and_dates(sf: Salesforce) -> None:
    """IN (TODAY, 2024-01-31): each value is bound to its own placeholder."""
    sf.Opportunity.create({"Name": "Dated", "StageName": "Prospecting", "CloseDate": "2024-01-31"})
    rows = records(sf, "SELECT Name FROM Opportunity WHERE CloseDate IN (YESTERDAY, 2024-01-31)")
    assert rows == [{"Name": "Dated"}]
