"""A Bulk API 1.0 ingest job through ``connect_jwt()`` whose session expires in the middle.

Bulk 1.0 reports an expired session as HTTP 400 ``InvalidSessionId`` on ``/services/async/``;
the client's RefreshingSession logs in again and resends. The session expires before the
job is created, between two batch uploads, while the batches are polled, and before the job
is closed: every row lands in the store exactly once and each expiry costs one token request.
Expiry is triggered by a response hook on the client's session (right after the response
that precedes the moment), so nothing waits on time.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List

import pytest
import requests

from sfjwt_ext import connect_jwt
from sfjwt_ext.client import SalesforceJWT

ROWS = 25
BATCH = 10          # 3 batches: 10, 10, 5


@pytest.fixture
def sf(salesforce_org: Any) -> SalesforceJWT:
    client = connect_jwt(**salesforce_org.credentials.connect_kwargs(), cache=False)
    client.refresher.token_client.backoff = 0.0
    client.query("SELECT Id FROM Account LIMIT 1")   # the session is in use before it expires
    return client


def _is(method: str, tail: str) -> Callable[[requests.Response], bool]:
    return lambda r: r.request.method == method and r.url.rstrip("/").endswith(tail)


def _expire_on(org: Any, sf: SalesforceJWT, matches: Callable[[requests.Response], bool], nth: int = 1) -> List[str]:
    """Expire every session right after the ``nth`` successful response that ``matches``."""
    seen: List[str] = []
    fired: List[str] = []
    lock = threading.Lock()

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code >= 300 or not matches(response):
            return
        with lock:
            seen.append(response.url)
            if len(seen) == nth:
                fired.append(response.request.method + " " + response.url)
                org.expire_all_sessions()

    sf.session.hooks["response"].append(hook)
    return fired


def _rows(tag: str) -> List[Dict[str, Any]]:
    return [{"Name": f"{tag} {i:03d}"} for i in range(ROWS)]


def _landed(org: Any, tag: str) -> List[str]:
    names = [r["Name"] for r in org.store.query(f"SELECT Name FROM Account WHERE Name LIKE '{tag}%'").records]
    return sorted(names)


SCENARIOS: Dict[str, Callable[[Any, SalesforceJWT], List[str]]] = {
    # before create: the job POST itself meets the expired session
    "before create": lambda org, sf: (org.expire_all_sessions(), ["now"])[1],
    # during upload: right after the first batch is accepted, the second upload is refused once
    "between batches": lambda org, sf: _expire_on(org, sf, _is("POST", "/batch")),
    # during polling: after the last upload, every worker's first poll is refused
    "while polling": lambda org, sf: _expire_on(org, sf, _is("POST", "/batch"), nth=3),
    # before close: after the last batch's results were read, the close POST is refused
    "before close": lambda org, sf: _expire_on(org, sf, _is("GET", "/result"), nth=3),
}


@pytest.mark.parametrize("moment", list(SCENARIOS))
def test_json_insert_job_survives_one_expiry(salesforce_org: Any, sf: SalesforceJWT, moment: str) -> None:
    org = salesforce_org
    before = org.token_requests
    fired = SCENARIOS[moment](org, sf)
    results = sf.bulk.Account.insert(_rows("Expiry"), batch_size=BATCH)
    assert fired, f"the expiry for {moment!r} never fired"
    assert len(results) == ROWS and all(r["success"] for r in results)
    assert len({r["id"] for r in results}) == ROWS
    assert _landed(org, "Expiry") == [f"Expiry {i:03d}" for i in range(ROWS)]     # every row exactly once
    assert org.token_requests - before == 1
    assert sf.refresher.refresh_count == 1
    job = max(org.bulk.bulk1_jobs.values(), key=lambda j: j.created)
    assert job.state == "Closed" and len(job.batches) == 3


def test_one_job_meeting_all_four_expiries_costs_four_token_requests(salesforce_org: Any,
                                                                     sf: SalesforceJWT) -> None:
    org = salesforce_org
    before = org.token_requests
    org.expire_all_sessions()
    fired = [_expire_on(org, sf, _is("POST", "/batch")), _expire_on(org, sf, _is("POST", "/batch"), nth=3),
             _expire_on(org, sf, _is("GET", "/result"), nth=3)]
    results = sf.bulk.Account.upsert(_rows("Four"), "Id", batch_size=BATCH)
    assert all(len(f) == 1 for f in fired)
    assert [r["created"] for r in results] == [True] * ROWS
    assert _landed(org, "Four") == [f"Four {i:03d}" for i in range(ROWS)]
    assert org.token_requests - before == 4
    assert sf.refresher.refresh_count == 4


def test_csv_job_expiring_while_a_held_batch_is_polled(salesforce_org: Any, sf: SalesforceJWT) -> None:
    """A CSV job driven on ``sf.session`` (what a script using the raw Bulk 1.0 API does), its
    batch held InProgress for two polls; the session expires after the first poll."""
    org = salesforce_org
    org.bulk.hold_polls = 2
    base = f"{sf.bulk_url}job"
    headers = {"X-SFDC-Session": sf.session_id, "Content-Type": "application/xml; charset=UTF-8"}
    ns = "{http://www.force.com/2009/06/asyncapi/dataload}"
    from xml.etree import ElementTree as ET

    job = sf.session.post(base, headers=headers, data=(
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation>'
        "<object>Account</object><contentType>CSV</contentType></jobInfo>"))
    job_id = ET.fromstring(job.content).findtext(f"{ns}id")
    csv_body = "Name\n" + "".join(f"Held {i:03d}\n" for i in range(ROWS))
    batch = sf.session.post(f"{base}/{job_id}/batch", headers=dict(headers, **{"Content-Type": "text/csv"}),
                            data=csv_body)
    batch_id = ET.fromstring(batch.content).findtext(f"{ns}id")
    before = org.token_requests
    fired = _expire_on(org, sf, _is("GET", f"/batch/{batch_id}"))
    states = []
    for _ in range(10):
        states.append(ET.fromstring(sf.session.get(f"{base}/{job_id}/batch/{batch_id}", headers=headers).content)
                      .findtext(f"{ns}state"))
        if states[-1] == "Completed":
            break
    assert fired and states == ["InProgress", "InProgress", "Completed"]
    results = sf.session.get(f"{base}/{job_id}/batch/{batch_id}/result", headers=headers)
    assert results.headers["Content-Type"] == "text/csv"
    assert results.text.count('"true","true"') == ROWS
    assert _landed(org, "Held") == [f"Held {i:03d}" for i in range(ROWS)]
    assert org.token_requests - before == 1
