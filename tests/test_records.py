"""The record engine (sfjwt_ext.data.records): column plans from describe, flattening, row values."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from sfjwt_ext.cli import rows
from sfjwt_ext.data import records
from sfjwt_ext.data.soql_select import parse_select


@pytest.fixture(scope="module")
def sf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sfjwt_ext import connect_jwt
    from sfjwt_ext.testing import LocalOrg

    org = LocalOrg()
    org.start()
    try:
        creds = org.new_app_with_key(tmp_path_factory.mktemp("rec-org"), username="rec@example.com")
        org.load_sample_data()
        yield connect_jwt(**creds.connect_kwargs(), cache=False)
    finally:
        org.stop()


def test_plan_spells_columns_like_the_api_and_types_them(sf: Any) -> None:
    q = parse_select("select id, account.owner.name, amount, closedate, iswon, createddate from opportunity")
    cols = records.plan_columns(records.Describer(sf), q)
    assert [c.name for c in cols] == ["Id", "Account.Owner.Name", "Amount", "CloseDate", "IsWon", "CreatedDate"]
    assert [c.sftype for c in cols] == ["id", "string", "currency", "date", "boolean", "datetime"]
    assert cols[1].keys == ("Account", "Owner", "Name")


def test_describe_is_cached_on_the_client(sf: Any) -> None:
    d1 = records.Describer(sf)
    d1.describe("Account")
    d2 = records.Describer(sf)
    assert d2.cache is d1.cache and "account" in d2.cache


def test_aggregate_names_types_and_the_grouped_parent_quirk(sf: Any) -> None:
    soql = ("SELECT Account.Name, StageName, COUNT(Id), SUM(Amount) total, MAX(CloseDate) "
            "FROM Opportunity GROUP BY Account.Name, StageName")
    cols = records.plan_columns(records.Describer(sf), parse_select(soql))
    assert [c.name for c in cols] == ["Account.Name", "StageName", "expr0", "total", "expr1"]
    assert [c.sftype for c in cols] == ["string", "picklist", "int", "double", "date"]
    # Salesforce keys a grouped parent field by its last name: the plan finds it there
    row = {"attributes": {"type": "AggregateResult"}, "Name": "Acme", "StageName": "Won",
           "expr0": 2, "total": 5.0, "expr1": "2024-01-01"}
    records.resolve_top_level(cols, row)
    assert [records.extract([row], c.keys)[0] for c in cols] == ["Acme", "Won", 2, 5.0, "2024-01-01"]
    # ... and the CLI's rows come from the same plan (no describe: the query's spelling)
    plan = rows.RowPlan(soql)
    assert plan.start([row]) == ["Account.Name", "StageName", "expr0", "total", "expr1"]
    assert plan.rows([row]) == [["Acme", "Won", 2, 5.0, "2024-01-01"]]


def test_row_plan_spells_like_the_records_and_flattens_children() -> None:
    plan = rows.RowPlan("select id, account.name, (select id, owner.name from cases) from contact")
    assert plan.columns == ["id", "account.name", "cases"]  # before any record: the query's spelling
    recs = [{"attributes": {}, "Id": "1", "Account": None, "Cases": None},
            {"attributes": {}, "Id": "2", "Account": {"attributes": {}, "Name": "A"},
             "Cases": {"totalSize": 1, "done": True, "records": [
                 {"attributes": {}, "Id": "c", "Owner": {"attributes": {}, "Name": "O"}}]}}]
    assert plan.start(recs) == ["Id", "Account.Name", "Cases"]
    assert plan.rows(recs) == [["1", None, []], ["2", "A", [{"Id": "c", "Owner.Name": "O"}]]]
    dynamic = rows.RowPlan("SELECT FIELDS(STANDARD) FROM Account LIMIT 1")
    assert dynamic.columns is None
    assert dynamic.rows([{"attributes": {}, "Id": "1", "Owner": {"attributes": {}, "Name": "O"}}]) == [["1", "O"]]
    assert dynamic.columns == ["Id", "Owner.Name"]


def test_flatten_parents_children_and_null_parents() -> None:
    rec = {"attributes": {"type": "Contact"}, "Id": "003", "Account": {"attributes": {}, "Name": "A",
           "Owner": {"attributes": {}, "Name": "O"}}, "Cases": {"totalSize": 1, "done": True,
           "records": [{"attributes": {}, "Id": "500", "Owner": {"attributes": {}, "Name": "X"}}]}}
    assert records.flatten(rec) == {"Id": "003", "Account.Name": "A", "Account.Owner.Name": "O",
                                    "Cases": [{"Id": "500", "Owner.Name": "X"}]}
    null_parent = {"attributes": {}, "Id": "003", "Account": None}
    assert records.flatten(null_parent) == {"Id": "003", "Account": None}
    assert records.flatten(null_parent, known=["Account.Name"]) == {"Id": "003"}
    assert records.flatten(rec, children=lambda sub: ["child"]) ["Cases"] == ["child"]
    assert rows.row_values(["id", "Account.Name"], records.flatten(null_parent)) == ["003", None]


def test_select_columns() -> None:
    assert rows.select_columns("select id, account.name from contact") == ["id", "account.name"]
    assert rows.select_columns("SELECT COUNT() FROM Account") == ["count"]
    assert rows.select_columns("SELECT FIELDS(ALL) FROM Account LIMIT 1") is None


def test_records_imports_no_optional_package() -> None:
    import subprocess
    import sys

    code = ("import sys, sfjwt_ext.data.records, sfjwt_ext.cli.output\n"
            "bad = [m for m in ('pandas', 'pyarrow', 'tqdm', 'sfjwt_ext.testing') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
