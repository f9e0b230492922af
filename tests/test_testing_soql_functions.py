"""More of a real org (issue 10 item 7): the standard objects scripts touch first, Account's
standard fields and compound BillingAddress, the Master record type, FIELDS(), toLabel(), date
functions, fiscal literals, sObject updated/deleted and limits/recordCount.

Driven over HTTPS with simple-salesforce.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict

import pytest
from _support import plain_salesforce
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

@pytest.fixture
def sf(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return plain_salesforce(salesforce_org, monkeypatch)


def _error(exc: SalesforceMalformedRequest) -> Dict[str, Any]:
    assert isinstance(exc.content, list) and exc.content
    return dict(exc.content[0])


# ------------------------------------------------------------------ standard objects

def test_user_records_are_the_orgs_users(salesforce_org: Any, sf: Salesforce) -> None:
    creds = salesforce_org.credentials
    second = salesforce_org.add_user("second@example.com", name="Second User")
    rows = sf.query("SELECT Id, Username, IsActive, Profile.Name, TimeZoneSidKey FROM User ORDER BY Username")
    by_name = {r["Username"]: r for r in rows["records"]}
    assert by_name[creds.username]["Id"] == creds.user_id
    assert by_name["second@example.com"]["Id"] == second
    assert by_name[creds.username]["Profile"]["Name"] == "System Administrator"
    assert by_name[creds.username]["TimeZoneSidKey"] == "America/Los_Angeles"
    identity = requests.get(sf.restful("")["identity"], headers={"Authorization": f"Bearer {sf.session_id}"},
                            verify=salesforce_org.ca_file, timeout=10).json()
    assert identity["user_id"] == creds.user_id and identity["username"] == creds.username
    account = sf.Account.create({"Name": "Audited"})["id"]
    audited = sf.query(f"SELECT CreatedById, CreatedBy.Username, LastModifiedById FROM Account WHERE Id = '{account}'")
    record = audited["records"][0]
    assert record["CreatedBy"]["Username"] == creds.username and record["LastModifiedById"] == creds.user_id


def test_products_price_books_and_line_items(salesforce_org: Any, sf: Salesforce) -> None:
    standard = sf.query("SELECT Id, Name FROM Pricebook2 WHERE IsStandard = true")["records"]
    assert [p["Name"] for p in standard] == ["Standard Price Book"]
    product = sf.Product2.create({"Name": "Widget Pro", "ProductCode": "WP-1", "IsActive": True})["id"]
    custom_book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.PricebookEntry.create({"Pricebook2Id": custom_book, "Product2Id": product, "UnitPrice": 80})
    assert _error(info.value)["errorCode"] == "STANDARD_PRICE_NOT_DEFINED"
    entry = sf.PricebookEntry.create({"Pricebook2Id": standard[0]["Id"], "Product2Id": product, "UnitPrice": 100,
                                      "IsActive": True})["id"]
    sf.PricebookEntry.create({"Pricebook2Id": custom_book, "Product2Id": product, "UnitPrice": 80})
    opp = sf.Opportunity.create({"Name": "Big Deal", "StageName": "Prospecting", "CloseDate": "2025-01-31"})["id"]
    sf.OpportunityLineItem.create({"OpportunityId": opp, "PricebookEntryId": entry, "Quantity": 3})
    line = sf.query("SELECT Name, Quantity, UnitPrice, ListPrice, TotalPrice, Product2.Name, PricebookEntry.Name "
                    "FROM OpportunityLineItem")["records"][0]
    assert (line["Quantity"], line["UnitPrice"], line["ListPrice"], line["TotalPrice"]) == (3.0, 100.0, 100.0, 300.0)
    assert line["Product2"]["Name"] == "Widget Pro" and line["PricebookEntry"]["Name"] == "Widget Pro"
    assert line["Name"] == "Big Deal Widget Pro"
    items = sf.query(f"SELECT (SELECT Quantity FROM OpportunityLineItems) FROM Opportunity WHERE Id = '{opp}'")
    assert items["records"][0]["OpportunityLineItems"]["totalSize"] == 1


def test_tasks_events_campaigns(salesforce_org: Any, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Activity Co"})["id"]
    contact = sf.Contact.create({"LastName": "Lovelace", "AccountId": account})["id"]
    lead = sf.Lead.create({"LastName": "Hopper", "Company": "Navy"})["id"]
    sf.Task.create({"Subject": "Call", "WhoId": contact, "WhatId": account, "Priority": "High"})
    sf.Task.create({"Subject": "Mail", "WhoId": lead, "Status": "Completed"})
    tasks = sf.query("SELECT Subject, Status, IsClosed, IsHighPriority, Who.Name FROM Task ORDER BY Subject")
    assert [(t["Subject"], t["Status"], t["IsClosed"], t["IsHighPriority"]) for t in tasks["records"]] == \
        [("Call", "Not Started", False, True), ("Mail", "Completed", True, False)]
    assert tasks["records"][0]["Who"]["Name"] == "Lovelace"
    who = {f["name"]: f for f in sf.Task.describe()["fields"]}["WhoId"]
    assert who["referenceTo"] == ["Contact", "Lead"] and who["polymorphicForeignKey"] is True
    account_tasks = sf.query(f"SELECT (SELECT Subject FROM Tasks) FROM Account WHERE Id = '{account}'")
    assert [t["Subject"] for t in account_tasks["records"][0]["Tasks"]["records"]] == ["Call"]

    sf.Event.create({"Subject": "Demo", "StartDateTime": "2025-03-01T10:00:00.000+0000", "DurationInMinutes": 90,
                     "WhatId": account})
    event = sf.query("SELECT ActivityDate, EndDateTime, DurationInMinutes FROM Event")["records"][0]
    assert (event["ActivityDate"], event["EndDateTime"], event["DurationInMinutes"]) == \
        ("2025-03-01", "2025-03-01T11:30:00.000+0000", 90)
    parent = sf.Campaign.create({"Name": "Spring", "Type": "Webinar", "IsActive": True})["id"]
    sf.Campaign.create({"Name": "Spring EMEA", "ParentId": parent})
    child = sf.query("SELECT Name, Parent.Name, Status FROM Campaign WHERE ParentId != null")["records"][0]
    assert (child["Name"], child["Parent"]["Name"], child["Status"]) == ("Spring EMEA", "Spring", "Planned")


def test_account_standard_fields_and_billing_address(salesforce_org: Any, sf: Salesforce) -> None:
    parent = sf.Account.create({"Name": "Holding"})["id"]
    made = sf.Account.create({"Name": "Sub", "ParentId": parent, "Description": "a long text",
                              "BillingStreet": "1 Main St", "BillingCity": "Springfield", "BillingState": "IL",
                              "BillingPostalCode": "62701", "BillingCountry": "USA"})["id"]
    got = sf.Account.get(made)
    assert got["BillingAddress"] == {"city": "Springfield", "country": "USA", "geocodeAccuracy": None,
                                     "latitude": None, "longitude": None, "postalCode": "62701", "state": "IL",
                                     "street": "1 Main St"}
    assert got["ShippingAddress"] is None and got["Description"] == "a long text"
    rows = sf.query(f"SELECT BillingAddress, Parent.Name FROM Account WHERE Id = '{made}'")["records"]
    assert rows[0]["BillingAddress"]["city"] == "Springfield" and rows[0]["Parent"]["Name"] == "Holding"
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert fields["BillingAddress"]["type"] == "address" and fields["BillingCity"]["compoundFieldName"] == \
        "BillingAddress"
    assert fields["BillingAddress"]["filterable"] is False
    with pytest.raises(SalesforceMalformedRequest):
        sf.Account.create({"Name": "X", "BillingAddress": {"city": "Nope"}})
    job = sf.bulk2.Account.query("SELECT BillingAddress FROM Account", wait=0)
    with pytest.raises(Exception, match="compound data not supported in Bulk Query"):
        list(job)


def test_master_record_type_in_describe(salesforce_org: Any, sf: Salesforce) -> None:
    infos = sf.Account.describe()["recordTypeInfos"]
    assert infos == [{"active": True, "available": True, "defaultRecordTypeMapping": True, "developerName": "Master",
                      "master": True, "name": "Master", "recordTypeId": "012000000000000AAA",
                      "urls": {"layout": f"/services/data/v{sf.sf_version}/sobjects/Account/describe/layouts/"
                                         "012000000000000AAA"}}]
    rt = sf.RecordType.create({"Name": "Partner", "DeveloperName": "Partner", "SobjectType": "Account"})["id"]
    names = [(i["name"], i["master"]) for i in sf.Account.describe()["recordTypeInfos"]]
    assert names == [("Partner", False), ("Master", True)]
    assert sf.query("SELECT toLabel(Name) FROM RecordType")["records"][0]["Name"] == "Partner" and rt


# ------------------------------------------------------------------ FIELDS(), toLabel()

def test_fields_functions(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.add_field("Account", "Tier__c", type="picklist", values=["Gold", "Silver"])
    sf.Account.create({"Name": "F1", "Tier__c": "Gold", "Industry": "Banking"})
    standard = sf.query("SELECT FIELDS(STANDARD) FROM Account")["records"][0]
    assert "Tier__c" not in standard and standard["Name"] == "F1" and "BillingAddress" in standard
    every = sf.query("SELECT FIELDS(ALL) FROM Account LIMIT 5")["records"][0]
    assert every["Tier__c"] == "Gold" and every["Industry"] == "Banking"
    custom = sf.query("SELECT Name, FIELDS(CUSTOM) FROM Account LIMIT 200")["records"][0]
    assert set(custom) == {"attributes", "Name", "Tier__c"}
    for soql in ("SELECT FIELDS(ALL) FROM Account", "SELECT FIELDS(CUSTOM) FROM Account LIMIT 201"):
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.query(soql)
        error = _error(info.value)
        assert error["errorCode"] == "MALFORMED_QUERY"
        assert error["message"].endswith("The SOQL FIELDS function must have a LIMIT of at most 200")
    labelled = sf.query("SELECT toLabel(Industry), toLabel(Tier__c) FROM Account")["records"][0]
    assert (labelled["Industry"], labelled["Tier__c"]) == ("Banking", "Gold")
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT toLabel(Name) FROM Account")
    assert _error(info.value)["errorCode"] == "INVALID_FIELD"


# ------------------------------------------------------------------ date functions and fiscal literals

def _opportunities(org: Any) -> None:
    org.insert("Opportunity", [
        {"Name": "Q1", "StageName": "Prospecting", "CloseDate": "2024-02-10", "Amount": 10},
        {"Name": "Q1b", "StageName": "Prospecting", "CloseDate": "2024-03-31", "Amount": 5},
        {"Name": "Q3", "StageName": "Closed Won", "CloseDate": "2024-08-04", "Amount": 20},   # a Sunday
        {"Name": "Next", "StageName": "Closed Won", "CloseDate": "2025-01-01", "Amount": 40},
    ])


def test_date_functions_in_select_where_and_group_by(salesforce_org: Any, sf: Salesforce) -> None:
    _opportunities(salesforce_org)
    rows = sf.query("SELECT CALENDAR_YEAR(CloseDate), CALENDAR_QUARTER(CloseDate) q, SUM(Amount) FROM Opportunity "
                    "GROUP BY CALENDAR_YEAR(CloseDate), CALENDAR_QUARTER(CloseDate) "
                    "ORDER BY CALENDAR_YEAR(CloseDate), CALENDAR_QUARTER(CloseDate)")["records"]
    assert [(r["expr0"], r["q"], r["expr1"]) for r in rows] == [(2024, 1, 15.0), (2024, 3, 20.0), (2025, 1, 40.0)]
    names = sf.query("SELECT Name FROM Opportunity WHERE CALENDAR_MONTH(CloseDate) = 8 OR "
                     "(DAY_IN_MONTH(CloseDate) = 31 AND CALENDAR_YEAR(CloseDate) = 2024) ORDER BY Name")["records"]
    assert [r["Name"] for r in names] == ["Q1b", "Q3"]
    sunday = sf.query("SELECT Name FROM Opportunity WHERE DAY_IN_WEEK(CloseDate) = 1")["records"]
    assert sorted(r["Name"] for r in sunday) == ["Q1b", "Q3"]   # 2024-03-31 and 2024-08-04
    weeks = sf.query("SELECT WEEK_IN_YEAR(CloseDate) w, DAY_IN_YEAR(CloseDate) d, FISCAL_YEAR(CloseDate) fy "
                     "FROM Opportunity WHERE Name = 'Q1b' GROUP BY WEEK_IN_YEAR(CloseDate), DAY_IN_YEAR(CloseDate), "
                     "FISCAL_YEAR(CloseDate)")["records"]
    assert [(r["w"], r["d"], r["fy"]) for r in weeks] == [(13, 91, 2024)]
    hours = sf.query("SELECT HOUR_IN_DAY(CreatedDate) h, DAY_ONLY(convertTimezone(CreatedDate)) d, COUNT(Id) n "
                     "FROM Opportunity GROUP BY HOUR_IN_DAY(CreatedDate), DAY_ONLY(convertTimezone(CreatedDate))")
    now = datetime.now(timezone.utc)
    record = hours["records"][0]
    assert record["n"] == 4 and record["d"] in (now.date().isoformat(), (now - timedelta(minutes=5)).date().isoformat())
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT HOUR_IN_DAY(CloseDate) h FROM Opportunity GROUP BY HOUR_IN_DAY(CloseDate)")
    assert _error(info.value)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT CALENDAR_YEAR(CloseDate) FROM Opportunity")
    assert _error(info.value)["errorCode"] == "MALFORMED_QUERY"


def test_fiscal_literals_and_fiscal_year_start(salesforce_org: Any, sf: Salesforce) -> None:
    today = date.today()
    this_year, last_year = date(today.year, 6, 15), date(today.year - 1, 6, 15)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    salesforce_org.insert("Opportunity", [
        {"Name": "this", "StageName": "Prospecting", "CloseDate": this_year.isoformat()},
        {"Name": "last", "StageName": "Prospecting", "CloseDate": last_year.isoformat()},
        {"Name": "quarter", "StageName": "Prospecting", "CloseDate": quarter_start.isoformat()},
    ])

    def names(where: str) -> list:
        return sorted(r["Name"] for r in sf.query(f"SELECT Name FROM Opportunity WHERE {where}")["records"])

    assert names("CloseDate = THIS_FISCAL_YEAR") == sorted(["this", "quarter"])
    assert names("CloseDate = LAST_FISCAL_YEAR") == ["last"]
    assert names("CloseDate = LAST_N_FISCAL_YEARS:2") == ["last"]
    assert names("CloseDate = THIS_FISCAL_QUARTER") == (["quarter", "this"] if quarter_start.month == 4
                                                        else ["quarter"])
    assert names("CloseDate = N_FISCAL_YEARS_AGO:1") == ["last"]
    # a fiscal year starting in April is named by the calendar year it ends in
    salesforce_org.store.fiscal_year_start_month = 4
    rows = sf.query("SELECT FISCAL_YEAR(CloseDate) fy, FISCAL_QUARTER(CloseDate) fq FROM Opportunity "
                    "WHERE Name = 'this' GROUP BY FISCAL_YEAR(CloseDate), FISCAL_QUARTER(CloseDate)")["records"]
    assert [(r["fy"], r["fq"]) for r in rows] == [(today.year + 1, 1)]


# ------------------------------------------------------------------ replication and record counts

def test_updated_and_deleted(salesforce_org: Any, sf: Salesforce) -> None:
    start = datetime.now(timezone.utc) - timedelta(minutes=2)
    kept = sf.Account.create({"Name": "Kept"})["id"]
    gone = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(gone)
    end = datetime.now(timezone.utc) + timedelta(minutes=2)
    updated = sf.Account.updated(start, end)
    assert updated["ids"] == [kept]
    assert updated["latestDateCovered"] == end.strftime("%Y-%m-%dT%H:%M:00.000+0000")
    deleted = sf.Account.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert deleted["deletedRecords"][0]["deletedDate"].endswith("+0000")
    assert sf.Account.updated(start - timedelta(days=1), start)["ids"] == []
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.updated(end, start)
    assert _error(info.value)["errorCode"] == "INVALID_REPLICATION_DATE"


def test_limits_record_count(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.insert("Account", [{"Name": f"A{i}"} for i in range(3)])
    ids = salesforce_org.insert("Contact", [{"LastName": f"C{i}"} for i in range(2)])
    salesforce_org.store.delete("Contact", ids[0])
    counts = sf.restful("limits/recordCount", params={"sObjects": "Account,Contact,Nothing__c"})
    assert sorted((c["name"], c["count"]) for c in counts["sObjects"]) == [("Account", 3), ("Contact", 1)]
    everything = {c["name"]: c["count"] for c in sf.restful("limits/recordCount")["sObjects"]}
    assert everything["Account"] == 3 and everything["User"] >= 1 and "Widget__c" not in everything
