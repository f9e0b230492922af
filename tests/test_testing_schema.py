"""Custom schema of the local org (issue 10 item 3): ``org.add_field``, ``org.define_object`` and
Metadata API deploys of CustomObject / CustomField, seen by describe, SOQL, REST, Bulk and query_df.

Driven over HTTPS with simple-salesforce (a client we did not write) and, for the DataFrame
types, through ``connect_jwt`` + ``query_df``.
"""
from __future__ import annotations

import io
import zipfile
from typing import Any, Dict

import pytest
from _support import raw_login
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext.testing.core.schema import SchemaError


def _token(org: Any) -> str:
    return str(raw_login(org)["access_token"])


@pytest.fixture
def sf(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce_org.ca_file)   # zeep (mdapi) has its own session
    http = requests.Session()
    http.verify = salesforce_org.ca_file
    return Salesforce(session_id=_token(salesforce_org), instance_url=salesforce_org.instance_url, session=http,
                      version=str(salesforce_org.api_version))


def _widgets(org: Any) -> None:
    org.define_object("Widget__c", fields={
        "Price__c": {"type": "currency"},
        "Weight__c": {"type": "number", "precision": 10, "scale": 3},
        "Count__c": {"type": "int"},
        "Due__c": {"type": "date"},
        "Seen__c": {"type": "datetime"},
        "Active__c": {"type": "boolean", "default": True},
        "Kind__c": {"type": "picklist", "values": ["Gear", "Bolt"]},
        "Account__c": {"type": "reference", "reference_to": "Account"},
        "Notes__c": {"type": "textarea"},
        "Mail__c": {"type": "email"},
        "Share__c": {"type": "percent"},
        "Code__c": {"type": "string", "length": 10, "external_id": True, "unique": True},
    })


def _errors(exc: SalesforceMalformedRequest) -> Dict[str, Any]:
    content = exc.content
    assert isinstance(content, list) and content, content
    return dict(content[0])


# ------------------------------------------------------------------ add_field on a standard object

def test_add_field_on_account_is_in_describe_rest_and_soql(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.add_field("Account", "Legacy_Id__c", type="string", external_id=True, unique=True,
                             label="Legacy Id")
    described = {f["name"]: f for f in sf.Account.describe()["fields"]}
    legacy = described["Legacy_Id__c"]
    assert (legacy["custom"], legacy["externalId"], legacy["unique"], legacy["idLookup"], legacy["type"],
            legacy["length"], legacy["label"]) == (True, True, True, True, "string", 255, "Legacy Id")
    assert described["Name"]["custom"] is False

    created = sf.Account.create({"Name": "Legacy One", "Legacy_Id__c": "L-1"})
    assert created["success"] is True
    assert sf.Account.get(created["id"])["Legacy_Id__c"] == "L-1"
    sf.Account.update(created["id"], {"Legacy_Id__c": "L-2"})
    rows = sf.query("SELECT Name, Legacy_Id__c FROM Account WHERE Legacy_Id__c = 'l-2'")["records"]
    assert [(r["Name"], r["Legacy_Id__c"]) for r in rows] == [("Legacy One", "L-2")]


def test_unique_field_answers_duplicate_value(salesforce_org: Any, sf: Salesforce) -> None:
    salesforce_org.add_field("Account", "Legacy_Id__c", type="string", external_id=True, unique=True)
    first = sf.Account.create({"Name": "A", "Legacy_Id__c": "X-1"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.create({"Name": "B", "Legacy_Id__c": "x-1"})   # unique is case-insensitive
    error = _errors(info.value)
    assert error["errorCode"] == "DUPLICATE_VALUE"
    assert error["message"] == f"duplicate value found: Legacy_Id__c duplicates value on record with id: {first[:15]}"
    other = sf.Account.create({"Name": "C", "Legacy_Id__c": "X-2"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.update(other, {"Legacy_Id__c": "X-1"})
    assert _errors(info.value)["errorCode"] == "DUPLICATE_VALUE"
    sf.Account.update(first, {"Legacy_Id__c": "X-1"})   # its own value is no duplicate
    assert sf.query("SELECT COUNT() FROM Account WHERE Legacy_Id__c = 'X-1'")["totalSize"] == 1


def test_unknown_custom_field_is_invalid_field(salesforce_org: Any, sf: Salesforce) -> None:
    _widgets(salesforce_org)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Widget__c.create({"Name": "w", "Nope__c": 1})
    assert _errors(info.value)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Nope__c FROM Widget__c")
    assert _errors(info.value)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Account__r.Nope__c FROM Widget__c")
    assert "No such column 'Nope__c' on entity 'Account'" in _errors(info.value)["message"]


# ------------------------------------------------------------------ define_object

def test_define_object_describe_types(salesforce_org: Any, sf: Salesforce) -> None:
    _widgets(salesforce_org)
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert names["Widget__c"]["custom"] is True and names["Widget__c"]["keyPrefix"].startswith("a")
    described = sf.Widget__c.describe()
    assert (described["name"], described["label"], described["custom"]) == ("Widget__c", "Widget", True)
    fields = {f["name"]: f for f in described["fields"]}
    assert {"Id", "Name", "OwnerId", "CreatedDate", "CreatedById", "IsDeleted"} <= set(fields)
    assert [(fields[n]["type"], fields[n]["precision"], fields[n]["scale"]) for n in ("Price__c", "Weight__c")] \
        == [("currency", 18, 2), ("double", 10, 3)]
    assert fields["Count__c"]["type"] == "int" and fields["Due__c"]["type"] == "date"
    assert fields["Seen__c"]["type"] == "datetime" and fields["Active__c"]["defaultValue"] is True
    assert [v["value"] for v in fields["Kind__c"]["picklistValues"]] == ["Gear", "Bolt"]
    account = fields["Account__c"]
    assert (account["type"], account["referenceTo"], account["relationshipName"]) == \
        ("reference", ["Account"], "Account__r")
    assert [fields[n]["type"] for n in ("Notes__c", "Mail__c", "Share__c")] == ["textarea", "email", "percent"]
    assert fields["Code__c"]["length"] == 10 and fields["Code__c"]["externalId"] is True
    children = {c["relationshipName"]: c for c in sf.Account.describe()["childRelationships"]}
    assert children["Widgets__r"]["childSObject"] == "Widget__c" and children["Widgets__r"]["field"] == "Account__c"


def test_custom_object_crud_and_relationship_queries(salesforce_org: Any, sf: Salesforce) -> None:
    _widgets(salesforce_org)
    account = sf.Account.create({"Name": "Parent Co"})["id"]
    made = sf.Widget__c.create({"Name": "W-1", "Price__c": 9.5, "Count__c": 3, "Due__c": "2024-05-01",
                                "Seen__c": "2024-05-01T10:00:00.000+0000", "Kind__c": "Gear",
                                "Account__c": account, "Code__c": "C1"})
    assert made["success"] is True and made["id"].startswith(sf.Widget__c.describe()["keyPrefix"])
    got = sf.Widget__c.get(made["id"])
    assert (got["Price__c"], got["Count__c"], got["Due__c"], got["Active__c"], got["attributes"]["type"]) == \
        (9.5, 3, "2024-05-01", True, "Widget__c")
    sf.Widget__c.update(made["id"], {"Price__c": 10})
    rows = sf.query("SELECT Name, Price__c, Account__r.Name FROM Widget__c WHERE Kind__c = 'Gear'")["records"]
    assert [(r["Name"], r["Price__c"], r["Account__r"]["Name"]) for r in rows] == [("W-1", 10.0, "Parent Co")]
    parents = sf.query("SELECT Name, (SELECT Name FROM Widgets__r) FROM Account WHERE Id = '%s'" % account)
    assert [w["Name"] for w in parents["records"][0]["Widgets__r"]["records"]] == ["W-1"]
    grouped = sf.query("SELECT Kind__c, SUM(Price__c) total FROM Widget__c GROUP BY Kind__c")["records"]
    assert [(g["Kind__c"], g["total"]) for g in grouped] == [("Gear", 10.0)]
    sf.Widget__c.delete(made["id"])
    assert sf.query("SELECT COUNT() FROM Widget__c")["totalSize"] == 0
    assert sf.query("SELECT COUNT() FROM Widget__c", include_deleted=True)["totalSize"] == 1


def test_custom_fields_in_bulk_query(salesforce_org: Any, sf: Salesforce) -> None:
    _widgets(salesforce_org)
    account = salesforce_org.insert("Account", [{"Name": "Bulk Parent"}])[0]
    salesforce_org.insert("Widget__c", [{"Name": f"W{i}", "Price__c": i, "Active__c": i % 2 == 0,
                                         "Account__c": account} for i in range(3)])
    pages = list(sf.bulk2.Widget__c.query(
        "SELECT Name, Price__c, Active__c, Account__r.Name FROM Widget__c ORDER BY Name", wait=0))
    lines = "".join(pages).splitlines()
    assert lines[0] == '"Name","Price__c","Active__c","Account__r.Name"'
    assert lines[1:] == ['"W0","0.0","true","Bulk Parent"', '"W1","1.0","false","Bulk Parent"',
                         '"W2","2.0","true","Bulk Parent"']


def test_query_df_types_follow_custom_describe(salesforce_org: Any) -> None:
    pd = pytest.importorskip("pandas")
    from sfjwt_ext import connect_jwt, query_df

    _widgets(salesforce_org)
    salesforce_org.insert("Widget__c", [{"Name": "A", "Price__c": 1.5, "Count__c": 2, "Due__c": "2024-01-02",
                                         "Active__c": False, "Kind__c": "Bolt"},
                                        {"Name": "B", "Price__c": None, "Count__c": None, "Due__c": None}])
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)
    frame = query_df(sf, "SELECT Name, Price__c, Count__c, Due__c, Active__c, Kind__c FROM Widget__c ORDER BY Name",
                     bulk=False)
    assert list(frame.columns) == ["Name", "Price__c", "Count__c", "Due__c", "Active__c", "Kind__c"]
    assert pd.api.types.is_float_dtype(frame["Price__c"])
    assert str(frame["Count__c"].dtype) == "Int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["Due__c"])
    assert str(frame["Active__c"].dtype) in ("boolean", "bool")
    assert frame["Count__c"].tolist()[0] == 2 and frame["Count__c"].isna().tolist() == [False, True]


def test_schema_errors_name_the_argument(salesforce_org: Any) -> None:
    with pytest.raises(SchemaError, match=r"name='Legacy' is not a custom API name.*'__c'"):
        salesforce_org.add_field("Account", "Legacy", type="string")
    with pytest.raises(SchemaError, match=r"type='blob' is not a field type"):
        salesforce_org.add_field("Account", "X__c", type="blob")
    with pytest.raises(SchemaError, match=r"reference_to= for the reference"):
        salesforce_org.add_field("Account", "Y__c", type="reference")
    with pytest.raises(SchemaError, match=r"values= for the picklist"):
        salesforce_org.add_field("Account", "Z__c", type="picklist")
    with pytest.raises(SchemaError, match=r"add_field\('Gizmo__c', \.\.\.\): no such object; define"):
        salesforce_org.add_field("Gizmo__c", "X__c", type="string")
    salesforce_org.add_field("Account", "Twice__c", type="string")
    with pytest.raises(SchemaError, match="has a field named Twice__c already"):
        salesforce_org.add_field("Account", "twice__c", type="string")
    with pytest.raises(SchemaError, match=r"reference_to='Nothing__c'"):
        salesforce_org.define_object("Gizmo__c", fields={"Ref__c": {"type": "reference", "reference_to": "Nothing__c"}})
    assert not salesforce_org.store.has_object("Gizmo__c")   # a bad field leaves no object behind


def test_each_org_has_its_own_schema(salesforce_org: Any) -> None:
    from sfjwt_ext.testing import LocalOrg

    salesforce_org.add_field("Account", "Only_Here__c", type="string")
    other = LocalOrg()
    fields = {f["name"] for f in other.store.describe("Account")["fields"]}
    assert "Only_Here__c" not in fields
    assert "Only_Here__c" in {f["name"] for f in salesforce_org.store.describe("Account")["fields"]}


# ------------------------------------------------------------------ Metadata API deploys

_PACKAGE = ('<?xml version="1.0" encoding="UTF-8"?><Package xmlns="http://soap.sforce.com/2006/04/metadata">'
            "<types><members>Gadget__c</members><name>CustomObject</name></types>"
            "<types><members>Account.Region__c</members><name>CustomField</name></types>"
            "<version>62.0</version></Package>")
_GADGET = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>Gadget</label>
    <pluralLabel>Gadgets</pluralLabel>
    <nameField><label>Gadget Name</label><type>Text</type></nameField>
    <deploymentStatus>Deployed</deploymentStatus>
    <sharingModel>ReadWrite</sharingModel>
    <fields>
        <fullName>Cost__c</fullName><label>Cost</label><type>Currency</type>
        <precision>16</precision><scale>2</scale>
    </fields>
    <fields>
        <fullName>Size__c</fullName><label>Size</label><type>Picklist</type>
        <valueSet><valueSetDefinition>
            <value><fullName>Small</fullName><default>false</default><label>Small</label></value>
            <value><fullName>Large</fullName><default>false</default><label>Large</label></value>
        </valueSetDefinition></valueSet>
    </fields>
    <fields>
        <fullName>Sku__c</fullName><label>SKU</label><type>Text</type><length>20</length>
        <externalId>true</externalId><unique>true</unique>
    </fields>
</CustomObject>"""
_ACCOUNT = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <fields><fullName>Region__c</fullName><label>Region</label><type>Text</type><length>40</length></fields>
</CustomObject>"""


def _zip(files: Dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    buf.seek(0)
    return buf


def _deploy(sf: Salesforce, files: Dict[str, str]) -> Any:
    async_id, state = sf.mdapi.deploy(_zip(files), sandbox=False)
    assert state == "Queued"
    for _ in range(50):
        status = sf.mdapi.check_deploy_status(async_id)
        if status[0] in ("Succeeded", "Failed"):
            return status
    raise AssertionError("the deploy never finished")


def test_mdapi_deploy_creates_custom_object_and_field(salesforce_org: Any, sf: Salesforce) -> None:
    assert not salesforce_org.store.has_object("Gadget__c")
    status, _detail, deployment, _tests = _deploy(sf, {"package.xml": _PACKAGE, "objects/Gadget__c.object": _GADGET,
                                                       "objects/Account.object": _ACCOUNT})
    assert status == "Succeeded" and deployment["errors"] == []
    described = sf.Gadget__c.describe()
    assert (described["label"], described["labelPlural"], described["custom"]) == ("Gadget", "Gadgets", True)
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["Name"]["label"] == "Gadget Name"
    assert (fields["Cost__c"]["type"], fields["Cost__c"]["precision"]) == ("currency", 16)
    assert [v["value"] for v in fields["Size__c"]["picklistValues"]] == ["Small", "Large"]
    assert fields["Sku__c"]["externalId"] is True and fields["Sku__c"]["length"] == 20

    sf.Gadget__c.create({"Name": "G1", "Cost__c": 4.25, "Size__c": "Small", "Sku__c": "S-1"})
    sf.Account.create({"Name": "Deployed", "Region__c": "EMEA"})
    assert [(r["Name"], r["Cost__c"]) for r in sf.query("SELECT Name, Cost__c FROM Gadget__c")["records"]] == \
        [("G1", 4.25)]
    assert sf.query("SELECT Region__c FROM Account WHERE Name = 'Deployed'")["records"][0]["Region__c"] == "EMEA"
    listed = {p.fullName for p in sf.mdapi.list_metadata([sf.mdapi.ListMetadataQuery(type="CustomObject")])}
    assert "Gadget__c" in listed
    # a second deploy of the same package changes nothing and still succeeds
    assert _deploy(sf, {"package.xml": _PACKAGE, "objects/Gadget__c.object": _GADGET})[0] == "Succeeded"


def test_mdapi_check_only_and_bad_field_create_nothing(salesforce_org: Any, sf: Salesforce) -> None:
    async_id, _state = sf.mdapi.deploy(_zip({"package.xml": _PACKAGE, "objects/Gadget__c.object": _GADGET}),
                                       sandbox=False, checkOnly=True)
    for _ in range(50):
        if sf.mdapi.check_deploy_status(async_id)[0] in ("Succeeded", "Failed"):
            break
    assert not salesforce_org.store.has_object("Gadget__c")
    bad = _GADGET.replace("<type>Currency</type>", "<type>Hologram</type>")
    status, _detail, _deployment, _tests = _deploy(sf, {"package.xml": _PACKAGE, "objects/Gadget__c.object": bad})
    assert status == "Failed"
    assert not salesforce_org.store.has_object("Gadget__c")
