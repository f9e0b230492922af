"""Bulk API 2.0 parallel results: the local org's ``resultPages``, gzip and ``api_latency``,
and the client (``dataframe._BulkResults``) that downloads the pages at once.

Shapes compared with Salesforce's "Get Parallel Results for a Query Job" (Bulk API 2.0
guide): ``{"resultPages": [{"resultUrl": ".../results?locator=..."}, ...], "nextRecordsUrl":
".../resultPages?locator=...", "done": false}``, up to five URLs per response, API 58.0+,
409 when the version is not the job's.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from _support import sample_org
import requests

pd = pytest.importorskip("pandas")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the pandas skip)
from sfjwt_ext.data.dataframe import _BulkResults, query_df  # noqa: E402

SOQL = "SELECT Id, Name FROM Contact ORDER BY Id"  # 1,500 rows in the sample data


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sample_org(tmp_path_factory.mktemp("rp-org"), "rp@example.com") as org:
        yield org


@pytest.fixture(autouse=True)
def _clean(org: Any) -> Iterator[None]:
    org.api_latency = 0.0
    org.clear_faults()
    yield
    org.api_latency = 0.0
    org.clear_faults()


def _connect(org: Any, **kwargs: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False, **kwargs)


# --------------------------------------------------------------------------- raw HTTP against the org


class Raw:
    """Plain requests against the org: a token, a job, GETs with chosen headers."""

    def __init__(self, org: Any, version: str = "62.0") -> None:
        self.org = org
        sf = _connect(org)
        self.token = sf.session_id
        self.version = version
        self.http = requests.Session()  # verify= per request: REQUESTS_CA_BUNDLE beats Session.verify

    def url(self, path: str, version: Optional[str] = None) -> str:
        return f"{self.org.instance_url}/services/data/v{version or self.version}/{path}"

    def get(self, url: str, **headers: str) -> requests.Response:
        if url.startswith("/"):
            url = self.org.instance_url + url
        return self.http.get(url, headers={"Authorization": f"Bearer {self.token}", **headers}, timeout=30,
                             verify=self.org.ca_file)

    def job(self, soql: str = SOQL) -> str:
        resp = self.http.post(self.url("jobs/query"), json={"operation": "query", "query": soql},
                              headers={"Authorization": f"Bearer {self.token}"}, timeout=30, verify=self.org.ca_file)
        assert resp.status_code == 200, resp.text
        job_id = resp.json()["id"]
        deadline = time.monotonic() + 30
        while self.get(self.url(f"jobs/query/{job_id}")).json()["state"] != "JobComplete":
            assert time.monotonic() < deadline, "the job never completed"
        return job_id


@pytest.fixture
def raw(org: Any) -> Raw:
    return Raw(org)


def _all_pages(raw: Raw, first: str) -> Tuple[List[List[str]], List[str]]:
    """Every resultPages response's resultUrls, following nextRecordsUrl; and the urls asked."""
    batches: List[List[str]] = []
    asked = [first]
    body = raw.get(first, Accept="application/json").json()
    while True:
        assert set(body) == {"resultPages", "nextRecordsUrl", "done"}
        batches.append([p["resultUrl"] for p in body["resultPages"]])
        assert all(set(p) == {"resultUrl"} for p in body["resultPages"])
        if body["done"]:
            assert body["nextRecordsUrl"] is None
            return batches, asked
        asked.append(body["nextRecordsUrl"])
        body = raw.get(body["nextRecordsUrl"], Accept="application/json").json()


def test_result_pages_shape_five_per_response_and_every_row_once(raw: Raw) -> None:
    job = raw.job()
    batches, asked = _all_pages(raw, raw.url(f"jobs/query/{job}/resultPages?maxRecords=100"))
    assert [len(b) for b in batches] == [5, 5, 5]  # 1,500 rows / 100 = 15 pages, five at a time
    assert all(u.startswith(f"/services/data/v62.0/jobs/query/{job}/results?locator=") for b in batches for u in b)
    assert all(u.startswith(f"/services/data/v62.0/jobs/query/{job}/resultPages?locator=") for u in asked[1:])
    ids: List[str] = []
    for url in (u for b in batches for u in b):
        resp = raw.get(url)
        assert resp.status_code == 200
        assert resp.headers["Sforce-NumberOfRecords"] == "100"
        lines = resp.text.splitlines()
        assert lines[0] == '"Id","Name"'
        ids.extend(line.split(",")[0] for line in lines[1:])
    assert len(ids) == 1500 and len(set(ids)) == 1500


def test_result_pages_default_page_size_is_50000(org: Any, raw: Raw) -> None:
    job = raw.job("SELECT Id FROM Contact")
    body = raw.get(raw.url(f"jobs/query/{job}/resultPages")).json()
    assert body["done"] is True and len(body["resultPages"]) == 1
    url = body["resultPages"][0]["resultUrl"]
    assert "maxRecords" not in url
    assert raw.get(url).headers["Sforce-NumberOfRecords"] == "1500"  # all of it: below 50,000
    assert dataframe.BULK_PART_RECORDS == 50_000  # simple-salesforce's page size, the client's too


def test_result_pages_of_an_empty_result_name_one_page(raw: Raw) -> None:
    job = raw.job("SELECT Id FROM Contact WHERE Name = 'nobody at all'")
    body = raw.get(raw.url(f"jobs/query/{job}/resultPages")).json()
    assert body["done"] is True and len(body["resultPages"]) == 1
    page = raw.get(body["resultPages"][0]["resultUrl"])
    assert page.headers["Sforce-NumberOfRecords"] == "0" and page.text.strip() == '"Id"'


def test_result_pages_do_not_exist_before_58(raw: Raw) -> None:
    job = raw.job()
    resp = raw.get(raw.url(f"jobs/query/{job}/resultPages", version="57.0"))
    assert resp.status_code == 404
    assert resp.json() == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def test_result_pages_with_another_version_than_the_job_is_409(raw: Raw) -> None:
    job = raw.job()
    resp = raw.get(raw.url(f"jobs/query/{job}/resultPages", version="60.0"))
    assert resp.status_code == 409
    (error,) = resp.json()
    assert set(error) == {"errorCode", "message"} and "62.0" in error["message"]


def test_result_pages_need_a_session_and_a_finished_job(org: Any, raw: Raw) -> None:
    job = raw.job()
    resp = raw.http.get(raw.url(f"jobs/query/{job}/resultPages"), headers={"Authorization": "Bearer nope"},
                        timeout=30, verify=org.ca_file)
    assert resp.status_code == 401 and resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert raw.get(raw.url("jobs/query/750000000000000AAA/resultPages")).status_code == 404
    assert raw.get(raw.url(f"jobs/query/{job}/resultPages?locator=%%%")).status_code == 400
    assert raw.get(raw.url(f"jobs/query/{job}/resultPages?maxRecords=0")).status_code == 400


def test_results_are_gzipped_only_when_asked(org: Any, raw: Raw) -> None:
    job = raw.job()
    url = raw.url(f"jobs/query/{job}/results?maxRecords=1500")
    plain = raw.get(url, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    stream = raw.http.get(url, headers={"Authorization": f"Bearer {raw.token}", "Accept-Encoding": "gzip"},
                          stream=True, timeout=30, verify=org.ca_file)
    assert stream.headers["Content-Encoding"] == "gzip"
    body = stream.raw.read(decode_content=False)
    assert int(stream.headers["Content-Length"]) == len(body) < len(plain.content)
    assert gzip.decompress(body) == plain.content
    refused = raw.get(url, **{"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.content == plain.content
    assert [r.gzipped for r in org.bulk2.result_requests[-3:]] == [False, True, False]


def _in_flight_peak(org: Any, action: Any) -> int:
    """The most API requests the org held in its latency wait at one time during ``action()``."""
    real_wait = org._stopping.wait
    inside = [0, 0]  # now, peak
    lock = threading.Lock()

    def counting_wait(timeout: Optional[float] = None) -> bool:
        with lock:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
        try:
            return real_wait(timeout)
        finally:
            with lock:
                inside[0] -= 1

    org._stopping.wait = counting_wait
    try:
        action()
    finally:
        del org._stopping.wait
    return inside[1]


def test_api_latency_requests_overlap(org: Any, raw: Raw) -> None:
    org.api_latency = 0.3
    url = raw.url("limits")

    def eight_at_once() -> None:
        def one() -> None:
            resp = requests.get(url, headers={"Authorization": f"Bearer {raw.token}"}, timeout=30, verify=org.ca_file)
            assert resp.status_code == 200

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()

    assert _in_flight_peak(org, eight_at_once) >= 4  # not one at a time


def test_api_latency_is_cut_short_by_stop(tmp_path: Path) -> None:
    from sfjwt_ext import connect_jwt
    from sfjwt_ext.testing import LocalOrg

    org = LocalOrg()
    org.start()
    creds = org.new_app_with_key(tmp_path, username="stop@example.com")
    sf = connect_jwt(**creds.connect_kwargs(), cache=False, retries=0)
    real_wait = org._stopping.wait
    waiting = threading.Event()

    def noted_wait(timeout: Optional[float] = None) -> bool:
        waiting.set()
        return real_wait(timeout)

    org._stopping.wait = noted_wait
    org.api_latency = 600.0
    t = threading.Thread(target=lambda: pytest.raises(Exception, sf.query, "SELECT Id FROM Account"), daemon=True)
    t.start()
    assert waiting.wait(timeout=30), "the request never reached the latency wait"
    org.stop()  # returns although a handler sits in a 600 s latency: the connection is dropped
    t.join(timeout=60)
    assert not t.is_alive()


# --------------------------------------------------------------------------- the client


def _job(sf: Any, soql: str = SOQL) -> Tuple[Any, str]:
    from simple_salesforce.bulk2 import Operation

    client = sf.bulk2.Contact._client
    job_id = client.create_job(Operation.query, soql)["id"]
    client.wait_for_job(job_id, True, 0.01)
    return client, job_id


def _read_all(results: _BulkResults) -> List[Tuple[List[str], int]]:
    out = []
    for path, n, _more in results.parts():
        with open(path, encoding="utf-8") as fh:
            out.append((fh.read().splitlines(), n))
        os.remove(path)
    return out


def test_parallel_pages_arrive_once_in_order_gzipped(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org)
    client, job_id = _job(sf)
    org.bulk2.reset_log()
    org.reset_counters()
    org.api_latency = 0.05  # pages finish out of order
    results = _BulkResults(sf, job_id, str(tmp_path), 4)
    parts = _read_all(results)
    assert results.mode == "parallel"
    assert [n for _, n in parts] == [100] * 15
    ids = [line.split(",")[0] for lines, _ in parts for line in lines[1:]]
    expected = [r["Id"] for r in sf.query_all(SOQL.replace("Name", "Name"))["records"]]
    assert [i.strip('"') for i in ids] == expected  # every row once, in order
    asked = org.bulk2.result_requests
    assert len(asked) == 15 and sorted(r.offset for r in asked) == list(range(0, 1500, 100))
    assert all(r.gzipped and "gzip" in r.accept_encoding for r in asked)
    assert org.bulk2.result_pages_requests == 3
    assert list(tmp_path.iterdir()) == []


def test_parallel_downloads_overlap(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org)
    client, job_id = _job(sf)
    org.api_latency = 0.2
    peak = _in_flight_peak(org, lambda: _read_all(_BulkResults(sf, job_id, str(tmp_path), 4)))
    assert peak >= 3  # up to 4 downloads + the next resultPages call; sequential would be 1
    peak1 = _in_flight_peak(org, lambda: _read_all(_BulkResults(sf, job_id, str(tmp_path), 1)))
    assert peak1 == 1


def test_older_client_version_uses_the_locator_chain(org: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    sf = _connect(org, version="57.0")
    client, job_id = _job(sf)
    org.reset_counters()
    results = _BulkResults(sf, job_id, str(tmp_path), 4)
    parts = _read_all(results)
    assert results.mode == "locator"
    assert [n for _, n in parts] == [600, 600, 300]
    assert not any(r.path.endswith("/resultPages") for r in org.requests)


def test_a_404_from_result_pages_falls_back(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 600)
    sf = _connect(org)
    client, job_id = _job(sf)
    org.reset_counters()
    org.inject_fault("api", status=404, content_type="application/json;charset=UTF-8",
                     body=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    results = _BulkResults(sf, job_id, str(tmp_path), 4)
    parts = _read_all(results)
    assert results.mode == "locator"
    assert sum(n for _, n in parts) == 1500
    assert [r.status for r in org.requests if r.path.endswith("/resultPages")] == [404]


def test_expiry_while_pages_are_in_flight(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions expire while four downloads wait in the org's latency: each gets a 401,
    one token request renews the session for all, every page still arrives exactly once."""
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org)
    client, job_id = _job(sf)
    expected = [r["Id"] for r in sf.query_all(SOQL)["records"]]
    org.api_latency = 0.3
    org.reset_counters()
    org.bulk2.reset_log()
    real_wait = org._stopping.wait
    state = {"inside": 0, "expired": False}
    lock = threading.Lock()

    def expiring_wait(timeout: Optional[float] = None) -> bool:
        with lock:
            state["inside"] += 1
            if state["inside"] >= 4 and not state["expired"]:
                state["expired"] = True
                org.expire_all_sessions()  # four requests are in flight, none checked its session yet
        try:
            return real_wait(timeout)
        finally:
            with lock:
                state["inside"] -= 1

    org._stopping.wait = expiring_wait
    try:
        parts = _read_all(_BulkResults(sf, job_id, str(tmp_path), 4))
    finally:
        del org._stopping.wait
    assert state["expired"]
    ids = [line.split(",")[0].strip('"') for lines, _ in parts for line in lines[1:]]
    assert ids == expected
    assert org.token_requests == 1
    assert sum(1 for r in org.requests if r.status == 401) >= 2  # several were in flight
    served = [r.offset for r in org.bulk2.result_requests]
    assert sorted(served) == list(range(0, 1500, 100))  # each page served once (401s are not served)


def test_a_failing_page_leaves_no_temp_files(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from simple_salesforce.exceptions import SalesforceError

    from sfjwt_ext.testing.core.jobs import ID_RE, VERSION_RE

    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org, retries=0)
    client, job_id = _job(sf)
    folder = tmp_path / "parts"
    folder.mkdir()
    real = org.bulk2.bulk2_results
    count = [0]
    lock = threading.Lock()

    def failing(request: Any) -> Any:
        with lock:
            count[0] += 1
            n = count[0]
        if n == 6:
            from sfjwt_ext.testing.core.http import json_response
            return json_response([{"errorCode": "UNKNOWN_EXCEPTION", "message": "page lost"}], status=500)
        return real(request)

    route = rf"/services/data/v{VERSION_RE}/jobs/query/(?P<job>{ID_RE})/results"
    org.router.add("instance", "GET", route, failing)
    try:
        got = []
        with pytest.raises(SalesforceError):
            for path, n, _ in _BulkResults(sf, job_id, str(folder), 4).parts():
                got.append(n)
                os.remove(path)
        assert 0 < len(got) < 15  # pages before the failed one were handed out, none after
    finally:
        org.router.add("instance", "GET", route, real)
    assert list(folder.iterdir()) == []


def test_query_df_parallel_equals_sequential(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 200)
    sf = _connect(org)
    soql = "SELECT Id, Name, Amount, CloseDate, IsWon, Account.Name FROM Opportunity ORDER BY Id"
    org.bulk2.reset_log()
    par = query_df(sf, soql, bulk=True, progress=False)
    assert org.bulk2.result_pages_requests >= 2
    seq = query_df(sf, soql, bulk=True, progress=False, parallel=1)
    pd.testing.assert_frame_equal(par, seq)
    assert len(par) == 2000 and par["Id"].is_unique


@pytest.mark.parametrize("delimiter,line_ending", [(",", "\n"), ("\t", "\r\n"), ("|", "\n"), (";", "\r\n")])
def test_render_page_writes_what_render_csv_writes(delimiter: str, line_ending: str) -> None:
    from sfjwt_ext.testing.core.jobs import render_csv
    from sfjwt_ext.testing.bulk2.query import render_page

    columns = ["Id", "Name", 'Odd "col"', "Amount", "IsWon", "N"]
    mixed = [
        ["006A", 'say "hi"', "a,b;c|d\te", 1.0, True, 3],
        ["006B", "line\nbreak\r\nhere", "", 0.1, False, None],
        ["006C", None, "ünïcödé", 1e16, None, -2],
        ["006D", "", '"', 2.5e-7, True, 0],
    ]
    plain = [["006E", "x", "y", "1.5", "true", "3"], ["006F", "", "", "", "", ""]]
    for rows in (mixed, plain, [], [["only", "one", "row", "1", "false", "2"]]):
        assert render_page(columns, rows, delimiter, line_ending) == render_csv(columns, rows, delimiter, line_ending)


# --------------------------------------------------------------------------- the job's rows: a snapshot in the store


def _temp_tables(org: Any) -> int:
    with org.store._lock:
        return org.store._conn.execute("SELECT count(*) FROM sqlite_temp_master WHERE type = 'table'").fetchone()[0]


def _csv_rows(raw: Raw, job: str, max_records: int) -> List[str]:
    lines: List[str] = []
    locator = ""
    while locator != "null":
        resp = raw.get(raw.url(f"jobs/query/{job}/results?maxRecords={max_records}"
                               + (f"&locator={locator}" if locator else "")))
        assert resp.status_code == 200, resp.text
        body = resp.text.splitlines()
        lines.extend(body if not lines else body[1:])
        locator = resp.headers["Sforce-Locator"]
    return lines


def test_job_rows_are_taken_at_creation_and_dropped_with_the_job(org: Any, raw: Raw) -> None:
    from sfjwt_ext.testing.bulk2.query import render_page

    soql = "SELECT Id, Name, Email FROM Contact ORDER BY Name, Id"
    columns, expected = org.store.query_flat(soql)
    before = _temp_tables(org)
    job = raw.job(soql)
    assert _temp_tables(org) == before + 1  # the rows live in SQLite, not in a Python list
    sf = _connect(org)
    first_id = expected[0][0]
    sf.Contact.update(first_id, {"LastName": "Changed After The Job"})
    added = sf.Contact.create({"LastName": "Added After The Job"})["id"]
    try:
        lines = _csv_rows(raw, job, 400)  # pages of 400: 1,500 rows in 4 pages
        assert "\n".join(lines) + "\n" == render_page(columns, expected, ",", "\n")
        assert len(lines) == 1 + len(expected) and not any(added[:15] in line for line in lines)
    finally:
        sf.Contact.update(first_id, {"LastName": expected[0][1].split()[-1]})
        sf.Contact.delete(added)
    resp = raw.http.delete(raw.url(f"jobs/query/{job}"), headers={"Authorization": f"Bearer {raw.token}"},
                           timeout=30, verify=org.ca_file)
    assert resp.status_code == 204
    assert _temp_tables(org) == before


def test_aggregate_job_pages_equal_query_flat(org: Any, raw: Raw) -> None:
    from sfjwt_ext.testing.bulk2.query import render_page

    soql = "SELECT StageName, COUNT(Id), MAX(Amount), MIN(Amount) FROM Opportunity GROUP BY StageName"
    columns, expected = org.store.query_flat(soql)
    assert len(expected) > 1
    lines = _csv_rows(raw, raw.job(soql), 3)
    assert "\n".join(lines) + "\n" == render_page(columns, expected, ",", "\n")


@pytest.mark.parametrize("delimiter", [",", "\t", "|"])
def test_snapshot_lines_are_render_page_lines_for_wide_and_quoted_rows(delimiter: str) -> None:
    """130 columns (more than one SQLite printf call takes), quotes, delimiters, newlines,
    nulls, numbers and booleans: the lines SQLite joins are the lines render_page writes."""
    from sfjwt_ext.testing import LocalOrg
    from sfjwt_ext.testing.bulk2.query import render_page

    store = LocalOrg().store
    names = [f"W{i}__c" for i in range(130)]
    for name in names:
        store.add_field("Account", name, type="string")
    store.add_field("Account", "Score__c", type="double")
    store.add_field("Account", "Flag__c", type="checkbox")
    texts = ['say "hi"', "a,b;c|d\te", "line\nbreak", "", '"', "ünï%scödé", "it's"]
    store.insert("Account", [{"Name": f'Acct "{n}"', "Score__c": [1.5, None, 2e-7][n % 3], "Flag__c": n % 2 == 0,
                              **{name: texts[(n + i) % len(texts)] for i, name in enumerate(names) if (n + i) % 5}}
                             for n in range(7)])
    soql = f"SELECT Id, Name, Score__c, Flag__c, {', '.join(names)} FROM Account ORDER BY Name"
    columns, rows = store.query_flat(soql)
    snapshot = store.snapshot_flat(soql)
    try:
        assert snapshot.count == len(rows) >= 7 and snapshot.columns == columns
        lines = snapshot.lines(0, 4, delimiter) + snapshot.lines(4, 1000, delimiter)
        assert "\n".join([render_page(columns, [], delimiter, "")] + lines) + "\n" == \
            render_page(columns, rows, delimiter, "\n")
        assert snapshot.lines(len(rows), 10, delimiter) == []
    finally:
        snapshot.close()


@pytest.mark.parametrize("parallel", [4, 1])
def test_pages_are_read_where_they_download(org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            parallel: int) -> None:
    """With read=, parallel downloads parse their own page in their worker thread (the
    consumer only gets parsed pages); the locator chain reads in the consumer. Every page
    once, in order, and no file left behind."""
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org)
    client, job_id = _job(sf)
    threads: List[str] = []

    def read(path: str) -> List[str]:
        threads.append(threading.current_thread().name)
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()

    org.api_latency = 0.02
    results = _BulkResults(sf, job_id, str(tmp_path), parallel, read=read)
    parts = list(results.parts())
    assert results.mode == ("parallel" if parallel > 1 else "locator")
    assert [n for _, n, _ in parts] == [100] * 15 and [more for _, _, more in parts] == [True] * 14 + [False]
    ids = [line.split(",")[0].strip('"') for lines, _, _ in parts for line in lines[1:]]
    assert ids == [r["Id"] for r in sf.query_all(SOQL)["records"]]
    here = threading.current_thread().name
    if parallel > 1:
        assert len(threads) == 15 and all(t.startswith("sfjwt-bulk-results") for t in threads)
    else:
        assert threads == [here] * 15
    assert list(tmp_path.iterdir()) == []
