"""API calls never hang forever and survive a blip (issue 9, item 16).

Before: no timeout at all on an API call made without ``timeout=``; a 503 or a dropped
connection on a GET was the caller's problem. After: a default (connect, read) timeout;
GET/HEAD tried up to 3 times on a connection error or 502/503/504; a POST that may have
reached Salesforce is never resent; REQUEST_LIMIT_EXCEEDED is not retried; ``retries=0``
or the caller's own adapter turns it off. Requests are counted at the org."""
from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, List

import pytest
import requests
import requests.adapters
from simple_salesforce.exceptions import SalesforceError

from sfjwt_ext.client import SalesforceJWT, connect_jwt
from sfjwt_ext._internal.backoff import backoff_delays
from sfjwt_ext.auth.transport import (
    DEFAULT_API_TIMEOUT, MAX_RETRY_AFTER, RETRY_FIRST_DELAY, RETRY_JITTER, RefreshingSession,
)

SOQL = "SELECT Id FROM Account"


def _api_statuses(org: Any, since: int) -> List[int]:
    return [r.status for r in org.requests[since:] if r.host == "instance"]


def test_api_calls_have_a_default_timeout_a_long_query_fits_in(org: Any, sf: SalesforceJWT) -> None:
    assert sf.session.timeout == DEFAULT_API_TIMEOUT
    connect, read = DEFAULT_API_TIMEOUT
    assert 0 < connect <= 30 and read > 120  # Salesforce answers or times out a query in ~120 s
    own = connect_jwt(**org.credentials.connect_kwargs(), cache=False, timeout=7)
    assert own.session.timeout == 7


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_get_is_retried_on_a_gateway_error(org: Any, sf: SalesforceJWT, status: int) -> None:
    org.inject_fault("api", count=2, status=status, body=b"<html>busy</html>")
    since = len(org.requests)
    assert sf.query(SOQL)["totalSize"] == 3
    assert _api_statuses(org, since) == [status, status, 200]


def test_a_get_gives_up_after_3_attempts(org: Any, sf: SalesforceJWT) -> None:
    org.inject_fault("api", count=5, status=503, body=b"<html>down</html>")
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.query(SOQL)
    assert _api_statuses(org, since) == [503, 503, 503]
    org.clear_faults()


def test_a_dropped_get_is_retried(org: Any, sf: SalesforceJWT) -> None:
    org.inject_fault("api", count=1, drop=True)
    since, tokens = len(org.requests), org.token_requests
    assert sf.query(SOQL)["totalSize"] == 3
    assert _api_statuses(org, since) == [0, 200]
    assert org.token_requests == tokens


def test_a_dropped_post_is_never_resent(org: Any, sf: SalesforceJWT) -> None:
    org.inject_fault("api", count=1, drop=True)
    since = len(org.requests)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Account.create({"Name": "Once"})
    assert _api_statuses(org, since) == [0]
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Once'")["totalSize"] == 0


def test_a_post_answered_503_is_not_resent(org: Any, sf: SalesforceJWT) -> None:
    org.inject_fault("api", count=1, status=503, body=b"busy")
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.Account.create({"Name": "Once"})
    assert _api_statuses(org, since) == [503]


def test_request_limit_exceeded_is_not_retried(org: Any, sf: SalesforceJWT) -> None:
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    org.inject_fault("api", count=3, status=503, body=body)
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.query(SOQL)
    assert _api_statuses(org, since) == [503]
    org.clear_faults()


def test_retries_0_turns_retrying_off(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, retries=0)
    sf.query(SOQL)
    org.inject_fault("api", count=1, status=503, body=b"busy")
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.query(SOQL)
    assert _api_statuses(org, since) == [503]


def test_the_callers_own_adapter_decides_retries(org: Any) -> None:
    mine = requests.Session()
    mine.mount("https://", requests.adapters.HTTPAdapter(max_retries=0, pool_maxsize=4))
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, session=mine)
    sf.query(SOQL)
    org.inject_fault("api", count=1, status=503, body=b"busy")
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.query(SOQL)
    assert _api_statuses(org, since) == [503]


def test_a_callers_session_with_default_adapters_gets_retries(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, session=requests.Session())
    sf.query(SOQL)
    org.inject_fault("api", count=1, status=503, body=b"busy")
    since = len(org.requests)
    assert sf.query(SOQL)["totalSize"] == 3
    assert _api_statuses(org, since) == [503, 200]


def test_a_read_timeout_is_not_retried(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False, timeout=0.3)
    sf.query(SOQL)
    org.inject_fault("api", count=1, delay=1.5)
    api_before = org.api_requests
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query(SOQL)
    org.clear_faults()
    assert sf.query(SOQL, timeout=10)["totalSize"] == 3
    assert org.api_requests - api_before <= 2  # the timed-out one (if served) and the last


def test_backoff_delays_grow_and_end() -> None:
    delays = list(itertools.islice(backoff_delays(1.0, jitter=0.0), 3))
    assert delays == [1.0, 2.0, 4.0]
    assert list(itertools.islice(backoff_delays(0.5, jitter=0.2, multiplier=1.0), 0)) == []
    assert all(0.4 <= d <= 0.5 for d in itertools.islice(backoff_delays(0.5, jitter=0.2, multiplier=1.0), 50))


def test_session_retries_take_retries_delays_from_the_one_backoff(sf: SalesforceJWT) -> None:
    session = RefreshingSession(sf.refresher, retries=3)
    request = requests.Request("GET", sf.base_url).prepare()
    delays = list(session._retry_delays(request))
    assert len(delays) == 3
    assert all(RETRY_FIRST_DELAY * 2 ** n * (1 - RETRY_JITTER) <= d <= RETRY_FIRST_DELAY * 2 ** n
               for n, d in enumerate(delays))
    assert list(RefreshingSession(sf.refresher, retries=0)._retry_delays(request)) == []


def test_refreshing_session_default_timeout_without_connect(org: Any, sf: SalesforceJWT) -> None:
    session = RefreshingSession(sf.refresher, verify=sf.session.verify, proxies=None, timeout=None)
    assert session.timeout == DEFAULT_API_TIMEOUT
    assert session.retries == 2


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, 11])
def test_retries_must_be_a_small_whole_number(org: Any, sf: SalesforceJWT, bad: Any) -> None:
    from sfjwt_ext.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="retries="):
        RefreshingSession(sf.refresher, verify=sf.session.verify, retries=bad)


def _retry_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


@pytest.mark.parametrize("retry_after, chosen", [
    ("1", "retrying in 1.0 s"),
    (format_datetime(datetime.now(timezone.utc) - timedelta(minutes=5), usegmt=True), "retrying in 0.0 s"),
], ids=["seconds", "http-date"])
def test_a_gateway_errors_retry_after_is_the_delay(org: Any, sf: SalesforceJWT, caplog: pytest.LogCaptureFixture,
                                                   retry_after: str, chosen: str) -> None:
    """Seconds or an HTTP date (one in the past: at once) replace the backoff's 0.4-0.5 s."""
    caplog.set_level(logging.INFO, logger="sfjwt_ext")
    org.inject_fault("api", count=1, status=503, body=b"busy", headers={"Retry-After": retry_after})
    since = len(org.requests)
    assert sf.query(SOQL)["totalSize"] == 3
    assert _api_statuses(org, since) == [503, 200]
    assert [line.rsplit(": ", 1)[-1] for line in _retry_lines(caplog)] == [f"HTTP 503; {chosen}"]


def test_a_retry_after_over_the_cap_is_not_waited_for(org: Any, sf: SalesforceJWT,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sfjwt_ext")
    org.inject_fault("api", count=1, status=503, body=b"busy", headers={"Retry-After": str(24 * 3600)})
    since = len(org.requests)
    with pytest.raises(SalesforceError):
        sf.query(SOQL)
    assert _api_statuses(org, since) == [503]
    assert not _retry_lines(caplog)
    assert any(f"Retry-After 86400 s (over {MAX_RETRY_AFTER:.0f} s): not retrying" in r.getMessage()
               for r in caplog.records)
