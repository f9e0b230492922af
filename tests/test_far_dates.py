"""Dates past 2262-04-11 (issue 18, item 5), against the local org over HTTPS.

Salesforce takes dates and datetimes from 1700-01-01 to 4000-12-31 (4000-12-31 is a common
"no end date"); nanoseconds, pandas' old unit, end at 2262-04-11. The far values here sit on
a later page (REST pages of 200 rows, Bulk 2.0 pages of 200), so a type decided from the
first page would not hold them. Every output gives date columns ``datetime64[us]`` and
datetime columns ``datetime64[us, UTC]`` (Arrow and Parquet: ``timestamp[us]`` and
``timestamp[us, tz=UTC]``), from describe, whatever the values, on REST and Bulk alike."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the skips)
from sfjwt_ext.data.dataframe import query_arrow, query_df, query_to_parquet  # noqa: E402
from sfjwt_ext.testing import LocalOrg  # noqa: E402

ROWS = 450
FAR, EARLY = 300, 301  # on the second page of 200 rows, whatever the path
SOQL = "SELECT Name, CloseDate, Ends__c, Amount FROM Opportunity ORDER BY Name"
NEAR_ONLY = "SELECT Name, CloseDate, Ends__c, Amount FROM Opportunity WHERE Name < 'o0100' ORDER BY Name"
DATE = "datetime64[us]"
DATETIME = "datetime64[us, UTC]"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with LocalOrg(page_size=200) as org:
        org.credentials = org.new_app_with_key(tmp_path_factory.mktemp("far-dates-org"))
        org.add_field("Opportunity", "Ends__c", type="datetime")
        records = [{"Name": f"o{i:04d}", "StageName": "Prospecting", "CloseDate": "2024-01-05",
                    "Ends__c": "2024-01-05T10:30:00.000+0000", "Amount": float(i)} for i in range(ROWS)]
        records[FAR].update(CloseDate="4000-12-31", Ends__c="4000-12-31T00:00:00.000+0000")
        records[EARLY].update(CloseDate="1700-01-01", Ends__c="1700-01-01T00:00:00.000+0000")
        org.insert("Opportunity", records)
        yield org


@pytest.fixture
def sf(org: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed frames of 200 rows (REST) and Bulk 2.0 result pages of 200 rows."""
    monkeypatch.setattr(dataframe, "STREAM_ROWS", 200)
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 200)


def check_values(df: Any) -> None:
    assert len(df) == ROWS
    assert [str(t) for t in df.dtypes[["CloseDate", "Ends__c"]]] == [DATE, DATETIME]
    assert df.at[FAR, "CloseDate"] == pd.Timestamp("4000-12-31")
    assert df.at[FAR, "Ends__c"] == pd.Timestamp("4000-12-31T00:00:00", tz="UTC")
    assert df.at[EARLY, "CloseDate"] == pd.Timestamp("1700-01-01")
    assert df.at[EARLY, "Ends__c"] == pd.Timestamp("1700-01-01T00:00:00", tz="UTC")
    assert df.at[0, "CloseDate"] == pd.Timestamp("2024-01-05")
    assert df.at[0, "Ends__c"] == pd.Timestamp("2024-01-05T10:30:00", tz="UTC")


def test_the_far_dates_are_not_on_the_first_page(sf: Any) -> None:
    first = sf.query(SOQL)
    assert not first["done"] and len(first["records"]) == 200
    assert all(r["CloseDate"] == "2024-01-05" for r in first["records"])


@pytest.mark.parametrize("bulk", [False, True])
def test_query_df_holds_salesforces_whole_range(sf: Any, small_parts: None, bulk: bool) -> None:
    check_values(query_df(sf, SOQL, bulk=bulk, progress=False))


@pytest.mark.parametrize("bulk", [False, True])
def test_the_type_does_not_depend_on_the_values(sf: Any, bulk: bool) -> None:
    near = query_df(sf, NEAR_ONLY, bulk=bulk, progress=False)
    whole = query_df(sf, SOQL, bulk=bulk, progress=False)
    empty = query_df(sf, "SELECT Name, CloseDate, Ends__c, Amount FROM Opportunity WHERE Name = 'none'",
                     bulk=bulk, progress=False)
    assert [str(t) for t in near.dtypes] == [str(t) for t in whole.dtypes] == [str(t) for t in empty.dtypes]
    assert [str(t) for t in whole.dtypes] == ["string", DATE, DATETIME, "Float64"]


def test_rest_and_bulk_agree(sf: Any, small_parts: None) -> None:
    pd.testing.assert_frame_equal(query_df(sf, SOQL, bulk=False, progress=False),
                                  query_df(sf, SOQL, bulk=True, progress=False))


def test_aggregates_of_dates_hold_far_dates(sf: Any) -> None:
    agg = query_df(sf, "SELECT MAX(CloseDate) last, MIN(Ends__c) first FROM Opportunity", progress=False)
    assert [str(t) for t in agg.dtypes] == [DATE, DATETIME]
    assert agg.at[0, "last"] == pd.Timestamp("4000-12-31")
    assert agg.at[0, "first"] == pd.Timestamp("1700-01-01", tz="UTC")


@pytest.mark.parametrize("bulk", [False, True])
def test_query_arrow_with_a_far_date_on_a_later_page(sf: Any, small_parts: None, bulk: bool) -> None:
    table = query_arrow(sf, SOQL, bulk=bulk, progress=False)
    assert table.schema.field("CloseDate").type == pa.timestamp("us")
    assert table.schema.field("Ends__c").type == pa.timestamp("us", tz="UTC")
    check_values(table.to_pandas())


@pytest.mark.parametrize("bulk", [False, True])
def test_query_to_parquet_with_a_far_date_on_a_later_page(sf: Any, small_parts: None, tmp_path: Path,
                                                          bulk: bool) -> None:
    path = tmp_path / "far.parquet"
    assert query_to_parquet(sf, SOQL, path, bulk=bulk, progress=False) == ROWS
    assert pq.ParquetFile(path).num_row_groups == 3
    got = pd.read_parquet(path)
    check_values(got)
    pd.testing.assert_frame_equal(got, query_df(sf, SOQL, bulk=bulk, progress=False))


def test_dask_meta_and_partitions_hold_far_dates(sf: Any, small_parts: None) -> None:
    pytest.importorskip("dask.dataframe")
    from sfjwt_ext.data.dask import read_soql

    ddf = read_soql(SOQL, sf=sf)
    assert ddf.npartitions == 3
    assert [str(t) for t in ddf.dtypes[["CloseDate", "Ends__c"]]] == [DATE, DATETIME]
    parts: List[Any] = [ddf.get_partition(i).compute(scheduler="sync") for i in range(ddf.npartitions)]
    assert {str(p["CloseDate"].dtype) for p in parts} == {DATE}  # the first page, without far dates, too
    got = pd.concat(parts, ignore_index=True)
    check_values(got)


def test_the_wide_parser_reads_every_salesforce_spelling() -> None:
    """The parser used where pandas 2's nanosecond one overflows (run here on any pandas)."""
    from sfjwt_ext.data.dataframe import _wide_datetimes

    got = _wide_datetimes(["4000-12-31", "1700-01-01T00:00:00.000+0000", "2024-01-05T10:30:00.000Z",
                           "2024-01-05T12:00:00+01:30", "2024-01-05T10:30:00.123-0200", None, pd.NA])
    assert [str(v) for v in got] == ["4000-12-31T00:00:00.000000", "1700-01-01T00:00:00.000000",
                                     "2024-01-05T10:30:00.000000", "2024-01-05T10:30:00.000000",
                                     "2024-01-05T12:30:00.123000", "NaT", "NaT"]
    with pytest.raises(ValueError, match="not an ISO 8601"):
        _wide_datetimes(["31/12/4000"])
