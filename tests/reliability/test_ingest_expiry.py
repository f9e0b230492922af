"""A Bulk API 2.0 ingest job through ``connect_jwt()`` while the session expires: before the
job is created, during the upload (the PUT meets the expired session), before the close and
during polling. Every row lands exactly once, and each expiry costs one token request."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import pytest
import requests

from sfjwt_ext import connect_jwt
from sfjwt_ext.client import SalesforceJWT

ROWS = 120


@pytest.fixture
def sf(salesforce_org: Any) -> SalesforceJWT:
    client = connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)
    client.refresher.token_client.backoff = 0.0
    client.query("SELECT Id FROM Account LIMIT 1")
    return client


def _ingest_path(response: requests.Response) -> str:
    return response.url.split("/jobs/ingest", 1)[1].split("?", 1)[0].rstrip("/") if "/jobs/ingest" in response.url else ""


def _is_create(r: requests.Response) -> bool:
    return r.request.method == "POST" and "/jobs/ingest" in r.url and _ingest_path(r) == ""


def _is_upload(r: requests.Response) -> bool:
    return r.request.method == "PUT" and _ingest_path(r).endswith("/batches")


def _is_poll(r: requests.Response) -> bool:
    path = _ingest_path(r)
    return r.request.method == "GET" and path.count("/") == 1 and path != ""


# the response after which the session expires: the next call meets INVALID_SESSION_ID
POINTS: Dict[str, Callable[[requests.Response], bool]] = {
    "during upload": _is_create,   # expires after create: the upload PUT is refused, refreshed, resent
    "before close": _is_upload,    # expires after the upload: the PATCH UploadComplete is refused first
    "during polling": _is_poll,    # expires after the first poll: the next poll is refused first
}


def _expire_after(org: Any, sf: SalesforceJWT, matches: Callable[[requests.Response], bool]) -> List[str]:
    fired: List[str] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not fired and response.status_code < 300 and matches(response):
            fired.append(response.request.method + " " + response.url)
            org.expire_all_sessions()

    sf.session.hooks["response"].append(hook)
    return fired


def _hold_polls(org: Any, polls: int) -> None:
    """Keep new ingest jobs InProgress for ``polls`` status polls."""
    org.bulk.hold_polls = polls


def _polls(org: Any) -> int:
    """Status polls of ingest jobs the org answered."""
    return sum(1 for r in org.requests if r.method == "GET" and r.status == 200
               and r.path.rstrip("/").split("/jobs/ingest/")[-1].count("/") == 0 and "/jobs/ingest/" in r.path)


def _insert_and_check(org: Any, sf: SalesforceJWT) -> None:
    records = [{"Name": f"Expiring {i:04d}", "NumberOfEmployees": str(i)} for i in range(ROWS)]
    [result] = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == ROWS and result["numberRecordsFailed"] == 0
    names = [r["Name"] for r in sf.query_all("SELECT Name FROM Account WHERE Name LIKE 'Expiring %'")["records"]]
    assert sorted(names) == [f"Expiring {i:04d}" for i in range(ROWS)]   # every row exactly once
    jobs = sf.session.get(sf.base_url + "jobs/ingest").json()["records"]
    assert len(jobs) == 1, "a refresh must not create a second job"


@pytest.mark.parametrize("point", sorted(POINTS))
def test_one_expiry_in_the_middle_of_an_ingest_job(salesforce_org: Any, sf: SalesforceJWT, point: str) -> None:
    _hold_polls(salesforce_org, 2)
    fired = _expire_after(salesforce_org, sf, POINTS[point])
    before = salesforce_org.token_requests
    _insert_and_check(salesforce_org, sf)
    assert len(fired) == 1
    assert _polls(salesforce_org) >= 3, "the job was still InProgress while it was polled"
    assert salesforce_org.token_requests - before == 1
    assert sf.refresher.refresh_count == 1


def test_expiry_before_create(salesforce_org: Any, sf: SalesforceJWT) -> None:
    before = salesforce_org.token_requests
    salesforce_org.expire_all_sessions()
    _insert_and_check(salesforce_org, sf)
    assert salesforce_org.token_requests - before == 1
    assert sf.refresher.refresh_count == 1


def test_four_expiries_in_one_job_cost_four_token_requests(salesforce_org: Any, sf: SalesforceJWT) -> None:
    _hold_polls(salesforce_org, 2)
    fired = [_expire_after(salesforce_org, sf, matches) for matches in POINTS.values()]
    before = salesforce_org.token_requests
    salesforce_org.expire_all_sessions()  # before create
    _insert_and_check(salesforce_org, sf)
    assert all(len(f) == 1 for f in fired)
    assert salesforce_org.token_requests - before == 4
    assert sf.refresher.refresh_count == 4


def test_parallel_jobs_share_one_refresh(salesforce_org: Any, sf: SalesforceJWT) -> None:
    """simple-salesforce runs several ingest jobs on threads (``concurrency=``); one expiry
    while they are in flight costs one token request for all of them."""
    _hold_polls(salesforce_org, 1)
    fired = _expire_after(salesforce_org, sf, _is_create)
    before = salesforce_org.token_requests
    records = [{"Name": f"Parallel {i:04d}"} for i in range(300)]
    results = sf.bulk2.Account.insert(records=records, batch_size=100, concurrency=3, wait=0)
    assert len(fired) == 1
    assert sorted(r["numberRecordsProcessed"] for r in results) == [100, 100, 100]
    names = [r["Name"] for r in sf.query_all("SELECT Name FROM Account WHERE Name LIKE 'Parallel %'")["records"]]
    assert sorted(names) == [f"Parallel {i:04d}" for i in range(300)]
    assert len(sf.session.get(sf.base_url + "jobs/ingest").json()["records"]) == 3
    assert salesforce_org.token_requests - before == 1
