"""query_to_parquet and query_arrow against the local org: the file read back equals query_df."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from _support import sample_org

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the skips)
from sfjwt_ext.data.dataframe import query_arrow, query_df, query_to_parquet  # noqa: E402

OPP = ("SELECT Id, Name, Amount, Probability, StageName, CloseDate, IsWon, CreatedDate, "
       "Account.Name, Account.Owner.Name, Account.NumberOfEmployees FROM Opportunity ORDER BY Id")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sample_org(tmp_path_factory.mktemp("pq-org"), "pq@example.com") as org:
        yield org


@pytest.fixture
def sf(org: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


def _bulk_or_skip(sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceResourceNotFound

    try:
        query_df(sf, "SELECT Id FROM Account LIMIT 1", progress=False, bulk=True)
    except SalesforceResourceNotFound as exc:
        pytest.skip(f"the local org has no Bulk 2.0 query route: {exc}")


def _same(a: Any, b: Any) -> None:
    assert list(a.columns) == list(b.columns)
    assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]
    pd.testing.assert_frame_equal(a, b)


def test_rest_file_equals_query_df(sf: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "STREAM_ROWS", 500)  # several row groups
    path = tmp_path / "opps.parquet"
    rows = query_to_parquet(sf, OPP, path, bulk=False, progress=False, batch_size=200)
    expected = query_df(sf, OPP, bulk=False, progress=False)
    assert rows == len(expected) == 2000
    assert pq.ParquetFile(path).num_row_groups == 4
    got = pq.read_table(path).to_pandas()
    _same(got, expected)
    # the types are the ones documented for query_df, and nulls survived
    assert str(got["CloseDate"].dtype) == "datetime64[us]"
    assert str(got["CreatedDate"].dtype) == "datetime64[us, UTC]"
    assert str(got["IsWon"].dtype) == "boolean" and str(got["Amount"].dtype) == "Float64"
    assert str(got["Account.NumberOfEmployees"].dtype) == "Int64"
    assert got["Amount"].isna().any() or got["Account.Name"].isna().any() or got["Account.NumberOfEmployees"].isna().any()


def test_bulk_file_equals_query_df(sf: Any, org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _bulk_or_skip(sf)
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    path = tmp_path / "opps.parquet"
    org.reset_counters()
    rows = query_to_parquet(sf, OPP, path, bulk=True, progress=False)
    assert any(r.method == "POST" and r.path.endswith("/jobs/query") for r in org.requests)
    assert rows == 2000
    assert pq.ParquetFile(path).num_row_groups == 4  # one per result page: 600, 600, 600, 200
    _same(pq.read_table(path).to_pandas(), query_df(sf, OPP, bulk=False, progress=False))
    _same(pd.read_parquet(path), query_df(sf, OPP, bulk=True, progress=False))


def test_aggregate_and_empty_results(sf: Any, tmp_path: Path) -> None:
    for soql in ["SELECT StageName, Account.Name, SUM(Amount) total, COUNT(Id), MAX(CloseDate) last "
                 "FROM Opportunity GROUP BY StageName, Account.Name",
                 "SELECT COUNT() FROM Account",
                 "SELECT Id, Amount, CloseDate FROM Opportunity WHERE Name = 'no such opportunity'"]:
        path = tmp_path / "out.parquet"
        query_to_parquet(sf, soql, path, progress=False)
        expected = query_df(sf, soql, progress=False)
        _same(pq.read_table(path).to_pandas(), expected)
        _same(query_arrow(sf, soql, progress=False).to_pandas(), expected)


def test_query_arrow_is_a_table_with_query_df_types(sf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "STREAM_ROWS", 700)
    table = query_arrow(sf, OPP, bulk=False, progress=False)
    assert isinstance(table, pa.Table) and table.num_rows == 2000
    assert table.schema.field("CloseDate").type == pa.timestamp("us")
    assert table.schema.field("CreatedDate").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("IsWon").type == pa.bool_()
    assert table.schema.field("Account.NumberOfEmployees").type == pa.int64()
    _same(table.to_pandas(), query_df(sf, OPP, bulk=False, progress=False))


def test_a_failed_query_leaves_the_old_file(sf: Any, org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "opps.parquet"
    query_to_parquet(sf, "SELECT Id FROM Account", path, progress=False)
    good = path.read_bytes()
    # 1. the query fails before anything is written
    with pytest.raises(Exception, match="(?i)malformed|unexpected|unknown|invalid"):
        query_to_parquet(sf, "SELECT NoSuchField__c FROM Account", path, progress=False)
    assert path.read_bytes() == good
    # 2. it fails after a first row group is in the temporary file
    monkeypatch.setattr(dataframe, "STREAM_ROWS", 500)
    real = dataframe._frame
    calls: List[int] = []
    temp_seen: List[str] = []

    def failing(pd_: Any, columns: Any) -> Any:
        calls.append(1)
        temp_seen.extend(p.name for p in tmp_path.iterdir() if p.name.startswith(".opps.parquet."))
        if len(calls) == 3:
            raise RuntimeError("connection lost mid-extract")
        return real(pd_, columns)

    monkeypatch.setattr(dataframe, "_frame", failing)
    with pytest.raises(RuntimeError, match="mid-extract"):
        query_to_parquet(sf, OPP, path, bulk=False, progress=False, batch_size=200)
    assert temp_seen, "the rows went to a temporary file next to the target"
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opps.parquet"]  # no temp file left


def test_new_file_gets_normal_permissions(sf: Any, tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    query_to_parquet(sf, "SELECT Id FROM Account LIMIT 5", path, progress=False)
    umask = os.umask(0o022)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_missing_folder_names_the_argument(sf: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder of path"):
        query_to_parquet(sf, "SELECT Id FROM Account", tmp_path / "nope" / "a.parquet")


def test_missing_pyarrow_names_the_extra() -> None:
    code = ("import sys\n"
            "sys.modules['pyarrow'] = None\n"
            "from sfjwt_ext.data.dataframe import query_to_parquet, query_arrow\n"
            "for f, args in ((query_to_parquet, ('x.parquet',)), (query_arrow, ())):\n"
            "    try:\n"
            "        f(object(), 'SELECT Id FROM Account', *args)\n"
            "    except ImportError as e:\n"
            "        print(e)\n"
            "    else:\n"
            "        raise SystemExit('no ImportError')\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert out.count("pip install 'sfjwt-ext[arrow]'") == 2
    assert "query_to_parquet needs pyarrow" in out and "query_arrow needs pyarrow" in out


def test_bulk_parallel_1_uses_the_locator_chain(sf: Any, org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """parallel=1 never asks for resultPages; the default asks once, and on a 404 (an org
    without it) follows the locator chain: same rows either way."""
    _bulk_or_skip(sf)
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    org.reset_counters()
    seq = query_df(sf, "SELECT Id, Name FROM Contact ORDER BY Id", bulk=True, progress=False, parallel=1)
    assert not any(r.path.endswith("/resultPages") for r in org.requests)
    assert sum(1 for r in org.requests if r.path.endswith("/results")) == 3
    default = query_df(sf, "SELECT Id, Name FROM Contact ORDER BY Id", bulk=True, progress=False)
    pd.testing.assert_frame_equal(default, seq)
    assert len(seq) == 1500 and seq["Id"].is_unique


def test_parallel_must_be_a_positive_int(sf: Any) -> None:
    for bad in (0, -1, 1.5, True, "4"):
        with pytest.raises(ValueError, match="parallel must be"):
            query_df(sf, "SELECT Id FROM Account", parallel=bad)


def test_cli_format_parquet(sf: Any, org: Any, tmp_path: Path) -> None:
    import shutil

    command = [shutil.which("sfjwt")] if shutil.which("sfjwt") else [sys.executable, "-m", "sfjwt_ext"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env["SFJWT_CONFIG"] = os.devnull + ".none"
    env.update(org.credentials.env())
    out = tmp_path / "opps.parquet"
    result = subprocess.run([*command, "query", OPP, "--format", "parquet", "--output", str(out)], env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "2000 records, written to" in result.stderr
    _same(pd.read_parquet(out), query_df(sf, OPP, progress=False))
    no_output = subprocess.run([*command, "query", OPP, "--format", "parquet"], env=env, capture_output=True,
                               text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert no_output.returncode == 2 and "--output FILE" in no_output.stderr


def test_salesforcejwt_methods(sf: Any, tmp_path: Path) -> None:
    soql = "SELECT Id, Name FROM Account ORDER BY Id LIMIT 50"
    assert sf.query_to_parquet(soql, tmp_path / "a.parquet", progress=False) == 50
    _same(sf.query_arrow(soql, progress=False).to_pandas(), sf.query_df(soql, progress=False))
