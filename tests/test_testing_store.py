"""The local org's record store: SOQL execution, writes, describe (sfjwt_ext.testing.store / sample)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, List

import pytest

from sfjwt_ext.testing import sample
from sfjwt_ext.testing.core.soql import SoqlError
from sfjwt_ext.testing.core.ids import is_valid_id, to_18
from sfjwt_ext.testing.core.literals import format_datetime
from sfjwt_ext.testing.core.store import Store
from sfjwt_ext.testing.core.standard_objects import OPPORTUNITY_STAGES

ORG_ID = "00D5g000004qR2y"
NOW = datetime(2024, 3, 15, 12, 30, tzinfo=timezone.utc)
DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def make_store() -> Store:
    store = Store(org_id=ORG_ID)
    store.clock = lambda: NOW
    return store


@pytest.fixture(scope="module")
def org() -> Dict[str, Any]:
    """A small data set; tests that write use their own store."""
    store = make_store()
    # inserted before any user exists: this Account has no owner (a null parent two levels down)
    orphan = store.insert("Account", [{"Name": "Orphan Co"}])[0]
    user = store.insert("User", [{"Username": "ann@example.com", "FirstName": "Ann", "LastName": "Smith",
                                  "Email": "ann@example.com", "ProfileId": store.admin_profile_id}])[0]
    acme, beta, gamma = store.insert("Account", [
        {"Name": "Acme", "Industry": "Energy", "AnnualRevenue": 1000, "NumberOfEmployees": 50, "Type": "Customer - Direct"},
        {"Name": "beta", "Industry": "Banking", "AnnualRevenue": 2500.5},
        {"Name": "Gamma 50% off_sale", "Industry": None},
    ])
    contacts = store.insert("Contact", [
        {"FirstName": "Ada", "LastName": "Lovelace", "AccountId": acme, "Email": "ada@example.com"},
        {"FirstName": "Alan", "LastName": "Turing", "AccountId": acme},
        {"LastName": "Hopper", "AccountId": beta},
        {"FirstName": "No", "LastName": "Account"},
        {"FirstName": "Olive", "LastName": "O'Brien", "AccountId": orphan},
    ])
    opps = store.insert("Opportunity", [
        {"Name": "Big deal", "StageName": "Closed Won", "CloseDate": "2024-01-31", "Amount": 500000,
         "AccountId": acme},
        {"Name": "Small deal", "StageName": "Prospecting", "CloseDate": "2024-03-15", "Amount": 100.25,
         "AccountId": acme},
        {"Name": "Lost deal", "StageName": "Closed Lost", "CloseDate": "2023-12-01", "AccountId": beta},
        {"Name": "No account", "StageName": "Negotiation/Review", "CloseDate": "2024-04-01", "Amount": 7},
    ])
    return {"store": store, "user": user, "orphan": orphan, "acme": acme, "beta": beta, "gamma": gamma,
            "contacts": contacts, "opps": opps}


def q(org: Dict[str, Any], soql: str, **kw: Any) -> List[dict]:
    return org["store"].query(soql, **kw).records


def names(records: List[dict], key: str = "Name") -> List[Any]:
    return [r[key] for r in records]


def soql_error(fn: Any, *args: Any, **kw: Any) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        fn(*args, **kw)
    return info.value


# --------------------------------------------------------------------------- ids


def test_to_18_matches_salesforce() -> None:
    assert to_18("001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert to_18("001D000000IqhSLIAZ") == "001D000000IqhSLIAZ"
    assert to_18("001000000000001") == "001000000000001AAA"
    assert is_valid_id("001D000000IqhSLIAZ") and is_valid_id("001D000000IqhSL")
    assert not is_valid_id("001D000000IqhSLAAA")  # wrong checksum
    assert not is_valid_id("' OR 1=1 --")
    with pytest.raises(ValueError):
        to_18("abc")


def test_ids_have_key_prefixes_and_checksums(org: Dict[str, Any]) -> None:
    store = org["store"]
    assert store.org_id == to_18(ORG_ID)
    for rid, prefix in [(org["acme"], "001"), (org["contacts"][0], "003"), (org["opps"][0], "006"),
                        (org["user"], "005"), (store.admin_profile_id, "00e")]:
        assert len(rid) == 18 and rid.startswith(prefix) and to_18(rid[:15]) == rid
    org_rec = q(org, "SELECT Id, Name, IsSandbox, InstanceName, OrganizationType, NamespacePrefix FROM Organization")
    assert org_rec[0]["Id"] == store.org_id and org_rec[0]["IsSandbox"] is False
    assert org_rec[0]["NamespacePrefix"] is None


# --------------------------------------------------------------------------- writes


def test_insert_fills_system_fields_and_defaults(org: Dict[str, Any]) -> None:
    rec = org["store"].get("Contact", org["contacts"][0])
    assert rec["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{org['contacts'][0]}"}
    assert list(rec)[0] == "attributes"
    assert rec["Name"] == "Ada Lovelace"
    assert rec["IsDeleted"] is False
    assert rec["CreatedDate"] == "2024-03-15T12:30:00.000+0000" == rec["LastModifiedDate"] == rec["SystemModstamp"]
    assert rec["OwnerId"] == org["user"]  # the first user is the default owner
    opp = org["store"].get("Opportunity", org["opps"][0], ["IsWon", "IsClosed", "Probability", "Amount"])
    assert opp == {"attributes": opp["attributes"], "IsWon": True, "IsClosed": True, "Probability": 100.0,
                   "Amount": 500000.0}


def test_insert_errors() -> None:
    store = make_store()
    e = soql_error(store.insert, "Account", [{"Name": "x", "Nmae": "y"}])
    assert (e.error_code, e.message, e.fields) == ("INVALID_FIELD", "No such column 'Nmae' on sobject of type Account",
                                                   ["Nmae"])
    e = soql_error(store.insert, "Contact", [{"FirstName": "x"}])
    assert e.error_code == "REQUIRED_FIELD_MISSING" and e.fields == ["LastName"]
    e = soql_error(store.insert, "Opportunity", [{"Name": "x", "StageName": "Prospecting", "CloseDate": "2024-01-01",
                                                  "IsWon": True}])
    assert e.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and "IsWon" in e.message
    e = soql_error(store.insert, "Contact", [{"LastName": "x", "AccountId": to_18("003000000000001")}])
    assert e.error_code == "FIELD_INTEGRITY_EXCEPTION"
    e = soql_error(store.insert, "Contact", [{"LastName": "x", "AccountId": "nope"}])
    assert e.error_code == "MALFORMED_ID"
    e = soql_error(store.insert, "Opportunity", [{"Name": "x", "StageName": "Prospecting", "CloseDate": "31/01/2024"}])
    assert e.error_code == "JSON_PARSER_ERROR"
    e = soql_error(store.insert, "Account", [{"Name": "x" * 256}])
    assert e.error_code == "STRING_TOO_LONG"
    e = soql_error(store.insert, "Acount", [{"Name": "x"}])
    assert (e.error_code, e.status) == ("NOT_FOUND", 404)
    # all or nothing
    soql_error(store.insert, "Account", [{"Name": "ok"}, {"Bad": 1}])
    assert store.query("SELECT COUNT() FROM Account").total_size == 0


def test_get_errors(org: Dict[str, Any]) -> None:
    store = org["store"]
    e = soql_error(store.get, "Account", to_18("001000000000999"))
    assert (e.error_code, e.status, e.message) == ("NOT_FOUND", 404, "The requested resource does not exist")
    assert soql_error(store.get, "Account", "garbage").status == 404
    assert soql_error(store.get, "Account", org["acme"], ["Nope"]).error_code == "INVALID_FIELD"
    assert store.get("account", org["acme"][:15], ["name"])["Name"] == "Acme"


def test_update_and_delete() -> None:
    store = make_store()
    acc = store.insert("Account", [{"Name": "A"}])[0]
    con = store.insert("Contact", [{"LastName": "L", "AccountId": acc}])[0]
    opp = store.insert("Opportunity", [{"Name": "O", "StageName": "Prospecting", "CloseDate": "2024-01-01",
                                        "AccountId": acc}])[0]
    store.clock = lambda: datetime(2024, 4, 1, tzinfo=timezone.utc)
    store.update("Opportunity", opp, {"StageName": "Closed Won", "Amount": "12.5"})
    rec = store.get("Opportunity", opp)
    assert (rec["IsWon"], rec["IsClosed"], rec["Amount"]) == (True, True, 12.5)
    assert rec["LastModifiedDate"] == "2024-04-01T00:00:00.000+0000" != rec["CreatedDate"]
    store.update("Contact", con, {"FirstName": "F"})
    assert store.get("Contact", con, ["Name"])["Name"] == "F L"
    assert soql_error(store.update, "Contact", con, {"Name": "x"}).error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert soql_error(store.update, "Contact", con, {"LastName": None}).error_code == "REQUIRED_FIELD_MISSING"

    store.delete("Account", acc)  # cascades to the Contact and the Opportunity
    assert store.query("SELECT Id FROM Account").total_size == 0
    assert store.query("SELECT Id FROM Contact").total_size == 0
    assert store.query("SELECT COUNT() FROM Opportunity").total_size == 0
    deleted = store.query("SELECT Id, IsDeleted FROM Account", include_deleted=True).records
    assert deleted[0]["IsDeleted"] is True
    assert store.query("SELECT COUNT() FROM Opportunity", include_deleted=True).total_size == 1
    assert soql_error(store.get, "Account", acc).status == 404
    assert soql_error(store.delete, "Account", acc).error_code == "ENTITY_IS_DELETED"
    assert soql_error(store.update, "Account", acc, {"Name": "x"}).error_code == "ENTITY_IS_DELETED"
    assert soql_error(store.delete, "Organization", store.org_id).status == 405


# --------------------------------------------------------------------------- record shapes


def test_record_shape_order_and_types(org: Dict[str, Any]) -> None:
    res = org["store"].query("SELECT Name, Id, IsWon, CloseDate, CreatedDate, Amount, Probability, Account.Name "
                             "FROM Opportunity WHERE Name = 'Big deal'")
    assert (res.total_size, res.entity) == (1, "Opportunity")
    rec = res.records[0]
    assert list(rec) == ["attributes", "Name", "Id", "IsWon", "CloseDate", "CreatedDate", "Amount", "Probability",
                         "Account"]
    assert rec["attributes"] == {"type": "Opportunity",
                                 "url": f"/services/data/v62.0/sobjects/Opportunity/{org['opps'][0]}"}
    assert rec["IsWon"] is True
    assert rec["CloseDate"] == "2024-01-31"
    assert DT_RE.match(rec["CreatedDate"])
    assert isinstance(rec["Amount"], float) and rec["Amount"] == 500000.0
    acc = q(org, "SELECT NumberOfEmployees, AnnualRevenue FROM Account WHERE Name = 'Acme'")[0]
    assert acc["NumberOfEmployees"] == 50 and isinstance(acc["NumberOfEmployees"], int)
    assert acc["AnnualRevenue"] == 1000.0 and isinstance(acc["AnnualRevenue"], float)


def test_parent_one_and_two_levels_with_null_parents(org: Dict[str, Any]) -> None:
    recs = q(org, "SELECT LastName, Account.Name, Account.Owner.Name, Account.Industry FROM Contact ORDER BY LastName")
    by_name = {r["LastName"]: r for r in recs}
    ada = by_name["Lovelace"]
    assert list(ada) == ["attributes", "LastName", "Account"]
    assert ada["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{org['acme']}"},
        "Name": "Acme",
        "Owner": {"attributes": {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{org['user']}"},
                  "Name": "Ann Smith"},
        "Industry": "Energy",
    }
    assert by_name["Account"]["Account"] is None  # no Account
    assert by_name["O'Brien"]["Account"]["Owner"] is None  # Account without owner
    assert by_name["O'Brien"]["Account"]["Industry"] is None


def test_parent_filter_and_object_name_prefix(org: Dict[str, Any]) -> None:
    assert names(q(org, "SELECT LastName FROM Contact WHERE Account.Owner.Name = 'ann smith' ORDER BY LastName"),
                 "LastName") == ["Hopper", "Lovelace", "Turing"]
    assert names(q(org, "SELECT Account.Name FROM Account WHERE Account.Name = 'Acme'")) == ["Acme"]


def test_child_subqueries(org: Dict[str, Any]) -> None:
    recs = q(org, "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC), "
                  "(SELECT Name, Amount FROM Opportunities WHERE Amount != null ORDER BY Amount LIMIT 1) "
                  "FROM Account ORDER BY Name")
    by_name = {r["Name"]: r for r in recs}
    acme = by_name["Acme"]
    assert list(acme) == ["attributes", "Name", "Contacts", "Opportunities"]
    assert acme["Contacts"]["totalSize"] == 2 and acme["Contacts"]["done"] is True
    assert [c["LastName"] for c in acme["Contacts"]["records"]] == ["Turing", "Lovelace"]
    assert acme["Contacts"]["records"][0]["attributes"]["type"] == "Contact"
    assert acme["Opportunities"] == {"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Opportunity", "url": f"/services/data/v62.0/sobjects/Opportunity/{org['opps'][1]}"},
         "Name": "Small deal", "Amount": 100.25}]}
    assert by_name["Gamma 50% off_sale"]["Contacts"] is None
    assert by_name["beta"]["Opportunities"] is None  # its only Opportunity has no Amount


def test_child_subquery_with_parent_path(org: Dict[str, Any]) -> None:
    rec = q(org, "SELECT Name, (SELECT Name, Owner.Name FROM Opportunities ORDER BY Name) FROM Account "
                 "WHERE Id = '%s'" % org["acme"])[0]
    assert [(o["Name"], o["Owner"]["Name"]) for o in rec["Opportunities"]["records"]] == [
        ("Big deal", "Ann Smith"), ("Small deal", "Ann Smith")]


# --------------------------------------------------------------------------- counting and aggregates


def test_count(org: Dict[str, Any]) -> None:
    res = org["store"].query("SELECT COUNT() FROM Contact")
    assert (res.records, res.total_size, res.entity) == ([], 5, "Contact")
    assert org["store"].query("SELECT COUNT() FROM Contact WHERE AccountId = null").total_size == 1
    assert org["store"].query("SELECT COUNT() FROM Contact LIMIT 2").total_size == 2


def test_aggregates_names_and_types(org: Dict[str, Any]) -> None:
    res = org["store"].query("SELECT COUNT(Id), SUM(Amount) total, MAX(CloseDate), AVG(Amount) FROM Opportunity")
    assert res.total_size == 1
    rec = res.records[0]
    assert list(rec) == ["attributes", "expr0", "total", "expr1", "expr2"]
    assert rec["attributes"] == {"type": "AggregateResult"}
    assert rec["expr0"] == 4 and rec["total"] == pytest.approx(500107.25) and rec["expr1"] == "2024-04-01"
    assert rec["expr2"] == pytest.approx(500107.25 / 3)


def test_group_by_having_order(org: Dict[str, Any]) -> None:
    recs = q(org, "SELECT Account.Name, COUNT(Id) n, SUM(Amount) FROM Opportunity GROUP BY Account.Name "
                  "ORDER BY COUNT(Id) DESC, Account.Name NULLS LAST")
    assert [(r["Name"], r["n"]) for r in recs] == [("Acme", 2), ("beta", 1), (None, 1)]
    assert recs[1]["expr0"] is None
    recs = q(org, "SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName HAVING COUNT(Id) > 0 "
                  "AND StageName LIKE 'closed%' ORDER BY StageName")
    assert names(recs, "StageName") == ["Closed Lost", "Closed Won"]
    recs = q(org, "SELECT Industry ind, COUNT_DISTINCT(Type) FROM Account GROUP BY Industry ORDER BY Industry")
    assert [r["ind"] for r in recs] == [None, "Banking", "Energy"]
    assert recs[0]["expr0"] == 0  # COUNT_DISTINCT ignores nulls


def test_aggregate_errors(org: Dict[str, Any]) -> None:
    store = org["store"]
    e = soql_error(store.query, "SELECT Name, COUNT(Id) FROM Account GROUP BY Industry")
    assert e.error_code == "MALFORMED_QUERY" and "Field must be grouped or aggregated: Name" in e.message
    assert soql_error(store.query, "SELECT SUM(Name) FROM Account").error_code == "INVALID_FIELD"
    assert soql_error(store.query, "SELECT COUNT(), Name FROM Account").error_code == "MALFORMED_QUERY"


# --------------------------------------------------------------------------- filters, ordering, paging


def test_limit_offset_and_default_order(org: Dict[str, Any]) -> None:
    all_names = names(q(org, "SELECT Name FROM Opportunity"))
    assert all_names == ["Big deal", "Small deal", "Lost deal", "No account"]  # insertion order
    assert names(q(org, "SELECT Name FROM Opportunity LIMIT 2 OFFSET 1")) == all_names[1:3]
    assert org["store"].query("SELECT Name FROM Opportunity OFFSET 3").total_size == 1
    assert q(org, "SELECT Name FROM Opportunity LIMIT 0") == []


def test_order_by_nulls(org: Dict[str, Any]) -> None:
    def amounts(order: str) -> List[Any]:
        return names(q(org, f"SELECT Amount FROM Opportunity ORDER BY {order}"), "Amount")

    assert amounts("Amount") == [None, 7.0, 100.25, 500000.0]  # ASC: nulls first
    assert amounts("Amount DESC") == [500000.0, 100.25, 7.0, None]  # DESC: nulls last
    assert amounts("Amount ASC NULLS LAST") == [7.0, 100.25, 500000.0, None]
    assert amounts("Amount DESC NULLS FIRST") == [None, 500000.0, 100.25, 7.0]
    # text sorts case-insensitively, multiple keys
    assert names(q(org, "SELECT Name FROM Account ORDER BY Name")) == ["Acme", "beta", "Gamma 50% off_sale",
                                                                       "Orphan Co"]
    recs = q(org, "SELECT LastName FROM Contact ORDER BY Account.Name DESC NULLS FIRST, LastName")
    assert names(recs, "LastName") == ["Account", "O'Brien", "Hopper", "Lovelace", "Turing"]


def test_equality_is_case_insensitive_and_not_equal_includes_nulls(org: Dict[str, Any]) -> None:
    assert names(q(org, "SELECT Name FROM Account WHERE Name = 'ACME'")) == ["Acme"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Industry != 'Energy'"))) == [
        "Gamma 50% off_sale", "Orphan Co", "beta"]
    assert names(q(org, "SELECT Name FROM Account WHERE Industry = null ORDER BY Name")) == [
        "Gamma 50% off_sale", "Orphan Co"]
    assert len(q(org, "SELECT Name FROM Account WHERE Industry != null")) == 2


def test_like(org: Dict[str, Any]) -> None:
    assert names(q(org, "SELECT Name FROM Account WHERE Name LIKE 'a%'")) == ["Acme"]
    assert names(q(org, "SELECT Name FROM Account WHERE Name LIKE '_ET_'")) == ["beta"]
    assert names(q(org, "SELECT Name FROM Account WHERE Name LIKE '%50\\% off\\_%'")) == ["Gamma 50% off_sale"]
    assert q(org, "SELECT Name FROM Account WHERE Name LIKE '%50\\%x%'") == []
    assert soql_error(org["store"].query, "SELECT Id FROM Account WHERE AnnualRevenue LIKE '1%'").error_code == \
        "INVALID_FIELD"


def test_in_not_in_and_not(org: Dict[str, Any]) -> None:
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Industry IN ('energy', 'Banking')"))) == ["Acme", "beta"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Industry NOT IN ('Energy')"))) == [
        "Gamma 50% off_sale", "Orphan Co", "beta"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE NOT Industry = 'Energy'"))) == [
        "Gamma 50% off_sale", "Orphan Co", "beta"]
    assert names(q(org, "SELECT Name FROM Account WHERE NOT (Industry = null OR Name = 'beta')")) == ["Acme"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Industry IN ('Energy', null)"))) == [
        "Acme", "Gamma 50% off_sale", "Orphan Co"]
    ids = q(org, f"SELECT Id FROM Account WHERE Id IN ('{org['acme']}', '{org['beta'][:15]}')")
    assert sorted(names(ids, "Id")) == sorted([org["acme"], org["beta"]])


def test_booleans_numbers_and_semi_join(org: Dict[str, Any]) -> None:
    assert sorted(names(q(org, "SELECT Name FROM Opportunity WHERE IsClosed = true"))) == ["Big deal", "Lost deal"]
    assert names(q(org, "SELECT Name FROM Opportunity WHERE IsWon = false AND Amount > 50")) == ["Small deal"]
    assert names(q(org, "SELECT Name FROM Opportunity WHERE Amount >= 7 AND Amount <= 7.0")) == ["No account"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact "
                               "WHERE LastName LIKE 'T%' OR LastName = 'Hopper')"))) == ["Acme", "beta"]
    assert sorted(names(q(org, "SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Opportunity)"))) == [
        "Gamma 50% off_sale", "Orphan Co"]


def test_dates_and_datetimes(org: Dict[str, Any]) -> None:
    assert names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate = 2024-01-31")) == ["Big deal"]
    assert names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate < 2024-01-01")) == ["Lost deal"]
    assert len(q(org, "SELECT Id FROM Opportunity WHERE CreatedDate = 2024-03-15T12:30:00Z")) == 4
    assert len(q(org, "SELECT Id FROM Opportunity WHERE CreatedDate = 2024-03-15T14:30:00+02:00")) == 4
    assert q(org, "SELECT Id FROM Opportunity WHERE CreatedDate > 2024-03-15T12:30:00.001Z") == []
    # date literals relative to the store's clock (2024-03-15)
    assert names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate = TODAY")) == ["Small deal"]
    assert names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate > TODAY")) == ["No account"]
    assert sorted(names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate = LAST_N_DAYS:60"))) == [
        "Big deal", "Small deal"]
    assert names(q(org, "SELECT Name FROM Opportunity WHERE CloseDate = NEXT_MONTH")) == ["No account"]
    assert len(q(org, "SELECT Id FROM Opportunity WHERE CreatedDate = THIS_YEAR")) == 4
    assert q(org, "SELECT Id FROM Opportunity WHERE CreatedDate = YESTERDAY") == []


@pytest.mark.parametrize("soql,code", [
    ("SELECT Id FROM Opportunity WHERE Amount = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE Name = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE IsWon > true", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE CloseDate = 2024-01-01T00:00:00Z", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE CreatedDate = 2024-01-01", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE Amount = TODAY", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE Id = 'bad'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id, Id FROM Opportunity", "MALFORMED_QUERY"),
    ("SELECT Name FROM Account WHERE Amount > 5", "INVALID_FIELD"),
])
def test_filter_type_errors(org: Dict[str, Any], soql: str, code: str) -> None:
    assert soql_error(org["store"].query, soql).error_code == code


def test_name_errors_like_salesforce(org: Dict[str, Any]) -> None:
    store = org["store"]
    e = soql_error(store.query, "SELECT Id FROM Acount")
    assert e.error_code == "INVALID_TYPE"
    assert e.message.endswith("sObject type 'Acount' is not supported. If you are attempting to use a custom object, "
                              "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                              "describe call for the appropriate names.")
    assert "ERROR at Row:1:Column:16" in e.message
    e = soql_error(store.query, "SELECT Id, Nmae FROM Account")
    assert e.error_code == "INVALID_FIELD"
    assert "ERROR at Row:1:Column:12\nNo such column 'Nmae' on entity 'Account'. If you are attempting to use a " \
           "custom field, be sure to append the '__c' after the custom field name." in e.message
    e = soql_error(store.query, "SELECT Account.Nmae FROM Contact")
    assert "No such column 'Nmae' on entity 'Account'" in e.message
    e = soql_error(store.query, "SELECT Acount.Name FROM Contact")
    assert e.error_code == "INVALID_FIELD" and "Didn't understand relationship 'Acount' in field path" in e.message
    e = soql_error(store.query, "SELECT Id, (SELECT Id FROM Contactz) FROM Account")
    assert e.error_code == "INVALID_TYPE" and "Didn't understand relationship 'Contactz' in FROM part" in e.message
    assert soql_error(store.query, "SELECT Id FROM Account WHERE Nope = 1").error_code == "INVALID_FIELD"
    assert soql_error(store.query, "SELECT Id FROM Account ORDER BY Nope").error_code == "INVALID_FIELD"
    assert store.query("SELECT Id FROM ApexClass").records == []  # ApexClass is in both the data and Tooling APIs
    assert soql_error(store.query, "SELECT Id FROM Account", tooling=True).error_code == "INVALID_TYPE"


def test_injection_attempts_are_just_values(org: Dict[str, Any]) -> None:
    store = org["store"]
    assert q(org, "SELECT Id FROM Account WHERE Name = '\\' OR 1=1 --'") == []
    assert q(org, "SELECT Id FROM Account WHERE Name = 'x\\'; DROP TABLE \"Account\"; --'") == []
    assert q(org, "SELECT Id FROM Account WHERE Name LIKE '%\\' OR \\'1\\'=\\'1'") == []
    assert names(q(org, "SELECT LastName FROM Contact WHERE LastName = 'O\\'Brien'"), "LastName") == ["O'Brien"]
    assert store.query("SELECT COUNT() FROM Account").total_size == 4
    # identifiers never reach SQL unless they are schema names
    e = soql_error(store.query, "SELECT Id FROM Account WHERE \"Name\" = 'x'")
    assert e.error_code == "MALFORMED_QUERY"


def test_tooling_queries(org: Dict[str, Any]) -> None:
    store = make_store()
    store.insert("ApexClass", [{"Name": "Hello", "Body": "public class Hello {}", "ApiVersion": 62}])
    rec = store.query("SELECT Id, Name, Status, Body FROM ApexClass", tooling=True).records[0]
    assert rec["attributes"]["url"].startswith("/services/data/v62.0/tooling/sobjects/ApexClass/01p")
    assert (rec["Name"], rec["Status"]) == ("Hello", "Active")
    assert store.has_object("ApexClass", tooling=True) and not store.has_object("Account", tooling=True)


# --------------------------------------------------------------------------- describe


def test_describe_global(org: Dict[str, Any]) -> None:
    d = org["store"].describe_global()
    assert d["encoding"] == "UTF-8" and d["maxBatchSize"] == 200
    by_name = {s["name"]: s for s in d["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "User", "Profile", "Organization", "Lead", "Case"} <= set(by_name)
    acc = by_name["Account"]
    assert (acc["keyPrefix"], acc["label"], acc["labelPlural"], acc["custom"], acc["queryable"]) == (
        "001", "Account", "Accounts", False, True)
    assert acc["urls"] == {"rowTemplate": "/services/data/v62.0/sobjects/Account/{ID}",
                           "defaultValues": "/services/data/v62.0/sobjects/Account/defaultValues?recordTypeId&fields",
                           "describe": "/services/data/v62.0/sobjects/Account/describe",
                           "sobject": "/services/data/v62.0/sobjects/Account"}
    assert by_name["Organization"]["createable"] is False
    assert [s["name"] for s in org["store"].describe_global(tooling=True)["sobjects"]] == ["ApexClass"]


def test_describe(org: Dict[str, Any]) -> None:
    store = org["store"]
    d = store.describe("contact")
    assert (d["name"], d["keyPrefix"], d["label"]) == ("Contact", "003", "Contact")
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["AccountId"]["type"] == "reference" and fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account" and fields["AccountId"]["soapType"] == "tns:ID"
    assert fields["Name"]["calculated"] is True and fields["Name"]["createable"] is False
    assert fields["Id"]["type"] == "id" and fields["Id"]["nillable"] is False
    assert fields["IsDeleted"]["type"] == "boolean" and fields["IsDeleted"]["soapType"] == "xsd:boolean"
    assert fields["CreatedDate"]["type"] == "datetime" and fields["CreatedDate"]["soapType"] == "xsd:dateTime"
    opp = {f["name"]: f for f in store.describe("Opportunity")["fields"]}
    assert opp["Amount"]["type"] == "currency" and opp["Amount"]["soapType"] == "xsd:double"
    assert opp["CloseDate"]["type"] == "date" and opp["Probability"]["type"] == "percent"
    assert [p["value"] for p in opp["StageName"]["picklistValues"]] == [s[0] for s in OPPORTUNITY_STAGES]
    acc = store.describe("Account")
    rels = {r["relationshipName"]: r for r in acc["childRelationships"]}
    assert rels["Contacts"]["childSObject"] == "Contact" and rels["Contacts"]["field"] == "AccountId"
    assert rels["Opportunities"]["childSObject"] == "Opportunity"
    assert {f["name"]: f for f in acc["fields"]}["NumberOfEmployees"]["type"] == "int"
    e = soql_error(store.describe, "Acount")
    assert (e.error_code, e.status) == ("NOT_FOUND", 404)
    assert store.has_object("account") and not store.has_object("Acount")
    assert "IsDeleted" not in {f["name"] for f in store.describe("Organization")["fields"]}


# --------------------------------------------------------------------------- columns=true and flat rows


def test_column_metadata(org: Dict[str, Any]) -> None:
    meta = org["store"].column_metadata("SELECT Id, Name, Amount, IsWon, Account.Name, Account.Owner.Name "
                                        "FROM Opportunity")
    assert (meta["entityName"], meta["groupBy"], meta["idSelected"], meta["keyPrefix"]) == (
        "Opportunity", False, True, "006")
    cols = meta["columnMetadata"]
    assert [c["columnName"] for c in cols] == ["Id", "Name", "Amount", "IsWon", "Account"]
    assert set(cols[0]) == {"aggregate", "apexType", "booleanType", "columnName", "custom", "displayName",
                            "foreignKeyName", "insertable", "joinColumns", "numberType", "textType", "updatable"}
    assert cols[0]["apexType"] == "Id" and cols[1]["apexType"] == "String" and cols[1]["textType"] is True
    assert cols[2]["numberType"] is True and cols[3]["booleanType"] is True and cols[3]["apexType"] == "Boolean"
    account = cols[4]
    assert [c["columnName"] for c in account["joinColumns"]] == ["Name", "Owner"]
    assert account["joinColumns"][0]["displayName"] == "Account.Name"
    assert account["joinColumns"][1]["joinColumns"][0]["columnName"] == "Name"
    agg = org["store"].column_metadata("SELECT StageName, COUNT(Id), SUM(Amount) s FROM Opportunity GROUP BY StageName")
    assert agg["groupBy"] is True and agg["idSelected"] is False
    assert [(c["columnName"], c["aggregate"], c["apexType"]) for c in agg["columnMetadata"]] == [
        ("StageName", False, "String"), ("expr0", True, "Integer"), ("s", True, "Decimal")]
    assert agg["columnMetadata"][1]["displayName"] == "COUNT(Id)"
    sub = org["store"].column_metadata("SELECT Name, (SELECT LastName FROM Contacts) FROM Account")
    assert sub["columnMetadata"][1]["columnName"] == "Contacts" and sub["columnMetadata"][1]["aggregate"] is True
    assert sub["columnMetadata"][1]["joinColumns"][0]["columnName"] == "LastName"
    assert org["store"].column_metadata("SELECT COUNT() FROM Account")["columnMetadata"] == []
    assert soql_error(org["store"].column_metadata, "SELECT Nope FROM Account").error_code == "INVALID_FIELD"


def test_query_flat(org: Dict[str, Any]) -> None:
    columns, rows = org["store"].query_flat("SELECT Name, Account.Name, account.owner.name, IsWon, Amount, CloseDate "
                                            "FROM Opportunity ORDER BY Name")
    assert columns == ["Name", "Account.Name", "Account.Owner.Name", "IsWon", "Amount", "CloseDate"]
    assert rows[0] == ("Big deal", "Acme", "Ann Smith", "true", "500000.0", "2024-01-31")
    assert rows[2] == ("No account", "", "", "false", "7.0", "2024-04-01")
    assert all(isinstance(v, str) for row in rows for v in row)
    columns, rows = org["store"].query_flat("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName "
                                            "ORDER BY StageName LIMIT 1")
    assert (columns, rows) == (["StageName", "expr0"], [("Closed Lost", "1")])
    assert len(org["store"].query_flat("SELECT Id FROM Account", include_deleted=True)[1]) == 4
    assert soql_error(org["store"].query_flat, "SELECT Id, (SELECT Id FROM Contacts) FROM Account").error_code == \
        "INVALIDJOB"


# --------------------------------------------------------------------------- sample data


@pytest.fixture(scope="module")
def sampled() -> Store:
    store = make_store()
    owners = store.insert("User", [{"Username": f"u{i}@example.com", "LastName": f"U{i}", "Email": f"u{i}@x.org"}
                                   for i in range(3)])
    counts = sample.load_sample_data(store, owner_ids=owners)
    assert counts == {"Account": 500, "Contact": 1500, "Opportunity": 2000, "Lead": 100, "Case": 200, "ApexClass": 2}
    return store


def test_sample_data_is_deterministic(sampled: Store) -> None:
    other = make_store()
    other.insert("User", [{"Username": f"u{i}@example.com", "LastName": f"U{i}", "Email": f"u{i}@x.org"}
                          for i in range(3)])
    sample.load_sample_data(other)  # owners default to the active users
    soql = "SELECT Name, Industry, AnnualRevenue, Owner.Username FROM Account ORDER BY Name"
    assert [{k: v for k, v in r.items() if k != "attributes" and k != "Owner"} for r in sampled.query(soql).records] \
        == [{k: v for k, v in r.items() if k != "attributes" and k != "Owner"} for r in other.query(soql).records]
    soql = "SELECT Name, Amount, StageName, CloseDate FROM Opportunity ORDER BY Name"
    assert [tuple(r.values())[1:] for r in sampled.query(soql).records] == \
        [tuple(r.values())[1:] for r in other.query(soql).records]


def test_sample_data_is_consistent(sampled: Store) -> None:
    assert sampled.query("SELECT COUNT() FROM Contact WHERE AccountId = null").total_size > 0
    assert sampled.query("SELECT COUNT() FROM Opportunity WHERE Amount = null").total_size > 0
    stages = {s[0]: s for s in OPPORTUNITY_STAGES}
    recs = sampled.query("SELECT StageName, IsWon, IsClosed, MIN(Probability) lo, MAX(Probability) hi, COUNT(Id) "
                         "FROM Opportunity GROUP BY StageName, IsWon, IsClosed").records
    assert len(recs) == len(stages)  # one (IsWon, IsClosed) pair per stage
    for r in recs:
        name, prob, closed, won = stages[r["StageName"]]
        assert (r["lo"], r["hi"], r["IsClosed"], r["IsWon"]) == (float(prob), float(prob), closed, won)
    e = soql_error(sampled.query, "SELECT Probability, COUNT(Id) FROM Opportunity GROUP BY Probability")
    assert e.error_code == "MALFORMED_QUERY" and "can not be grouped" in e.message
    industries = sampled.query("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry").records
    assert len(industries) > 10
    countries = sampled.query("SELECT BillingCountry, COUNT(Id) FROM Account GROUP BY BillingCountry").records
    assert len(countries) > 5
    # parent and child paths over sample data
    acc = sampled.query("SELECT Name, (SELECT Name FROM Opportunities) FROM Account "
                        "WHERE Id IN (SELECT AccountId FROM Opportunity) LIMIT 5").records
    assert all(a["Opportunities"]["totalSize"] >= 1 for a in acc)


def test_generate_100k_opportunities(sampled: Store) -> None:
    before = sampled.query("SELECT COUNT() FROM Opportunity").total_size
    assert sample.generate_opportunities(sampled, 100_000) == 100_000
    assert sampled.query("SELECT COUNT() FROM Opportunity").total_size == before + 100_000
    res = sampled.query("SELECT Id, Name, StageName, Amount, CloseDate, IsWon, IsClosed, Account.Name "
                        "FROM Opportunity")
    assert res.total_size == len(res.records) == before + 100_000
    last = res.records[-1]
    assert last["Name"] == "Generated Opportunity 100000"
    assert isinstance(last["IsWon"], bool) and re.match(r"^\d{4}-\d{2}-\d{2}$", last["CloseDate"])
    won = sampled.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true AND StageName != 'Closed Won'")
    assert won.total_size == 0
    columns, rows = sampled.query_flat("SELECT Id, Name, Amount, IsWon FROM Opportunity WHERE Name LIKE 'Generated%'")
    assert len(rows) == 100_000 and rows[0][3] in ("true", "false")


def test_format_datetime_converts_to_utc() -> None:
    from datetime import timedelta
    tz = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2024, 1, 31, 12, 0, 0, 123456, tzinfo=tz)) == "2024-01-31T10:00:00.123+0000"
    store = make_store()
    acc = store.insert("Account", [{"Name": "T", "CreatedDate": "2024-01-31T10:00:00+02:00"}])[0]
    assert store.get("Account", acc, ["CreatedDate"])["CreatedDate"] == "2024-01-31T08:00:00.000+0000"
