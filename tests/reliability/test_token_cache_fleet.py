"""Many processes, one login: connect_jwt(token_cache=...) across processes.

* 16 spawn processes started together, each connect_jwt(token_cache=dir) and a query:
  exactly 1 token request; then 3 expiries while all 16 keep querying: exactly 3 more.
* 16 spawn workers given a pickled client whose token cache is on: 0 token requests until
  the expiry, then exactly 1 for all of them.
* A cron-like loop of fresh interpreters (subprocess), each connect + query: 1 token request
  (20 here to keep the suite quick on a loaded machine; the benchmark runs 50).

Every process is waited for with a deadline and killed if it overstays, so a deadlock fails.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from _support import collect, join_all, kill_leftovers

from sfjwt_ext import connect_jwt

DEADLINE = 240.0  # seconds for any one process or message; only a hang gets near it
WORKERS = 16
EXPIRIES = 3
QUERIES_PER_ROUND = 3
CRON_RUNS = 20
SOQL = "SELECT Id FROM Account"

spawn = multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------------------
# workers (module level: spawn imports them)
# ---------------------------------------------------------------------------------------
def _connecting_worker(kwargs: Dict[str, Any], start: Any, rounds: List[Any], out: Any) -> None:
    start.wait(DEADLINE)
    sf = connect_jwt(**kwargs)
    out.put(("connected", 0, sf.query(SOQL)["totalSize"]))
    for number, go in enumerate(rounds, 1):
        go.wait(DEADLINE)
        totals = [sf.query(SOQL)["totalSize"] for _ in range(QUERIES_PER_ROUND)]
        out.put(("round", number, totals))


def _unpickling_worker(blob: bytes, go: Any, out: Any) -> None:
    sf = pickle.loads(blob)
    out.put(("ready", 0, sf.query(SOQL)["totalSize"]))
    go.wait(DEADLINE)
    out.put(("round", 1, sf.query(SOQL)["totalSize"]))


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------
def test_sixteen_processes_one_login_then_one_per_expiry(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    org.insert("Account", [{"Name": "Acme"}])
    kwargs = dict(org.credentials.connect_kwargs(), token_cache=str(tmp_path / "cache"))
    start, out = spawn.Event(), spawn.Queue()
    rounds = [spawn.Event() for _ in range(EXPIRIES)]
    processes = [spawn.Process(target=_connecting_worker, args=(kwargs, start, rounds, out)) for _ in range(WORKERS)]
    try:
        for process in processes:
            process.start()
        start.set()  # all connect at once
        assert collect(out, WORKERS, DEADLINE) == [("connected", 0, 1)] * WORKERS
        assert org.token_requests == 1  # 16 processes, one login
        for number, go in enumerate(rounds, 1):
            org.expire_all_sessions()
            go.set()
            assert collect(out, WORKERS, DEADLINE) == [("round", number, [1] * QUERIES_PER_ROUND)] * WORKERS
            assert org.token_requests == 1 + number  # one login per expiry, for all 16
        join_all(processes, DEADLINE)
    finally:
        kill_leftovers(processes)
    assert len(list((tmp_path / "cache").glob("*.token"))) == 1


def test_pickled_clients_with_the_token_cache_make_one_login_per_expiry(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    sf = connect_jwt(**org.credentials.connect_kwargs(), token_cache=str(tmp_path / "cache"))
    blob = pickle.dumps(sf)
    go, out = spawn.Event(), spawn.Queue()
    processes = [spawn.Process(target=_unpickling_worker, args=(blob, go, out)) for _ in range(WORKERS)]
    try:
        for process in processes:
            process.start()
        assert collect(out, WORKERS, DEADLINE) == [("ready", 0, 0)] * WORKERS
        assert org.token_requests == 1  # the pickled token: no request
        org.expire_all_sessions()
        go.set()
        assert collect(out, WORKERS, DEADLINE) == [("round", 1, 0)] * WORKERS
        assert org.token_requests == 2  # the workers' refreshes went through the cache: one for all
        join_all(processes, DEADLINE)
    finally:
        kill_leftovers(processes)


CRON_SCRIPT = """
from sfjwt_ext import connect_jwt
sf = connect_jwt()
print(sf.query("SELECT Id FROM Account")["totalSize"])
"""


def test_a_cron_loop_of_fresh_interpreters_logs_in_once(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    env = dict(os.environ, **org.credentials.env(), SF_TOKEN_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    for run in range(CRON_RUNS):
        done = subprocess.run(
            [sys.executable, "-c", CRON_SCRIPT], env=env, capture_output=True, text=True, timeout=DEADLINE
        )
        assert done.returncode == 0, f"run {run}: {done.stderr[-2000:]}"
        assert done.stdout.strip() == "0"
        assert "WARNING" not in done.stderr
    assert org.token_requests == 1
