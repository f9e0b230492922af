"""Fork safety of the session (issue 9, item 2, session side).

Before: a child forked while a parent thread was inside a refresh blocked on the
Refresher's inherited lock, and parent and child shared the pooled TLS connections of
``sf.session`` (DECRYPTION_FAILED_OR_BAD_RECORD_MAC, RemoteDisconnected in both). After:
the child gets its own lock, forgets the parent's in-flight refresh, drops the inherited
pools without writing on them, and its first call works; the parent keeps working.
Every child runs under a hard deadline: a deadlock fails the test instead of hanging it."""
from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Callable, Tuple

import pytest
from _support import exit_code, fork

from sfjwt_ext.client import SalesforceJWT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SOQL = "SELECT Id FROM Account"
DEADLINE = 20.0


def _fork(child: Callable[[], None]) -> Tuple[int, int]:
    """Run ``child`` in a forked process; returns (pid, read end of its error pipe)."""
    r, w = os.pipe()
    pid = fork(child, errors_to=w)
    os.close(w)
    return pid, r


def _wait(pid: int, errors: int) -> str:
    """Wait for the child with a hard deadline (kill it and fail after DEADLINE s)."""
    with os.fdopen(errors, "rb") as pipe:
        code = exit_code(pid, DEADLINE)
        text = pipe.read().decode("utf-8", "replace")
    assert code == 0, text
    return text


def test_fork_while_a_thread_is_inside_a_refresh(org: Any, sf: SalesforceJWT) -> None:
    org.expire_all_sessions()
    org.inject_fault("token", count=1, delay=4.0)  # the parent's refresh sits in the token POST
    results: list = []
    parent = threading.Thread(target=lambda: results.append(sf.query(SOQL)["totalSize"]))
    parent.start()
    deadline = time.monotonic() + 10
    while org.token_requests < 2 and time.monotonic() < deadline:  # login + the refresh's POST
        time.sleep(0.01)
    assert org.token_requests >= 2, "the parent's refresh never reached the token endpoint"
    assert sf.refresher._lock.get().locked()  # a parent thread is inside the refresh

    def child() -> None:
        assert sf.query(SOQL)["totalSize"] == 3
        assert sf.refresher.refresh_count == 1  # its own refresh, not the parent's in flight

    pid, errors = _fork(child)
    _wait(pid, errors)
    parent.join(30)
    assert results == [3]
    assert sf.query(SOQL)["totalSize"] == 3


def test_parent_and_child_alternate_calls_on_one_client(org: Any, sf: SalesforceJWT) -> None:
    """Both keep pooled connections open and take turns: the child must not write on the
    parent's TLS connection (before: DECRYPTION_FAILED / RemoteDisconnected)."""
    rounds = 8
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()

    def child() -> None:
        os.close(to_child_w)
        os.close(to_parent_r)
        for _ in range(rounds):
            assert os.read(to_child_r, 1) == b"g"
            assert sf.query(SOQL)["totalSize"] == 3
            os.write(to_parent_w, b"g")

    pid, errors = _fork(child)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        for _ in range(rounds):
            assert sf.query(SOQL)["totalSize"] == 3
            os.write(to_child_w, b"g")
            ready, _, _ = select.select([to_parent_r], [], [], DEADLINE)
            if not ready or os.read(to_parent_r, 1) != b"g":  # the child failed or hangs
                break
        assert sf.query(SOQL)["totalSize"] == 3
    finally:
        os.close(to_child_w)
        _wait(pid, errors)
        os.close(to_parent_r)
