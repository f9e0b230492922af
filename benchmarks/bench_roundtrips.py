"""B15: round trips a caller waits for (issue 17), counted from the local org's request
timeline at a set ``api_latency``, against the floor; and the wall time of a small
``query_df`` at 0.3 s latency.

    python benchmarks/bench_roundtrips.py                                  # the issue's sizes
    python benchmarks/bench_roundtrips.py --before /path/to/main-checkout  # also "before"
    python benchmarks/bench_roundtrips.py --quick --json                   # smoke test

Sequential requests: the org records when it got each request and when it answered it
(``RequestRecord.started`` / ``ended``, its ``time.monotonic()``, the same clock as the
client's on one machine). Of the requests a call made, those answered before the call
returned are on the caller's path; "sequential" is the longest chain among them in which
each request starts after the previous one ended (requests side by side count once).
What is answered after the call returned (the Bulk job's DELETE) is reported apart.

The calls (the issue's table), each in a fresh client process:

  R1 query_df of 2,000 rows (one page), describe cached              floor 1
  R2 the same on a fresh client (describe not cached)                 floor 1
  R3 query_df of 10,000 rows by REST, bulk="auto" (5 pages)           floor 5
  R4 query_df(bulk=True), 400,000 rows, 8 pages of 50,000,
     parallel=4, at 1 s latency                                       floor 2 + polls + 2

``--before DIR`` runs the same calls with the client code of DIR (e.g. a ``git worktree``
of main) on PYTHONPATH, alternating with this checkout's (the org is always this
checkout's), and compares. Without it, R1's wall time is compared with its floor
(one round trip of latency).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import REPO, Figure, OrgProcess, Report, base_parser, isolate, median, run_json_child  # noqa: E402

FIELDS = "Id, Name, Amount, StageName, CloseDate"
POLL = re.compile(r"/jobs/query/[A-Za-z0-9]{15,18}/?$")  # GET: a Bulk 2.0 job's status

# Runs in a child with the client under test on PYTHONPATH: connect, warm up if asked,
# then time the calls; prints the [start, end] of each (time.monotonic()) as JSON.
_CLIENT = r"""
import json, sys, time
opts = json.loads(sys.argv[1])
import pandas, pyarrow, pyarrow.csv  # imported before any timing: a first call would import them
from sfjwt_ext import connect_jwt, dataframe
dataframe.BULK_PART_RECORDS = opts["part_records"]
kwargs = dict(opts["kwargs"], progress=False)

def connect():
    return connect_jwt(**opts["connect"], cache=False)

windows, rows = {"fresh": [], "cached": []}, []
for _ in range(opts["fresh"]):
    sf = connect()
    t0 = time.monotonic()
    rows.append(len(dataframe.query_df(sf, opts["soql"], **kwargs)))
    windows["fresh"].append([t0, time.monotonic()])
if opts["cached"]:
    sf = connect()
    dataframe.query_df(sf, opts["warm"], progress=False, bulk=False)  # describes cached
    for _ in range(opts["cached"]):
        t0 = time.monotonic()
        rows.append(len(dataframe.query_df(sf, opts["soql"], **kwargs)))
        windows["cached"].append([t0, time.monotonic()])
print(json.dumps({"windows": windows, "rows": rows, "source": dataframe.__file__}))
"""

Request = Tuple[str, str, str, int, float, float]


def sequential(requests: Sequence[Request]) -> int:
    """The longest chain of requests each starting after the previous one ended."""
    ordered = sorted(requests, key=lambda r: r[5])
    chain: List[int] = []
    for i, r in enumerate(ordered):
        before = [chain[j] for j in range(i) if ordered[j][5] <= r[4]]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def split(timeline: Sequence[Request], window: Sequence[float]) -> Tuple[List[Request], List[Request]]:
    """(requests answered while the call ran, requests answered after it returned)."""
    t0, t1 = window
    during = [r for r in timeline if r[4] >= t0 and r[5] <= t1]
    after = [r for r in timeline if r[4] >= t0 and r[5] > t1]
    return during, after


def run_calls(org: OrgProcess, code: str, latency: float, options: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Run one client child against ``org``; one dict per timed call: kind, wall, sequential,
    requests on the path, polls, the paths answered after the call returned."""
    org.set_latency(latency)
    org.command("reset")
    env = dict(os.environ)
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    opts = dict(options, connect=org.connect_kwargs())
    out = run_json_child(["-c", _CLIENT, json.dumps(opts)], env, timeout=1800, what="the client", cwd=code)
    if not os.path.abspath(out["source"]).startswith(os.path.abspath(code) + os.sep):
        raise RuntimeError(f"the client ran {out['source']}, not the code in {code}")
    timeline = [tuple(r) for r in org.timeline()]
    if any(not r[4] for r in timeline):
        raise RuntimeError("the org records no request times (RequestRecord.started): run with this checkout's org")
    calls = []
    for kind in ("fresh", "cached"):
        for window in out["windows"][kind]:
            during, after = split(timeline, window)  # type: ignore[arg-type]
            polls = [r for r in during if r[1] == "GET" and POLL.search(r[2])]
            calls.append({"kind": kind, "wall": window[1] - window[0], "sequential": sequential(during),
                          "requests": len(during), "polls": len(polls),
                          "after": [f"{r[1]} {r[2].split('/')[-1] if r[1] == 'DELETE' else r[2]}" for r in after]})
    if min(out["rows"], default=0) != options["expect_rows"]:
        raise RuntimeError(f"rows {out['rows']}, expected {options['expect_rows']}")
    return calls


def _scenarios(args: Any, small_rows: int, rest_rows: int, bulk_rows: int, page_rows: int) -> Dict[str, Dict[str, Any]]:
    small = f"SELECT {FIELDS} FROM Opportunity ORDER BY Id LIMIT {small_rows}"
    warm = f"SELECT {FIELDS} FROM Opportunity LIMIT 1"
    base = {"part_records": page_rows, "warm": warm, "fresh": 0, "cached": 0}
    return {
        "R1": dict(base, soql=small, kwargs={}, cached=args.rounds, expect_rows=small_rows),
        "R2": dict(base, soql=small, kwargs={}, fresh=args.rounds, expect_rows=small_rows),
        "R3": dict(base, soql=f"SELECT {FIELDS} FROM Opportunity", kwargs={"bulk": "auto"}, cached=1,
                   expect_rows=rest_rows),
        "R4": dict(base, soql=f"SELECT {FIELDS} FROM Opportunity", kwargs={"bulk": True, "parallel": 4},
                   cached=1, expect_rows=bulk_rows),
    }


LABELS = {
    "R1": "query_df of {small} rows, describe cached: sequential requests",
    "R2": "the same on a fresh client: sequential requests",
    "R3": "query_df of {rest} rows by REST, bulk='auto': sequential requests",
    "R4": "query_df(bulk=True) of {bulk} rows, {pages} pages, parallel=4, at {bulk_latency:g} s: sequential requests",
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="DIR", help="a checkout whose client to compare with (e.g. main)")
    parser.add_argument("--latency", type=float, default=0.3, help="api_latency of R1-R3 (default 0.3 s)")
    parser.add_argument("--bulk-latency", type=float, default=None, help="api_latency of R4 (default 1.0 s)")
    parser.add_argument("--bulk-rows", type=int, default=None, help="rows of R4 (default 400000)")
    parser.add_argument("--page-rows", type=int, default=None, help="rows per Bulk result page (default 50000)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    page_size = 500 if args.quick else 2000
    small_rows, rest_rows = page_size, 5 * page_size
    bulk_rows = args.bulk_rows or (2000 if args.quick else 400_000)
    page_rows = args.page_rows or (250 if args.quick else 50_000)
    bulk_latency = args.bulk_latency if args.bulk_latency is not None else (0.1 if args.quick else 1.0)
    isolate()
    report = Report("bench_roundtrips", args)
    sides = [("after", REPO)] + ([("before", os.path.abspath(args.before))] if args.before else [])
    scen = _scenarios(args, small_rows, rest_rows, bulk_rows, page_rows)
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {name: {} for name, _ in sides}
    with OrgProcess(opportunities=rest_rows, page_size=page_size, startup_timeout=600) as org:
        for r in range(args.rounds if args.before else 1):  # alternate the sides' order per round
            for name, code in (sides if r % 2 == 0 else sides[::-1]):
                for key in ("R1", "R2"):
                    one = dict(scen[key], cached=min(scen[key]["cached"], 1), fresh=min(scen[key]["fresh"], 1)) \
                        if args.before else scen[key]
                    results[name].setdefault(key, []).extend(run_calls(org, code, args.latency, one))
        for name, code in sides:
            results[name]["R3"] = run_calls(org, code, args.latency, scen["R3"])
    with OrgProcess(opportunities=bulk_rows, page_size=page_size, startup_timeout=1800) as org:
        for name, code in sides:
            results[name]["R4"] = run_calls(org, code, bulk_latency, scen["R4"])
    pages = math.ceil(bulk_rows / page_rows)
    _report(report, args, results, small_rows, rest_rows, bulk_rows, pages, page_size, bulk_latency)
    return report.finish()


def _report(report: Report, args: Any, results: Dict[str, Dict[str, List[Dict[str, Any]]]], small_rows: int,
            rest_rows: int, bulk_rows: int, pages: int, page_size: int, bulk_latency: float) -> None:
    after, before = results["after"], results.get("before")
    for key in ("R1", "R2", "R3", "R4"):
        calls = after[key]
        worst = max(c["sequential"] for c in calls)
        polls = max(c["polls"] for c in calls)
        floor = {"R1": 1, "R2": 1, "R3": math.ceil(rest_rows / page_size),
                 "R4": 2 + polls + math.ceil(pages / 4)}[key]
        details: Dict[str, Any] = {"floor": floor, "sequential_each": [c["sequential"] for c in calls],
                                   "requests_on_path": calls[0]["requests"], "polls": polls,
                                   "answered_after_return": calls[0]["after"],
                                   "wall_s": round(median([c["wall"] for c in calls]), 2)}
        theirs = 0.0
        if before is not None:
            theirs = float(max(c["sequential"] for c in before[key]))
            details["before_requests_on_path"] = before[key][0]["requests"]
            details["before_answered_after_return"] = before[key][0]["after"]
            details["before_wall_s"] = round(median([c["wall"] for c in before[key]]), 2)
        label = LABELS[key].format(small=small_rows, rest=rest_rows, bulk=bulk_rows, pages=pages,
                                   bulk_latency=bulk_latency)
        report.add(Figure("B15", f"{key} {label}", ours=float(worst), theirs=theirs, unit="sequential requests",
                          target=float(floor), kind="count", details=details))
    for key in ("R1", "R2"):
        walls = [c["wall"] * 1000 for c in after[key]]
        if before is not None:
            theirs_ms = median([c["wall"] * 1000 for c in before[key]])
            what = "main" if "main" in os.path.basename(args.before.rstrip("/")) else "--before"
        else:
            theirs_ms = args.latency * 1000  # the floor: one round trip
            what = "the floor (one round trip)"
        report.add(Figure("B15", f"{key} wall time at {args.latency:g} s latency vs {what}",
                          ours=median(walls), theirs=theirs_ms, unit="ms", target=0.6 if before is not None else 1.5,
                          details={"ours_ms": [round(w, 1) for w in walls],
                                   "theirs_ms": [round(c["wall"] * 1000, 1) for c in (before or {}).get(key, [])]}))


if __name__ == "__main__":
    sys.exit(main())
