"""Round trips (issue 17): what runs beside what, read from the local org's request log.

Each test holds one request in the org until another one has arrived (an ``Event`` with a
deadline, never a sleep): with the requests one after another the awaited one never comes
and the test fails; side by side it comes while the first is held. No timings asserted.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
from _support import sample_org, wait_for_bulk_cleanup

pd = pytest.importorskip("pandas")

from sfjwt_ext.data import dataframe  # noqa: E402  (after the pandas skip)
from sfjwt_ext.data.dataframe import query_df, query_to_parquet  # noqa: E402
from sfjwt_ext.data.records import describe_cache  # noqa: E402
from sfjwt_ext.testing.core.jobs import ID_RE, VERSION_RE  # noqa: E402
from sfjwt_ext.testing.core.http import Request, Response, json_response  # noqa: E402

V = rf"/services/data/v{VERSION_RE}"
QUERY = V + r"/(?P<kind>query|queryAll)/?"
QUERY_MORE = V + r"/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?"
DESCRIBE = V + r"/sobjects/(?P<sobject>\w+)/describe/?"
JOB = V + rf"/jobs/query/(?P<job>{ID_RE})"
WAIT = 20.0  # seconds a held request waits for the one it expects; only reached on failure


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sample_org(tmp_path_factory.mktemp("roundtrips-org"), "roundtrips@example.com") as org:
        yield org


@pytest.fixture(autouse=True)
def _clean(org: Any) -> Iterator[None]:
    """Every test leaves the org's routes, page size and latency as it found them."""
    routes = list(org.router._routes)
    page_size = org.page_size
    yield
    wait_for_bulk_cleanup()
    org.api_latency = 0.0
    org.page_size = page_size
    org.router._routes[:] = routes


def _connect(org: Any, **kwargs: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False, **kwargs)


def _wrap(org: Any, method: str, regex: str, sample_path: str,
          wrapper: Callable[[Callable[[Request], Response], Request], Response]) -> None:
    """Put ``wrapper(real_handler, request)`` in front of the route that serves ``sample_path``."""
    real, _, _ = org.router.find("instance", method, sample_path)
    assert real is not None, sample_path
    org.router.add("instance", method, regex, lambda request: wrapper(real, request))


def _queries(org: Any, seen: List[str]) -> None:
    """Record the SOQL of every first-page query request."""
    def wrapper(real: Callable[[Request], Response], request: Request) -> Response:
        seen.append(request.query.get("q", ""))
        return real(request)

    _wrap(org, "GET", QUERY, "/services/data/v62.0/query", wrapper)


# --------------------------------------------------------------------------- REST


def test_describe_runs_beside_the_first_query_and_no_count_is_asked(org: Any) -> None:
    sf = _connect(org)  # a fresh client: nothing described yet
    described = threading.Event()
    state = {"saw_describe": False}
    soql = "SELECT Id, Name, Amount FROM Opportunity ORDER BY Id LIMIT 300"

    def held_query(real: Callable[[Request], Response], request: Request) -> Response:
        state["saw_describe"] = described.wait(WAIT)  # the describe arrives while this waits
        return real(request)

    def describe(real: Callable[[Request], Response], request: Request) -> Response:
        described.set()
        return real(request)

    seen: List[str] = []
    _wrap(org, "GET", DESCRIBE, "/services/data/v62.0/sobjects/Opportunity/describe", describe)
    _queries(org, seen)
    _wrap(org, "GET", QUERY, "/services/data/v62.0/query", held_query)
    org.reset_counters()
    df = query_df(sf, soql, progress=False)
    assert state["saw_describe"]
    assert len(df) == 300 and str(df["Amount"].dtype) == "Float64"  # typed from the describe
    assert seen == [soql]  # bulk="auto" asked no SELECT COUNT()
    paths = [r.path for r in org.requests]
    assert sum(p.endswith("/describe") for p in paths) == 1
    # the describe stays cached on the client: the next query asks for it no more
    org.reset_counters()
    query_df(sf, soql, progress=False)
    assert not any(r.path.endswith("/describe") for r in org.requests)


def test_auto_above_the_threshold_switches_after_the_first_page(org: Any, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(dataframe, "BULK_AUTO_THRESHOLD", 1000)
    sf = _connect(org)
    seen: List[str] = []
    _queries(org, seen)
    soql = "SELECT Id, Amount FROM Opportunity ORDER BY Id"
    org.reset_counters()
    with caplog.at_level(logging.INFO, logger="sfjwt_ext.dataframe"):
        df = query_df(sf, soql, progress=False, batch_size=500)
    assert len(df) == 2000 and df["Id"].is_unique
    assert seen == [soql]  # no COUNT(): the first page's totalSize decided
    assert not any("/query/01g" in r.path for r in org.requests)  # nothing more fetched by REST
    assert any(r.method == "POST" and r.path.endswith("/jobs/query") for r in org.requests)
    assert any("totalSize 2000 rows > BULK_AUTO_THRESHOLD=1000" in r.getMessage() for r in caplog.records)


def test_a_failing_describe_still_gives_the_rows(org: Any) -> None:
    """As before: describe errors are not the caller's; types then come from the values."""
    sf = _connect(org)

    def failing(real: Callable[[Request], Response], request: Request) -> Response:
        return json_response([{"errorCode": "UNKNOWN_EXCEPTION", "message": "describe is down"}], status=500)

    _wrap(org, "GET", DESCRIBE, "/services/data/v62.0/sobjects/Opportunity/describe", failing)
    df = query_df(sf, "SELECT Id, Name, Amount FROM Opportunity ORDER BY Id LIMIT 50", progress=False)
    assert len(df) == 50 and list(df.columns) == ["Id", "Name", "Amount"]
    assert describe_cache(sf) == {}  # nothing wrong was cached


def test_session_expiring_mid_extract_costs_one_token_request(org: Any) -> None:
    """The sessions expire when the 3rd page is asked for (the 2nd is being converted):
    one token request, every row once, in order."""
    sf = _connect(org)
    soql = "SELECT Id, Name, Account.Name FROM Contact ORDER BY Id"
    expected = [r["Id"] for r in sf.query_all(soql)["records"]]
    more = {"n": 0}

    def expiring(real: Callable[[Request], Response], request: Request) -> Response:
        more["n"] += 1
        if more["n"] == 2:
            org.expire_all_sessions()
        return real(request)

    _wrap(org, "GET", QUERY_MORE, "/services/data/v62.0/query/01g000000000000AAA-200", expiring)
    org.reset_counters()
    df = query_df(sf, soql, progress=False, batch_size=200)
    assert df["Id"].tolist() == expected
    assert org.token_requests == 1
    assert [r.status for r in org.requests if "/query/01g" in r.path].count(401) == 1


def test_next_page_is_asked_for_while_one_is_converted(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversion of page 2 waits until page 3 has been asked for: only a client that
    asks for the next page before converting the current one gets past it."""
    sf = _connect(org)
    third = threading.Event()
    waited: List[bool] = []

    def pages(real: Callable[[Request], Response], request: Request) -> Response:
        if request.path.rstrip("/").endswith("-400"):
            third.set()
        return real(request)

    real_extract = dataframe.extract

    def extract(records: List[dict], keys: Any) -> List[Any]:
        if len(waited) == 1:  # page 2 (one column, one call per page)
            waited.append(third.wait(WAIT))
        else:
            waited.append(True)
        return real_extract(records, keys)

    _wrap(org, "GET", QUERY_MORE, "/services/data/v62.0/query/01g000000000000AAA-200", pages)
    monkeypatch.setattr(dataframe, "extract", extract)
    df = query_df(sf, "SELECT Id FROM Contact ORDER BY Id", progress=False, batch_size=200)
    assert waited[1] is True
    assert len(df) == 1500 and df["Id"].is_unique


# --------------------------------------------------------------------------- Bulk 2.0


def _hold_first_download_until_second_listing(org: Any) -> dict:
    second_listing = threading.Event()
    state = {"listings": 0, "overlap": None}
    lock = threading.Lock()

    def listing(real: Callable[[Request], Response], request: Request) -> Response:
        with lock:
            state["listings"] += 1
            if state["listings"] == 2:
                second_listing.set()
        return real(request)

    def download(real: Callable[[Request], Response], request: Request) -> Response:
        with lock:
            first = state["overlap"] is None
            if first:
                state["overlap"] = False
        if first:  # the first page waits for the next listing: it must come beside the downloads
            state["overlap"] = second_listing.wait(WAIT)
        return real(request)

    sample = "/services/data/v62.0/jobs/query/750000000000000AAA"
    _wrap(org, "GET", JOB + "/resultPages", sample + "/resultPages", listing)
    _wrap(org, "GET", JOB + "/results", sample + "/results", download)
    return state


def test_next_listing_overlaps_the_downloads(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)  # 2000 rows: 20 pages, 4 listings of 5
    sf = _connect(org)
    state = _hold_first_download_until_second_listing(org)
    df = query_df(sf, "SELECT Id, Amount FROM Opportunity ORDER BY Id", bulk=True, progress=False)
    assert state["overlap"] is True
    assert len(df) == 2000 and df["Id"].is_unique and df["Id"].is_monotonic_increasing
    assert state["listings"] == 4


def test_describe_runs_beside_the_job_creation(org: Any) -> None:
    sf = _connect(org)
    created = threading.Event()
    state = {"overlap": False}

    def describe(real: Callable[[Request], Response], request: Request) -> Response:
        state["overlap"] = created.wait(WAIT)  # the job's POST arrives while this waits
        return real(request)

    def create(real: Callable[[Request], Response], request: Request) -> Response:
        created.set()
        return real(request)

    _wrap(org, "GET", DESCRIBE, "/services/data/v62.0/sobjects/Account/describe", describe)
    _wrap(org, "POST", V + "/jobs/query/?", "/services/data/v62.0/jobs/query", create)
    df = query_df(sf, "SELECT Id, Name FROM Account ORDER BY Id", bulk=True, progress=False)
    assert state["overlap"] and len(df) == 500


def test_compound_field_found_by_describe_refuses_and_drops_the_job(org: Any) -> None:
    sf = _connect(org)
    with pytest.raises(dataframe.BulkQueryNotSupported, match="compound"):
        query_df(sf, "SELECT Id, BillingAddress FROM Account", bulk=True)
    wait_for_bulk_cleanup()
    assert not any(j.query.endswith("BillingAddress FROM Account") for j in org.bulk.bulk2_jobs.values())


def test_delete_is_off_the_callers_path_and_a_failed_one_is_logged(org: Any, caplog: pytest.LogCaptureFixture,
                                                                  tmp_path: Path) -> None:
    sf = _connect(org)
    release = threading.Event()
    deletes: List[int] = []

    def failing_delete(real: Callable[[Request], Response], request: Request) -> Response:
        release.wait(WAIT)  # held until the caller has its rows: nobody waits for it
        deletes.append(1)
        return json_response([{"errorCode": "UNKNOWN_EXCEPTION", "message": "cannot delete now"}], status=500)

    _wrap(org, "DELETE", JOB, "/services/data/v62.0/jobs/query/750000000000000AAA", failing_delete)
    with caplog.at_level(logging.WARNING, logger="sfjwt_ext.dataframe"):
        rows = query_to_parquet(sf, "SELECT Id FROM Account", tmp_path / "a.parquet", bulk=True, progress=False)
        assert rows == 500 and deletes == []  # returned while its DELETE is still held
        release.set()
        wait_for_bulk_cleanup()
    assert deletes == [1]
    assert any("could not delete Bulk 2.0 job" in r.getMessage() for r in caplog.records)


def test_a_successful_delete_logs_nothing(org: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Salesforce answers the DELETE with 204 and no body: that is a success, not a warning."""
    sf = _connect(org)
    soql = "SELECT Id FROM Account WHERE Name != 'roundtrips: deleted job'"
    wait_for_bulk_cleanup()  # an earlier test's DELETE to its stopped org logs a warning of its own
    with caplog.at_level(logging.WARNING, logger="sfjwt_ext.dataframe"):
        assert len(query_df(sf, soql, bulk=True, progress=False)) == 500
        wait_for_bulk_cleanup()
    # by level: an earlier test in this process may leave the capture handler at DEBUG
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [r.status for r in org.requests if r.method == "DELETE"][-1:] == [204]
    assert not any(j.query == soql for j in org.bulk.bulk2_jobs.values())


def test_a_failed_cleanup_never_hides_the_callers_error(org: Any, caplog: pytest.LogCaptureFixture) -> None:
    from simple_salesforce.exceptions import SalesforceError

    sf = _connect(org, retries=0)

    def lost(real: Callable[[Request], Response], request: Request) -> Response:
        return json_response([{"errorCode": "UNKNOWN_EXCEPTION", "message": "page lost"}], status=500)

    def failing_delete(real: Callable[[Request], Response], request: Request) -> Response:
        return json_response([{"errorCode": "UNKNOWN_EXCEPTION", "message": "cannot delete now"}], status=500)

    sample = "/services/data/v62.0/jobs/query/750000000000000AAA"
    _wrap(org, "GET", JOB + "/results", sample + "/results", lost)
    _wrap(org, "DELETE", JOB, sample, failing_delete)
    with caplog.at_level(logging.WARNING, logger="sfjwt_ext.dataframe"):
        with pytest.raises(SalesforceError, match="page lost"):
            query_df(sf, "SELECT Id FROM Account", bulk=True, progress=False)
        wait_for_bulk_cleanup()
    assert any("could not delete Bulk 2.0 job" in r.getMessage() for r in caplog.records)


def test_session_expiring_during_downloads_costs_one_token_request(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataframe, "BULK_PART_RECORDS", 100)
    sf = _connect(org)
    expected = query_df(sf, "SELECT Id FROM Opportunity ORDER BY Id", bulk=False, progress=False)
    third = threading.Event()
    state = {"n": 0}
    lock = threading.Lock()

    def expiring(real: Callable[[Request], Response], request: Request) -> Response:
        with lock:
            state["n"] += 1
            if state["n"] == 3:
                org.expire_all_sessions()  # other downloads are in flight
                third.set()
        return real(request)

    _wrap(org, "GET", JOB + "/results", "/services/data/v62.0/jobs/query/750000000000000AAA/results", expiring)
    org.reset_counters()
    got = query_df(sf, "SELECT Id FROM Opportunity ORDER BY Id", bulk=True, progress=False)
    assert third.is_set()
    pd.testing.assert_frame_equal(got, expected)
    assert org.token_requests == 1


# --------------------------------------------------------------------------- sfjwt query


def test_cli_asks_for_the_next_page_while_writing(org: Any, tmp_path: Path) -> None:
    """stdout is a pipe nobody reads until page 2 is asked for: a first page bigger than the
    pipe blocks the writer, so only a client that asked before writing gets there."""
    asked = threading.Event()

    def more(real: Callable[[Request], Response], request: Request) -> Response:
        asked.set()
        return real(request)

    _wrap(org, "GET", QUERY_MORE, "/services/data/v62.0/query/01g000000000000AAA-200", more)
    org.page_size = 1000  # 2 pages; the first one (~150 kB of CSV) does not fit in a pipe
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env.update(org.credentials.env(), SFJWT_CONFIG=os.devnull + ".none")
    soql = ("SELECT Id, Name, StageName, CloseDate, Amount, Probability, IsWon, CreatedDate, Account.Id, "
            "Account.Name FROM Opportunity ORDER BY Id")
    proc = subprocess.Popen([sys.executable, "-m", "sfjwt_ext", "query", soql, "--format", "csv"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        overlapped = asked.wait(WAIT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert overlapped
    lines = out.decode().splitlines()
    assert len(lines) == 2001 and len(set(lines)) == 2001


def test_expired_session_with_describe_beside_the_query_costs_one_token_request(org: Any) -> None:
    """Both the first query and the describe go out with an expired token, side by side:
    one token request renews it for both."""
    sf = _connect(org)
    described = threading.Event()

    def held_query(real: Callable[[Request], Response], request: Request) -> Response:
        described.wait(WAIT)
        return real(request)

    def describe(real: Callable[[Request], Response], request: Request) -> Response:
        described.set()
        return real(request)

    _wrap(org, "GET", DESCRIBE, "/services/data/v62.0/sobjects/Opportunity/describe", describe)
    _wrap(org, "GET", QUERY, "/services/data/v62.0/query", held_query)
    org.expire_all_sessions()
    org.reset_counters()
    df = query_df(sf, "SELECT Id, Amount FROM Opportunity ORDER BY Id LIMIT 100", progress=False)
    assert len(df) == 100 and str(df["Amount"].dtype) == "Float64"
    assert org.token_requests == 1
    assert sorted(r.status for r in org.requests if r.status == 401) == [401, 401]
