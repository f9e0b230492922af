"""sfjwt_ext.dask.read_soql: one Bulk 2.0 job in the caller, one partition per result page
downloaded by Dask workers with the pickled client; against the local org over HTTPS.

The cluster tests run on ``LocalCluster(processes=True, n_workers=4, threads_per_worker=1)``
(four worker processes). Every wait has a deadline (``result(timeout=...)``), and the
cluster is closed by its fixture, so a deadlock fails instead of hanging.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any, Iterator, List, Optional

import pytest
from _support import sample_org, wait_for_bulk_cleanup

pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the skips)
from sfjwt_ext.dask import read_soql  # noqa: E402
from sfjwt_ext.data.dataframe import BulkQueryNotSupported, query_df  # noqa: E402

SOQL = ("SELECT Id, Name, Amount, Probability, StageName, CloseDate, IsWon, CreatedDate, "
        "Account.Name, Account.NumberOfEmployees FROM Opportunity ORDER BY Id")
COMPUTE_TIMEOUT = 180


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sample_org(tmp_path_factory.mktemp("dask-org"), "dask@example.com") as org:  # 2,000 Opportunities
        yield org


def _connect(org: Any, **kwargs: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False, **kwargs)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 250)  # 2,000 rows -> 8 partitions


def _same(got: Any, expected: Any) -> None:
    got = got.reset_index(drop=True)  # each partition's index starts at 0 (like dd.read_csv)
    assert list(got.columns) == list(expected.columns)
    assert [str(t) for t in got.dtypes] == [str(t) for t in expected.dtypes]
    pd.testing.assert_frame_equal(got, expected)


def test_import_sfjwt_ext_does_not_import_dask() -> None:
    code = "import sys, sfjwt_ext, sfjwt_ext.data.dataframe; print('dask' in sys.modules or 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_meta_is_query_dfs_types_and_one_partition_per_page(org: Any, small_pages: None) -> None:
    sf = _connect(org)
    org.bulk2.reset_log()
    ddf = read_soql(SOQL, sf=sf)
    assert org.bulk2.result_requests == []  # nothing downloaded yet: the pages are the partitions
    assert ddf.npartitions == 8
    expected = query_df(sf, SOQL, bulk=True, progress=False)
    assert list(ddf.columns) == list(expected.columns)
    assert [str(t) for t in ddf.dtypes] == [str(t) for t in expected.dtypes]


def test_threaded_compute_equals_query_df(org: Any, small_pages: None) -> None:
    sf = _connect(org)
    expected = query_df(sf, SOQL, bulk=True, progress=False)
    org.reset_counters()
    org.bulk2.reset_log()
    got = read_soql(SOQL, sf=sf).compute(scheduler="threads")
    _same(got, expected)
    assert org.token_requests == 0
    assert sorted(r.offset for r in org.bulk2.result_requests) == list(range(0, 2000, 250))


def test_empty_result_is_one_typed_partition(org: Any) -> None:
    sf = _connect(org)
    soql = "SELECT Id, Amount, CloseDate FROM Opportunity WHERE Name = 'no such opportunity'"
    ddf = read_soql(soql, sf=sf)
    got = ddf.compute(scheduler="sync")
    assert ddf.npartitions == 1 and len(got) == 0
    _same(got, query_df(sf, soql, bulk=True, progress=False))


def test_refuses_what_bulk_cannot_run(org: Any) -> None:
    sf = _connect(org)
    with pytest.raises(BulkQueryNotSupported, match="read_soql cannot run this query.*query_df"):
        read_soql("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName", sf=sf)


def test_an_old_api_version_names_the_fix(org: Any) -> None:
    sf = _connect(org, version="57.0")
    soql = "SELECT Id FROM Account WHERE Name != 'read_soql on 57.0'"
    with pytest.raises(ValueError, match="version='58.0'"):
        read_soql(soql, sf=sf)
    assert org.bulk.jobs_created["bulk2"] >= 1
    wait_for_bulk_cleanup()  # the DELETE goes out in the background
    assert all(j.query != soql for j in org.bulk.bulk2_jobs.values())  # the job it ran is deleted


def test_a_client_that_does_not_pickle_is_refused_before_the_job(org: Any) -> None:
    import requests
    from simple_salesforce import Salesforce

    sf = _connect(org)
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: r)  # a lambda: this session cannot pickle
    plain = Salesforce(instance_url=org.instance_url, session_id=sf.session_id, session=session)
    before = org.bulk.jobs_created["bulk2"]
    with pytest.raises(TypeError, match="does not pickle.*connect_jwt"):
        read_soql("SELECT Id FROM Account", sf=plain)
    assert org.bulk.jobs_created["bulk2"] == before


# --------------------------------------------------------------------------- on a process cluster


@pytest.fixture(scope="module")
def cluster(org: Any) -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=True, n_workers=4, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None,
                                  death_timeout=60) as cluster, \
            distributed.Client(cluster, timeout=60) as client:
        client.wait_for_workers(4, timeout=120)
        yield client


def _compute(client: Any, ddf: Any) -> Any:
    return client.compute(ddf).result(timeout=COMPUTE_TIMEOUT)


def test_cluster_compute_equals_query_df_with_one_token_request(org: Any, cluster: Any,
                                                                 small_pages: None) -> None:
    org.reset_counters()
    org.bulk2.reset_log()
    sf = _connect(org)  # the one login
    ddf = read_soql(SOQL, sf=sf)
    got = _compute(cluster, ddf)
    assert org.token_requests == 1
    assert sorted(r.offset for r in org.bulk2.result_requests) == list(range(0, 2000, 250))
    _same(got, query_df(sf, SOQL, bulk=True, progress=False))
    assert org.token_requests == 1


def test_cluster_expiry_costs_at_most_one_login_per_worker(org: Any, cluster: Any, small_pages: None) -> None:
    sf = _connect(org)
    expected = query_df(sf, SOQL, bulk=True, progress=False)
    ddf = read_soql(SOQL, sf=sf)
    org.api_latency = 0.2
    real_wait = org._stopping.wait
    seen = [0]
    lock = threading.Lock()

    def expiring_wait(timeout: Optional[float] = None) -> bool:
        with lock:
            seen[0] += 1
            if seen[0] == 3:  # some pages are downloaded, others in flight or still to come
                org.expire_all_sessions()
        return real_wait(timeout)

    org.reset_counters()
    org._stopping.wait = expiring_wait
    try:
        got = _compute(cluster, ddf)
    finally:
        del org._stopping.wait
        org.api_latency = 0.0
    _same(got, expected)
    assert any(r.status == 401 for r in org.requests)
    workers = len(cluster.scheduler_info()["workers"])
    assert 1 <= org.token_requests <= workers
