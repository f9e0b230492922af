"""A session Salesforce keeps refusing is not a login storm (issue 9, item 4), and each
API's expiry signal counts only on that API's URLs (item 12).

Before: with ``org.reject_sessions`` (every API call answers INVALID_SESSION_ID "This
session is not valid for use with the REST API") 50 calls made 50 token requests, 32
threads about 80 per second. After: at most 2, then SessionRefusedError."""
from __future__ import annotations

import threading
from typing import Any, List

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from sfjwt_ext import SessionRefusedError
from sfjwt_ext.client import SalesforceJWT, connect_jwt

SOQL = "SELECT Id FROM Account"
REFUSAL = "This session is not valid for use with the REST API"


def _assert_explains(error: BaseException) -> None:
    text = str(error)
    assert isinstance(error, SalesforceExpiredSession)  # what callers already catch
    assert REFUSAL in text                               # Salesforce's own words
    assert "valid" in text and "refused" in text
    for fix in ("API Enabled", "OAuth Scopes", "(api)", "Lock sessions to the IP"):
        assert fix in text, fix


def test_50_sequential_calls_on_a_refused_session_make_at_most_2_token_requests(org: Any, sf: SalesforceJWT) -> None:
    org.reject_sessions = True
    before = org.token_requests
    errors: List[BaseException] = []
    for _ in range(50):
        with pytest.raises(SalesforceExpiredSession) as info:
            sf.query(SOQL)
        errors.append(info.value)
    assert org.token_requests - before <= 2
    assert all(isinstance(e, SessionRefusedError) for e in errors)
    _assert_explains(errors[-1])
    assert sf.session_id not in str(errors[-1])

    # a real expiry later still refreshes
    org.reject_sessions = False
    assert sf.query(SOQL)["totalSize"] == 3
    org.expire_all_sessions()
    before = org.token_requests
    assert sf.query(SOQL)["totalSize"] == 3
    assert org.token_requests - before == 1


def test_50_calls_from_32_threads_on_a_refused_session_make_at_most_2_token_requests(org: Any, sf: SalesforceJWT) -> None:
    org.reject_sessions = True
    before = org.token_requests
    lock = threading.Lock()
    outcomes: List[Any] = []
    remaining = [50]

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                outcomes.append(sf.query(SOQL))
            except BaseException as exc:  # collected and checked below
                outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert len(outcomes) == 50
    assert all(isinstance(o, SalesforceExpiredSession) for o in outcomes), outcomes[:3]
    assert org.token_requests - before <= 2
    _assert_explains(next(o for o in outcomes if isinstance(o, SessionRefusedError)))

    org.reject_sessions = False
    org.expire_all_sessions()
    assert sf.query(SOQL)["totalSize"] == 3


def test_a_refused_first_token_gives_up_at_once(org: Any) -> None:
    """Refused from the first call on (API access off for the profile): one login more, not 50."""
    org.reject_sessions = True
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    before = org.token_requests
    for _ in range(10):
        with pytest.raises(SessionRefusedError):
            sf.query(SOQL)
    assert org.token_requests - before <= 2


def test_bulk1_refusal_is_explained_too(org: Any, sf: SalesforceJWT) -> None:
    org.reject_sessions = True
    before = org.token_requests
    for _ in range(5):
        with pytest.raises(SalesforceExpiredSession):
            sf.bulk.Account.query(SOQL, wait=0.05)
    assert org.token_requests - before <= 2


# ---------------------------------------------------------------------------------------
# item 12: the expiry signal is matched per API
# ---------------------------------------------------------------------------------------
BODIES = {
    "bulk1 xml": (400, "<error><exceptionCode>InvalidSessionId</exceptionCode>"
                       "<exceptionMessage>not really</exceptionMessage></error>"),
    "bulk1 json": (400, {"exceptionCode": "InvalidSessionId", "exceptionMessage": "not really"}),
    "soap fault": (500, '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
                        "<soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>no</faultstring>"
                        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_an_apex_rest_error_that_merely_contains_the_words_is_not_an_expiry(org: Any, sf: SalesforceJWT, name: str) -> None:
    status, body = BODIES[name]
    org.register_apex_route("GET", "/words", lambda request: (status, body))
    before, since = org.token_requests, len(org.requests)
    response = sf.session.get(sf.apex_url + "words")
    assert response.status_code == status
    assert org.token_requests == before                                   # no spurious login
    assert [r.status for r in org.requests[since:] if r.host == "instance"] == [status]  # no resend
