"""connect_jwt() across os.fork(): what the login cache owns.

A child forked while a thread of the parent is inside a first login must not wait for that
login (its thread does not exist in the child), and a login the child takes over from the
cache must not write on the parent's pooled TLS connection. Every child runs under a hard
deadline: a deadlock fails the test instead of hanging it. (The refresher's lock and the
refreshing session's pools across a fork are tested with session.py.)
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, List

import pytest
from _support import exit_code, fork

from sfjwt_ext import connect_jwt

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SOQL = "SELECT Id FROM Account"
CHILD_DEADLINE = 30.0


def test_a_child_forked_during_a_first_login_logs_in_itself(salesforce_org: Any) -> None:
    org = salesforce_org
    kwargs = org.credentials.connect_kwargs()
    org.inject_fault("token", delay=5.0)  # the parent's first login is held at the org
    outcome: List[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(connect_jwt(**kwargs)))
    thread.start()
    deadline = time.monotonic() + 10
    while org.token_requests == 0:
        assert time.monotonic() < deadline, "the first login never reached the org"
        time.sleep(0.01)

    def child() -> None:
        sf = connect_jwt(**kwargs)
        assert sf.query(SOQL)["done"]

    pid = fork(child)
    assert exit_code(pid, CHILD_DEADLINE) == 0
    assert org.token_requests == 2  # the child's own login; the parent's is still held
    thread.join(20)
    assert outcome and outcome[0].query(SOQL)["done"]
    assert org.token_requests == 2  # the parent's threads got their own login, once


def test_a_cached_login_in_a_child_opens_its_own_token_connection(salesforce_org: Any) -> None:
    org = salesforce_org
    kwargs = org.credentials.connect_kwargs()
    sf = connect_jwt(**kwargs)  # its token client keeps the login's connection in its pool
    client = sf.refresher.token_client
    client.backoff = 0.0

    def child() -> None:
        again = connect_jwt(**kwargs)
        assert again.refresher is sf.refresher  # the cached login, no token request
        again.refresher.refresh(again.session_id)  # a token request from the child

    pid = fork(child)
    assert exit_code(pid, CHILD_DEADLINE) == 0
    assert org.token_requests == 2
    # Had the child written on the parent's pooled TLS connection, the parent's next
    # request on it would break (bad record MAC, a reset) and be retried.
    attempts = client.requests_made
    sf.refresher.refresh(sf.session_id)
    assert client.requests_made == attempts + 1
    assert org.token_requests == 3
    assert sf.query(SOQL)["done"]
