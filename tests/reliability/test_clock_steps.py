"""The token cache after the system clock steps (issue 18 item 8): 1 token request per
expiry for 8 processes, whatever the clock did.

Each process runs on its own ``time.time()``: the real clock plus an offset the test sets
(a shared value), as if the machine's clock were wrong and then stepped by NTP. The local
org keeps the real clock (Salesforce's), so only what the client compares is stepped:

1. the clock is an hour ahead: 8 processes connect together (1 token request);
2. it steps back to the real time, the sessions expire, all 8 query: 1 token request;
3. it steps forward by a day, the sessions expire again: 1 token request.

Every process and message has a hard deadline; a hang fails the test.
"""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any, Dict, List

from _support import collect, join_all, kill_leftovers

DEADLINE = 240.0  # seconds for any one process or message; only a hang gets near it
WORKERS = 8
SOQL = "SELECT Id FROM Account"
AHEAD, REAL, NEXT_DAY = 3600.0, 0.0, 86400.0

spawn = multiprocessing.get_context("spawn")


def _worker(kwargs: Dict[str, Any], offset: Any, start: Any, rounds: List[Any], out: Any) -> None:
    real_time = time.time
    time.time = lambda: real_time() + offset.value  # this process's clock, stepped by the test
    from sfjwt_ext import connect_jwt

    start.wait(DEADLINE)
    sf = connect_jwt(**kwargs)
    out.put(("connected", 0, sf.query(SOQL)["totalSize"]))
    for number, go in enumerate(rounds, 1):
        go.wait(DEADLINE)
        out.put(("round", number, sf.query(SOQL)["totalSize"]))


def test_eight_processes_one_token_request_per_expiry_across_clock_steps(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    kwargs = dict(org.credentials.connect_kwargs(), token_cache=str(tmp_path / "cache"))
    offset = spawn.Value("d", AHEAD)
    start, out = spawn.Event(), spawn.Queue()
    rounds = [spawn.Event(), spawn.Event()]
    processes = [
        spawn.Process(target=_worker, args=(kwargs, offset, start, rounds, out)) for _ in range(WORKERS)
    ]
    try:
        for process in processes:
            process.start()
        start.set()
        assert collect(out, WORKERS, DEADLINE) == [("connected", 0, 0)] * WORKERS
        assert org.token_requests == 1
        for number, step in enumerate((REAL, NEXT_DAY), 1):
            offset.value = step
            org.expire_all_sessions()
            rounds[number - 1].set()
            assert collect(out, WORKERS, DEADLINE) == [("round", number, 0)] * WORKERS
            assert org.token_requests == 1 + number, f"after clock step {number}"
        join_all(processes, DEADLINE)
    finally:
        kill_leftovers(processes)
