"""Token cache figures B11, B12 and B13: many processes, one login (issue 11).

    python benchmarks/bench_token_cache.py            # 10 rounds, 50 interpreters, 16 workers
    python benchmarks/bench_token_cache.py --quick    # 1 round, 3 interpreters, 2 workers (smoke test)
    python benchmarks/bench_token_cache.py --json

B11 ``connect_jwt()`` in a fresh interpreter with a warm token cache (``SF_TOKEN_CACHE``
    holds a valid entry: no token request; the key is still loaded, to decrypt it) vs a
    cold login there (no cache: a token request on a new TLS connection). Each interpreter
    times only the ``connect_jwt()`` call (imports done before). Warm and cold alternate;
    medians compared. Target: ratio <= 1.0. On loopback a login costs a few ms; against
    Salesforce it is a round trip over the internet (100-500 ms), which the warm path skips.
B12 token requests of a cron-like loop: ``--runs`` (50) fresh interpreters in a row, each
    ``connect_jwt()`` + a query, with the token cache vs without it. Target: 1.
B13 token requests of ``--workers`` (16) spawn workers given one pickled client: 0 before
    the expiry either way; after one expiry, with the token cache on (their refreshes go
    through it) vs without. Target: 1.

The local org runs in a child process; everything talks to 127.0.0.1 only.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    REPO, Figure, OrgProcess, Report, base_parser, isolate, median, milliseconds, run_json_child, token_note,
)

SOQL = "SELECT Id FROM Account"
DEADLINE = 300.0

# Runs in each fresh interpreter: import first, then time connect_jwt() alone.
_TIMED_CONNECT = r"""
import json, time
from sfjwt_ext import connect_jwt
import sfjwt_ext.client  # everything imported before the clock starts
t0 = time.perf_counter()
sf = connect_jwt()
elapsed = time.perf_counter() - t0
total = sf.query("SELECT Id FROM Account")["totalSize"]
print(json.dumps({"seconds": elapsed, "total": total}))
"""


def _fresh(env: Dict[str, str]) -> Dict[str, Any]:
    return run_json_child(["-c", _TIMED_CONNECT], env, timeout=DEADLINE, what="a fresh interpreter")


def _env(org: OrgProcess, cache_folder: Optional[str]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env.update(org.env)
    env["SFJWT_CONFIG"] = os.devnull  # no profile
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if cache_folder is not None:
        env["SF_TOKEN_CACHE"] = cache_folder
    return env


def bench_b11(org: OrgProcess, folder: str, rounds: int) -> Figure:
    warm_env, cold_env = _env(org, folder), _env(org, None)
    _fresh(warm_env)  # fills the entry (one login), and warms the file cache
    _fresh(cold_env)
    before = org.token_requests()
    warm: List[float] = []
    cold: List[float] = []
    for r in range(rounds):
        order = (("warm", warm_env), ("cold", cold_env)) if r % 2 == 0 else (("cold", cold_env), ("warm", warm_env))
        for which, env in order:
            (warm if which == "warm" else cold).append(_fresh(env)["seconds"])
    made = org.token_requests() - before
    note = token_note(rounds, made)  # the cold ones
    return Figure(
        "B11", "connect_jwt in a fresh process, warm token cache vs cold login",
        ours=median(warm) * 1000, theirs=median(cold) * 1000, unit="ms", target=1.0,
        details={"rounds": rounds, "token_requests": made,
                 "warm_ms": milliseconds(warm, 1), "cold_ms": milliseconds(cold, 1)},
        note=note,
    )


def _cron(org: OrgProcess, env: Dict[str, str], runs: int) -> int:
    before = org.token_requests()
    for _ in range(runs):
        _fresh(env)
    return org.token_requests() - before


def bench_b12(org: OrgProcess, folder: str, runs: int) -> Figure:
    with_cache = _cron(org, _env(org, folder), runs)
    without = _cron(org, _env(org, None), runs)
    return Figure(
        "B12", f"token requests of {runs} fresh interpreters in a row (connect + query), token cache vs none",
        ours=with_cache, theirs=without, unit="requests", target=1, kind="count",
        details={"runs": runs},
        display=f"{with_cache} vs {without}",
    )


def _worker(blob: bytes, ready: Any, go: Any, out: Any) -> None:
    sf = pickle.loads(blob)
    ready.put(sf.query(SOQL)["totalSize"])
    go.wait(DEADLINE)
    out.put(sf.query(SOQL)["totalSize"])


def _workers(org: OrgProcess, workers: int, token_cache: Optional[str]) -> Tuple[int, int]:
    """(token requests before the expiry, after it) of ``workers`` spawn workers."""
    from sfjwt_ext import clear_cache, connect_jwt

    clear_cache()
    kwargs = org.connect_kwargs()
    sf = connect_jwt(**kwargs, token_cache=token_cache) if token_cache else connect_jwt(**kwargs)
    blob = pickle.dumps(sf)
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Queue(), context.Event(), context.Queue()
    processes = [context.Process(target=_worker, args=(blob, ready, go, out)) for _ in range(workers)]
    try:
        for process in processes:
            process.start()
        start = org.token_requests()
        for _ in processes:
            ready.get(timeout=DEADLINE)
        before_expiry = org.token_requests() - start
        org.expire_all_sessions()
        go.set()
        for _ in processes:
            out.get(timeout=DEADLINE)
        after_expiry = org.token_requests() - start - before_expiry
        for process in processes:
            process.join(DEADLINE)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    return before_expiry, after_expiry


def bench_b13(org: OrgProcess, folder: str, workers: int) -> Figure:
    cached_before, cached_after = _workers(org, workers, folder)
    plain_before, plain_after = _workers(org, workers, None)
    note = "" if cached_before == plain_before == 0 else "token requests before the expiry"
    return Figure(
        "B13", f"token requests of {workers} spawn workers with a pickled client, per expiry, token cache vs none",
        ours=cached_after, theirs=plain_after, unit="requests", target=1, kind="count",
        details={"workers": workers, "before_expiry_with_cache": cached_before,
                 "before_expiry_without": plain_before},
        display=f"{cached_after} vs {plain_after}", note=note,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="fresh interpreters for B12 (default 50)")
    parser.add_argument("--workers", type=int, default=None, help="spawn workers for B13 (default 16)")
    parser.add_argument("--only", choices=["B11", "B12", "B13"], action="append", help="run only these figures")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 10)
    runs = args.runs or (3 if args.quick else 50)
    workers = args.workers or (2 if args.quick else 16)
    only = set(args.only or ["B11", "B12", "B13"])
    isolate()
    report = Report("bench_token_cache", args)
    with OrgProcess(accounts=1) as org, tempfile.TemporaryDirectory(prefix="sfjwt-bench-cache-") as scratch:
        if "B11" in only:
            report.add(bench_b11(org, os.path.join(scratch, "b11"), rounds))
        if "B12" in only:
            report.add(bench_b12(org, os.path.join(scratch, "b12"), runs))
        if "B13" in only:
            report.add(bench_b13(org, os.path.join(scratch, "b13"), workers))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
