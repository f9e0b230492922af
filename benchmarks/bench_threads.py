"""B3: 64 threads querying at the moment the session expires.

    python benchmarks/bench_threads.py            # 64 threads, 3 rounds
    python benchmarks/bench_threads.py --quick    # 8 threads, 1 round (smoke test)

In each round every session of the local org (a child process) is expired, then 64 threads
waiting on one ``threading.Barrier`` each run ``sf.query(...)`` on one shared client:

A  ``connect_jwt()``: the refreshing session refreshes single-flight.
B  simple-salesforce's built-in JWT client ``Salesforce(username=..., consumer_key=...,
   privatekey_file=...)`` (its login redirected to the local org, see bench_login.py),
   which also logs in again on a 401 INVALID_SESSION_ID, without a lock.

Reported: the token requests the org saw during the burst on each side, the successful
queries on each side and the wall time of the burst. Target: ours exactly 1 token request
per expiry, and all threads succeed.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Figure, OrgProcess, Report, base_parser, isolate, median, trust_org_ca  # noqa: E402
from bench_login import our_login, simple_salesforce_login  # noqa: E402

SOQL = "SELECT Id, Name FROM Account LIMIT 5"


def burst(org: OrgProcess, sf: Any, threads: int) -> Dict[str, Any]:
    """Expire all sessions, release ``threads`` threads at once, each doing one query."""
    sf.query(SOQL)  # the session is in use before it expires
    org.expire_all_sessions()
    before = org.token_requests()
    barrier = threading.Barrier(threads + 1)
    lock = threading.Lock()
    successes: List[int] = []
    errors: List[str] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=60)
            result = sf.query(SOQL)
            with lock:
                successes.append(int(result["totalSize"]))
        except BaseException as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for t in pool:
        t.join(timeout=300)
    elapsed = time.perf_counter() - t0
    return {
        "token_requests": org.token_requests() - before,
        "successes": len(successes),
        "errors": errors[:3],
        "error_count": len(errors),
        "seconds": elapsed,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="threads per burst (default 64, quick 8)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    threads = args.threads or (8 if args.quick else 64)
    isolate()
    report = Report("bench_threads", args)
    with OrgProcess(accounts=5) as org:
        trust_org_ca(org)
        ours_sf = our_login(org, cache=False)
        theirs_sf = simple_salesforce_login(org)
        ours: List[Dict[str, Any]] = []
        theirs: List[Dict[str, Any]] = []
        for r in range(rounds):
            order = ((ours_sf, ours), (theirs_sf, theirs))
            for sf, results in (order if r % 2 == 0 else order[::-1]):
                results.append(burst(org, sf, threads))
    our_tokens = [o["token_requests"] for o in ours]
    their_tokens = [t["token_requests"] for t in theirs]
    our_ok = [o["successes"] for o in ours]
    their_ok = [t["successes"] for t in theirs]
    problems = []
    if any(n != 1 for n in our_tokens):
        problems.append(f"ours made {our_tokens} token requests")
    if any(n != threads for n in our_ok):
        problems.append(f"ours: only {our_ok} of {threads} queries succeeded ({ours[0]['errors']})")
    display = (
        f"token requests ours {max(our_tokens)} vs simple-salesforce {max(their_tokens)}; "
        f"succeeded ours {min(our_ok)}/{threads} vs simple-salesforce {min(their_ok)}/{threads}"
    )
    report.add(Figure(
        "B3", f"{threads} threads querying when the session expires",
        ours=float(max(our_tokens)), theirs=float(max(their_tokens)), unit="token requests",
        target=1, kind="count", display=display, target_display="ours == 1, all succeed", note="; ".join(problems),
        details={
            "rounds": rounds,
            "threads": threads,
            "ours_token_requests": our_tokens,
            "theirs_token_requests": their_tokens,
            "ours_successes": our_ok,
            "theirs_successes": their_ok,
            "theirs_errors": [t["errors"] for t in theirs],
            "ours_burst_ms_median": round(median([o["seconds"] for o in ours]) * 1000, 1),
            "theirs_burst_ms_median": round(median([t["seconds"] for t in theirs]) * 1000, 1),
        },
    ))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
