"""query_df against the local org over HTTPS (and the client-side SELECT-list parser)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from _support import sample_org, wait_for_bulk_cleanup

from sfjwt_ext.data.soql_select import SoqlParseError, parse_select
from sfjwt_ext.data import records
from sfjwt_ext.data.records import describe_cache

pd = pytest.importorskip("pandas")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the pandas skip)
from sfjwt_ext.data.dataframe import BulkQueryNotSupported, query_df  # noqa: E402

OPP_FIELDS = "Id, Name, Amount, StageName, CloseDate, Probability, IsWon, CreatedDate"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One org with the sample data for the read-only tests of this module."""
    with sample_org(tmp_path_factory.mktemp("df-org"), "df@example.com") as org:
        yield org


def _connect(org: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


@pytest.fixture
def sf(org: Any) -> Any:
    """A fresh client (so its describe cache starts empty)."""
    return _connect(org)


def _raw(sf: Any, soql: str) -> List[dict]:
    return list(sf.query_all_iter(soql))


# --------------------------------------------------------------------------- imports


def test_import_does_not_load_pandas_or_tqdm() -> None:
    code = ("import sys, sfjwt_ext, sfjwt_ext.data.dataframe, sfjwt_ext.data.soql_select\n"
            "from sfjwt_ext import query_df\n"
            "bad = [m for m in ('pandas', 'tqdm', 'pyarrow', 'sfjwt_ext.testing') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_pandas_names_the_extra() -> None:
    code = ("import sys\n"
            "sys.modules['pandas'] = None  # makes 'import pandas' raise ImportError\n"
            "from sfjwt_ext.data.dataframe import query_df\n"
            "try:\n"
            "    query_df(object(), 'SELECT Id FROM Account')\n"
            "except ImportError as e:\n"
            "    print(e)\n"
            "else:\n"
            "    raise SystemExit('no ImportError')\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install 'sfjwt-ext[pandas]'" in out


def test_client_method_delegates(sf: Any) -> None:
    df = sf.query_df("SELECT Id, Name FROM Account ORDER BY Name LIMIT 3", progress=False)
    assert list(df.columns) == ["Id", "Name"]
    assert len(df) == 3


# --------------------------------------------------------------------------- columns


def test_columns_follow_the_select_list_and_attributes_are_dropped(sf: Any) -> None:
    soql = "SELECT Name, Id, Email, Account.Name, AccountId FROM Contact ORDER BY Id"
    df = query_df(sf, soql, progress=False)
    assert list(df.columns) == ["Name", "Id", "Email", "Account.Name", "AccountId"]
    assert "attributes" not in df.columns
    raw = _raw(sf, soql)
    assert df["Id"].tolist() == [r["Id"] for r in raw]
    assert df["Email"].tolist() == [r["Email"] if r["Email"] is not None else pd.NA for r in raw]


def test_parent_paths_flatten_one_and_two_levels_with_null_parents(sf: Any) -> None:
    soql = "SELECT Id, Account.Name, Account.Owner.Name, Account.Industry FROM Contact ORDER BY Id"
    df = query_df(sf, soql, progress=False)
    assert list(df.columns) == ["Id", "Account.Name", "Account.Owner.Name", "Account.Industry"]
    raw = _raw(sf, soql)
    no_parent = [i for i, r in enumerate(raw) if r["Account"] is None]
    with_parent = [i for i, r in enumerate(raw) if r["Account"] is not None]
    assert no_parent and with_parent, "the sample data should have contacts with and without an account"
    assert df.loc[no_parent, ["Account.Name", "Account.Owner.Name", "Account.Industry"]].isna().all().all()
    for i in with_parent[:50]:
        assert df.at[i, "Account.Name"] == raw[i]["Account"]["Name"]
        assert df.at[i, "Account.Owner.Name"] == raw[i]["Account"]["Owner"]["Name"]
    assert str(df["Account.Owner.Name"].dtype) == "string"


def test_only_null_parents_still_give_the_columns(sf: Any) -> None:
    soql = "SELECT Id, Account.Name, Account.Owner.Name FROM Contact WHERE AccountId = null"
    df = query_df(sf, soql, progress=False)
    assert len(df) > 0
    assert list(df.columns) == ["Id", "Account.Name", "Account.Owner.Name"]
    assert df["Account.Name"].isna().all()
    assert str(df["Account.Name"].dtype) == "string"


def test_field_names_in_any_case_get_their_api_names(sf: Any) -> None:
    df = query_df(sf, "select id, account.name, LASTNAME from contact where accountid != null limit 5",
                  progress=False)
    assert list(df.columns) == ["Id", "Account.Name", "LastName"]
    assert df["Account.Name"].notna().all()


def test_child_subquery_is_a_column_of_record_lists(sf: Any) -> None:
    soql = "SELECT Id, Name, (SELECT Id, LastName, Account.Name FROM Contacts ORDER BY Id) FROM Account ORDER BY Id"
    df = query_df(sf, soql, progress=False)
    assert list(df.columns) == ["Id", "Name", "Contacts"]
    assert df["Contacts"].map(type).eq(list).all()
    counts = query_df(sf, "SELECT AccountId, COUNT(Id) n FROM Contact WHERE AccountId != null GROUP BY AccountId",
                      progress=False)
    expected = dict(zip(counts["AccountId"], counts["n"]))
    for _, row in df.iterrows():
        assert len(row["Contacts"]) == expected.get(row["Id"], 0)
    some = next(lst for lst in df["Contacts"] if lst)
    assert set(some[0]) == {"Id", "LastName", "Account"}
    assert "attributes" not in some[0] and "attributes" not in some[0]["Account"]
    assert (df["Contacts"].map(len) == 0).any(), "accounts without contacts get an empty list"


def test_empty_result_keeps_columns_and_types(sf: Any) -> None:
    soql = f"SELECT {OPP_FIELDS}, Account.Name FROM Opportunity WHERE Name = 'no such opportunity'"
    df = query_df(sf, soql, progress=False)
    assert len(df) == 0
    assert list(df.columns) == [*OPP_FIELDS.split(", "), "Account.Name"]
    assert str(df["Amount"].dtype) == "Float64"
    assert str(df["IsWon"].dtype) == "boolean"
    assert str(df["CreatedDate"].dtype) == "datetime64[us, UTC]"


def test_columns_true_metadata_is_flattened(sf: Any) -> None:
    meta = records.column_metadata(sf, "SELECT Id, Account.Owner.Name, Account.Name, (SELECT Id FROM Cases) FROM Contact")
    cols = records.flatten_column_metadata(meta["columnMetadata"])
    assert cols == ["Id", "Account.Owner.Name", "Account.Name", "Cases"]


def test_unreadable_select_list_uses_columns_true(sf: Any, org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the client-side parser gives up, the org's column metadata names the columns."""

    def refuse(soql: str) -> Any:
        raise SoqlParseError("pretend this SELECT list is beyond the parser")

    normal = query_df(sf, "SELECT Id, Account.Name, Amount FROM Opportunity ORDER BY Id", progress=False)
    metadata_calls: List[str] = []
    real = dataframe._column_metadata

    def spy(sf_: Any, soql: str, include_deleted: bool = False) -> dict:
        metadata_calls.append(soql)
        return real(sf_, soql, include_deleted)

    monkeypatch.setattr(dataframe, "parse_select", refuse)
    monkeypatch.setattr(dataframe, "_column_metadata", spy)
    empty = query_df(sf, "SELECT Id, Account.Name, Amount FROM Opportunity WHERE Name = 'none'", progress=False)
    assert list(empty.columns) == ["Id", "Account.Name", "Amount"]
    assert len(metadata_calls) == 1
    assert str(empty["Amount"].dtype) == "Float64"
    full = query_df(sf, "SELECT Id, Account.Name, Amount FROM Opportunity ORDER BY Id", progress=False)
    pd.testing.assert_frame_equal(full, normal)


# --------------------------------------------------------------------------- types


def test_dtypes_follow_describe(sf: Any) -> None:
    df = query_df(sf, f"SELECT {OPP_FIELDS}, AccountId FROM Opportunity", progress=False)
    expected = {
        "Id": "string", "Name": "string", "Amount": "Float64", "StageName": "string",
        "CloseDate": "datetime64[us]", "Probability": "Float64", "IsWon": "boolean",
        "CreatedDate": "datetime64[us, UTC]", "AccountId": "string",
    }
    assert {c: str(t) for c, t in df.dtypes.items()} == expected
    acc = query_df(sf, "SELECT NumberOfEmployees, AnnualRevenue, Owner.IsActive FROM Account", progress=False)
    assert str(acc["NumberOfEmployees"].dtype) == "Int64"
    assert str(acc["AnnualRevenue"].dtype) == "Float64"
    assert str(acc["Owner.IsActive"].dtype) == "boolean"
    assert acc["NumberOfEmployees"].isna().any() and acc["NumberOfEmployees"].notna().any(), "nulls kept"


def test_values_match_the_raw_records(sf: Any) -> None:
    soql = f"SELECT {OPP_FIELDS} FROM Opportunity ORDER BY Id LIMIT 300"
    df = query_df(sf, soql, progress=False)
    raw = _raw(sf, soql)
    for i, r in enumerate(raw):
        if r["Amount"] is None:
            assert df.at[i, "Amount"] is pd.NA
        else:
            assert df.at[i, "Amount"] == r["Amount"]
        assert bool(df.at[i, "IsWon"]) is r["IsWon"]
        assert df.at[i, "CloseDate"] == pd.Timestamp(r["CloseDate"])
        assert df.at[i, "CreatedDate"] == pd.Timestamp(r["CreatedDate"]).tz_convert("UTC")


def test_describe_fetched_once_per_object(org: Any) -> None:
    sf = _connect(org)
    org.reset_counters()
    query_df(sf, "SELECT Id, Account.Owner.Name, Amount FROM Opportunity LIMIT 5", progress=False)
    query_df(sf, "SELECT Id, Name, Owner.Name FROM Account LIMIT 5", progress=False)
    query_df(sf, "SELECT StageName, SUM(Amount) FROM Opportunity GROUP BY StageName", progress=False)
    describes = [r.path for r in org.requests if r.path.endswith("/describe")]
    per_object = {p.split("/")[-2]: describes.count(p) for p in describes}
    assert per_object == {"Opportunity": 1, "Account": 1, "User": 1}
    assert set(describe_cache(sf)) == {"opportunity", "account", "user"}


# --------------------------------------------------------------------------- aggregates


def test_aggregate_columns_by_alias_and_expr(sf: Any) -> None:
    agg = query_df(sf, "SELECT StageName, SUM(Amount) total, COUNT(Id), MAX(CloseDate) FROM Opportunity "
                       "GROUP BY StageName ORDER BY StageName", progress=False)
    assert list(agg.columns) == ["StageName", "total", "expr0", "expr1"]
    assert [str(t) for t in agg.dtypes] == ["string", "Float64", "Int64", "datetime64[us]"]
    rows = query_df(sf, "SELECT StageName, Amount, CloseDate FROM Opportunity", progress=False)
    by_stage = rows.groupby("StageName").agg(total=("Amount", "sum"), n=("Amount", "size"), last=("CloseDate", "max"))
    for _, r in agg.iterrows():
        assert math.isclose(r["total"], by_stage.at[r["StageName"], "total"])
        assert r["expr0"] == by_stage.at[r["StageName"], "n"]
        assert r["expr1"] == by_stage.at[r["StageName"], "last"]


def test_aggregate_grouped_by_parent_field(sf: Any) -> None:
    agg = query_df(sf, "SELECT Account.Name, COUNT(Id) n FROM Contact WHERE AccountId != null "
                       "GROUP BY Account.Name", progress=False)
    assert list(agg.columns) == ["Account.Name", "n"]
    assert agg["Account.Name"].notna().all()
    assert str(agg["n"].dtype) == "Int64"


def test_count_query_gives_one_row_named_count(sf: Any) -> None:
    df = query_df(sf, "SELECT COUNT() FROM Contact WHERE AccountId = null", progress=False)
    assert list(df.columns) == ["count"] and len(df) == 1
    assert str(df["count"].dtype) == "Int64"
    assert df.at[0, "count"] == len(_raw(sf, "SELECT Id FROM Contact WHERE AccountId = null"))


# --------------------------------------------------------------------------- streaming


def _page_requests(org: Any) -> List[Any]:
    return [r for r in org.requests if "/query" in r.path and "jobs" not in r.path]


def test_pages_are_streamed_without_loss(sf: Any, org: Any, capsys: pytest.CaptureFixture) -> None:
    org.reset_counters()
    df = query_df(sf, "SELECT Id, Name, Account.Name FROM Contact", progress=False, batch_size=200)
    total = query_df(sf, "SELECT COUNT() FROM Contact", progress=False).at[0, "count"]
    assert len(df) == total == 1500
    assert df["Id"].is_unique
    # + the COUNT() query above (bulk="auto" asks no COUNT() of its own)
    assert len(_page_requests(org)) == math.ceil(1500 / 200) + 1
    assert capsys.readouterr().err == ""


def test_progress_bar_shown_for_several_pages_only(sf: Any, capsys: pytest.CaptureFixture) -> None:
    query_df(sf, "SELECT Id FROM Contact", batch_size=200)  # default: several pages -> a bar
    err = capsys.readouterr().err
    assert "query_df" in err and "/1500" in err  # the total comes from totalSize
    query_df(sf, "SELECT Id FROM Account LIMIT 10")  # one page -> none
    assert capsys.readouterr().err == ""
    query_df(sf, "SELECT Id FROM Account LIMIT 10", progress=True)  # forced
    assert "query_df" in capsys.readouterr().err


def test_session_expiring_halfway_loses_and_doubles_nothing(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = _connect(org)
    soql = "SELECT Id, Name FROM Contact ORDER BY Id"
    expected = [r["Id"] for r in _raw(sf, soql)]
    calls = {"n": 0}
    real = sf.session.request

    def expiring(method: str, url: str, **kwargs: Any) -> Any:
        if "/query" in url:
            calls["n"] += 1
            if calls["n"] in (3, 6):  # before the 3rd and 6th page
                org.expire_all_sessions()
        return real(method, url, **kwargs)

    monkeypatch.setattr(sf.session, "request", expiring)
    org.reset_counters()
    before = sf.refresh_count
    df = query_df(sf, soql, progress=False, batch_size=200)
    assert df["Id"].tolist() == expected
    assert sf.refresh_count >= before + 2
    assert any(r.status == 401 for r in org.requests)


# --------------------------------------------------------------------------- Bulk 2.0


def _bulk_route_or_skip(org: Any, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceResourceNotFound

    try:
        query_df(sf, "SELECT Id FROM Account LIMIT 1", progress=False, bulk=True)
    except SalesforceResourceNotFound as exc:
        pytest.skip(f"the local org has no Bulk 2.0 query route: {exc}")
    wait_for_bulk_cleanup()  # its DELETE goes out in the background


def test_bulk_equals_rest(sf: Any, org: Any) -> None:
    _bulk_route_or_skip(org, sf)
    soql = f"SELECT {OPP_FIELDS}, Account.Name, Account.Owner.Name FROM Opportunity ORDER BY Id"
    rest = query_df(sf, soql, progress=False, bulk=False)
    org.reset_counters()
    bulk = query_df(sf, soql, progress=False, bulk=True)
    assert any(r.method == "POST" and r.path.endswith("/jobs/query") for r in org.requests)
    assert not any(r.path.endswith("/query/") for r in org.requests)
    pd.testing.assert_frame_equal(bulk, rest)


def test_bulk_handles_nulls_parents_and_ints(sf: Any, org: Any) -> None:
    _bulk_route_or_skip(org, sf)
    soql = "SELECT Id, NumberOfEmployees, AnnualRevenue, Industry, Owner.Name, Owner.IsActive FROM Account ORDER BY Id"
    pd.testing.assert_frame_equal(query_df(sf, soql, progress=False, bulk=True),
                                  query_df(sf, soql, progress=False, bulk=False))


def test_bulk_temp_files_are_removed(sf: Any, org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _bulk_route_or_skip(org, sf)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    parts: List[str] = []
    real = dataframe._read_part

    def spy(pd_: Any, path: str, engine: Any) -> Any:
        parts.append(path)
        assert os.path.exists(path)
        return real(pd_, path, engine)

    monkeypatch.setattr(dataframe, "_read_part", spy)
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    df = query_df(sf, "SELECT Id, Name FROM Contact", progress=False, bulk=True)
    assert len(df) == 1500 and df["Id"].is_unique
    assert len(parts) == 3
    assert all(Path(p).is_relative_to(scratch) for p in parts)
    assert list(scratch.iterdir()) == []


def test_bulk_progress_by_part_only_when_there_are_several(sf: Any, org: Any, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _bulk_route_or_skip(org, sf)
    capsys.readouterr()
    query_df(sf, "SELECT Id FROM Account", bulk=True)  # 500 rows: one part -> no bar
    assert capsys.readouterr().err == ""
    query_df(sf, "SELECT Id FROM Account", bulk=True, progress=True)  # forced
    assert "query_df bulk" in capsys.readouterr().err
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    df = query_df(sf, "SELECT Id FROM Contact", bulk=True)  # 1500 rows: three parts -> a bar
    err = capsys.readouterr().err
    assert "query_df bulk" in err and "/1500" in err  # total from the job, rows counted per part
    assert len(df) == 1500
    query_df(sf, "SELECT Id FROM Contact", bulk=True, progress=False)
    assert capsys.readouterr().err == ""


def test_bulk_session_expiring_between_parts_loses_and_doubles_nothing(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = _connect(org)
    _bulk_route_or_skip(org, sf)
    soql = "SELECT Id, Name FROM Contact ORDER BY Id"
    expected = query_df(sf, soql, progress=False, bulk=False)
    real = dataframe._download_page
    seen: List[str] = []
    expired = threading.Event()
    lock = threading.Lock()

    def expiring(sf_: Any, url: str, folder: str) -> Any:
        # downloads run side by side: the first expires every session once its part is in,
        # the others send their request only after that: they meet it and share one refresh
        with lock:
            seen.append(url)
            first = len(seen) == 1
        if first:
            out = real(sf_, url, folder)
            org.expire_all_sessions()
            expired.set()
            return out
        assert expired.wait(timeout=30), "the first part's download never finished"
        return real(sf_, url, folder)

    monkeypatch.setattr(dataframe, "_download_page", expiring)
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    org.reset_counters()
    before = sf.refresh_count
    df = query_df(sf, soql, progress=False, bulk=True)
    assert len(seen) == 3
    pd.testing.assert_frame_equal(df, expected)
    assert sf.refresh_count == before + 1
    assert any(r.status == 401 for r in org.requests)


def test_bulk_refuses_what_it_cannot_run(sf: Any) -> None:
    for soql in ["SELECT Id, (SELECT Id FROM Contacts) FROM Account",
                 "SELECT StageName, SUM(Amount) FROM Opportunity GROUP BY StageName",
                 "SELECT COUNT() FROM Account"]:
        with pytest.raises(BulkQueryNotSupported, match="bulk=False"):
            query_df(sf, soql, bulk=True)


def test_bulk_auto_above_threshold(sf: Any, org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _bulk_route_or_skip(org, sf)
    soql = "SELECT Id, Amount FROM Opportunity ORDER BY Id"
    org.reset_counters()
    small = query_df(sf, soql, progress=False, batch_size=500)  # 2000 rows: far below the default
    assert not any("/jobs/" in r.path for r in org.requests)
    # the decision came from the first page's totalSize: 4 pages of 500, nothing else
    assert len(_page_requests(org)) == 4
    monkeypatch.setattr(dataframe, "BULK_AUTO_THRESHOLD", 1000)
    org.reset_counters()
    limited = query_df(sf, soql + " LIMIT 900", progress=False)  # totalSize counts the LIMIT
    assert len(limited) == 900 and not any("/jobs/" in r.path for r in org.requests)
    monkeypatch.setattr(dataframe, "BULK_AUTO_THRESHOLD", 1000)
    org.reset_counters()
    big = query_df(sf, soql, progress=False, batch_size=500)
    assert any(r.method == "POST" and r.path.endswith("/jobs/query") for r in org.requests)
    assert len(_page_requests(org)) == 1  # the first page decided; the rest came by Bulk 2.0
    wait_for_bulk_cleanup()
    pd.testing.assert_frame_equal(big, small)
    # a query Bulk cannot run stays on REST
    org.reset_counters()
    sub = query_df(sf, "SELECT Id, (SELECT Id FROM Contacts) FROM Account", progress=False, batch_size=200)
    assert len(sub) == 500
    assert not any("/jobs/" in r.path for r in org.requests)


def test_include_deleted(org: Any) -> None:
    sf = _connect(org)
    new_id = org.insert("Account", [{"Name": "query_df deleted account"}])[0]
    sf.Account.delete(new_id)
    soql = "SELECT Id, IsDeleted FROM Account WHERE Name = 'query_df deleted account'"
    assert len(query_df(sf, soql, progress=False)) == 0
    df = query_df(sf, soql, progress=False, include_deleted=True)
    assert df["Id"].tolist() == [new_id] and bool(df.at[0, "IsDeleted"]) is True
    bulk = query_df(sf, soql, progress=False, include_deleted=True, bulk=True)
    pd.testing.assert_frame_equal(bulk, df)


# --------------------------------------------------------------------------- parquet / args


def test_to_parquet_round_trips(sf: Any, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = query_df(sf, f"SELECT {OPP_FIELDS}, Account.Name FROM Opportunity", progress=False)
    assert not any(str(t) == "object" for t in df.dtypes)
    path = tmp_path / "opps.parquet"
    df.to_parquet(path)
    back = pd.read_parquet(path)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    assert back["Amount"].sum() == df["Amount"].sum()
    kids = query_df(sf, "SELECT Id, (SELECT Id, LastName FROM Contacts) FROM Account", progress=False)
    kids.to_parquet(tmp_path / "kids.parquet")


def test_bad_arguments(sf: Any) -> None:
    with pytest.raises(ValueError, match="bulk"):
        query_df(sf, "SELECT Id FROM Account", bulk="yes")
    with pytest.raises(ValueError, match="soql"):
        query_df(sf, "  ")


# --------------------------------------------------------------------------- the SELECT-list parser


def test_parser_fields_functions_and_subqueries() -> None:
    q = parse_select("SELECT a.Id, toLabel(a.Industry), Owner.Name, (SELECT Id, LastName FROM Contacts "
                     "WHERE Name LIKE 'x (y)%') FROM Account a WHERE a.Name != 'FROM' ORDER BY Name LIMIT 7")
    assert q.sobject == "Account" and q.alias == "a" and q.limit == 7
    assert [(i.kind, i.name) for i in q.items] == [
        ("field", "Id"), ("function", "Industry"), ("field", "Owner.Name"), ("subquery", "Contacts")]
    assert q.where == "a.Name != 'FROM'"
    assert q.has_subquery and not q.is_aggregate and not q.is_count
    assert [i.name for i in q.items[3].subquery.items] == ["Id", "LastName"]  # type: ignore[union-attr]


def test_parser_aggregate_names() -> None:
    q = parse_select("SELECT StageName, SUM(Amount) total, COUNT(Id), CALENDAR_YEAR(CloseDate), "
                     "MAX(Amount) FROM Opportunity GROUP BY StageName, CALENDAR_YEAR(CloseDate)")
    assert [i.name for i in q.items] == ["StageName", "total", "expr0", "expr1", "expr2"]
    assert q.is_aggregate and q.group_by
    c = parse_select("select count() from Account where Name like 'a%'")
    assert c.is_count and c.items[0].name == "count" and c.where == "Name like 'a%'"


def test_parser_dynamic_and_errors() -> None:
    assert parse_select("SELECT FIELDS(STANDARD) FROM Account LIMIT 200").dynamic
    assert parse_select("SELECT TYPEOF What WHEN Account THEN Name END, Id FROM Event").dynamic
    for bad in ["", "SELECT Id FROM", "SELECT Id FROM Account)", "SELECT 'x FROM Account", "UPDATE x"]:
        with pytest.raises(SoqlParseError):
            parse_select(bad)
