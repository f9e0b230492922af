"""B14: Bulk 2.0 results downloaded in parallel (``resultPages``) vs one after another
(the ``Sforce-Locator`` chain), with the latency of a real org.

    python benchmarks/bench_bulk_parallel.py                    # 1,000,000 rows, latency 1.0 s
    python benchmarks/bench_bulk_parallel.py --rows 200000      # a smaller run first
    python benchmarks/bench_bulk_parallel.py --quick --json     # smoke test

The local org runs in a child process, filled with ``generate_opportunities(rows)``, and
answers every API request ``--latency`` seconds late (``org.api_latency``: what a real org
spends per result page, hundreds of milliseconds to seconds). Both sides run the same query
through Bulk API 2.0 with the same client and write it to a Parquet file page by page, so
the process holds one page at a time:

  A = query_to_parquet(sf, Q, path, bulk=True)               (parallel=4, the default)
  B = query_to_parquet(sf, Q, path, bulk=True, parallel=1)   (the locator chain)

Result pages hold ``--page-rows`` rows (50,000, simple-salesforce's page size). A and B
alternate for ``--rounds`` rounds (default 1: a 1M-row round takes minutes here); medians
are compared. Target: A <= 0.5x the wall time of B. The details also give the results
phase alone (from the job's completion to the last page written), the part parallel= changes:
the rest (the org running the query, polls) is the same on both sides.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Figure, OrgProcess, Report, alternate, base_parser, isolate, median, trust_org_ca  # noqa: E402

QUERY = "SELECT Id, Name, Amount, StageName, CloseDate, Probability, IsWon, CreatedDate FROM Opportunity"
TARGET = 0.5


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="Opportunities in the org (default 1000000)")
    parser.add_argument("--latency", type=float, default=None, help="org.api_latency in seconds (default 1.0)")
    parser.add_argument("--page-rows", type=int, default=None, help="rows per result page (default 50000)")
    parser.add_argument("--parallel", type=int, default=None, help="A's parallel= (default: query_df's, 4)")
    args = parser.parse_args(argv)
    rows = args.rows or (2000 if args.quick else 1_000_000)
    latency = args.latency if args.latency is not None else (0.05 if args.quick else 1.0)
    page_rows = args.page_rows or (500 if args.quick else 50_000)
    rounds = args.rounds or 1
    if rows < 1 or page_rows < 1 or rounds < 1 or latency < 0:
        parser.error("--rows, --page-rows and --rounds must be positive, --latency >= 0")
    isolate()
    report = Report("bench_bulk_parallel", args)

    from sfjwt_ext import connect_jwt
    from sfjwt_ext.data import dataframe
    from sfjwt_ext.data.dataframe import query_to_parquet

    dataframe.BULK_PART_RECORDS = page_rows
    # phase marks (an untimed wrapper): the job runs until _wait_for_job returns, the pages
    # download and are written until query_to_parquet returns (the job's DELETE runs in the
    # background); only the results phase differs between A and B
    marks: List[float] = []
    real_wait = dataframe._wait_for_job

    def wait_marked(*a: Any, **k: Any) -> Any:
        info = real_wait(*a, **k)
        marks.append(time.perf_counter())
        return info

    dataframe._wait_for_job = wait_marked
    phases: Dict[int, List[float]] = {}
    parallel = args.parallel or dataframe.BULK_PARALLEL
    with OrgProcess(opportunities=rows, api_latency=latency, startup_timeout=1800) as org, \
            tempfile.TemporaryDirectory(prefix="sfjwt-bench-bulk-") as folder:
        trust_org_ca(org)
        sf = connect_jwt(**org.connect_kwargs(), cache=False)
        path = os.path.join(folder, "out.parquet")
        written = {}

        def run(p: int) -> None:
            marks.clear()
            written[p] = query_to_parquet(sf, QUERY, path, bulk=True, progress=False, parallel=p)
            phases.setdefault(p, []).append(time.perf_counter() - marks[0])

        query_to_parquet(sf, QUERY + " LIMIT 10", path, bulk=True, progress=False)  # warm-up
        before = org.token_requests()
        load_before = os.getloadavg()[0]
        a, b = alternate(rounds, lambda: run(parallel), lambda: run(1))
        load_after = os.getloadavg()[0]
        refreshes = org.token_requests() - before
    pages = -(-rows // page_rows)
    wrong = [p for p, n in written.items() if n != rows]
    note = ""
    if wrong:
        note = f"rows written {written}, expected {rows}"
    elif refreshes:
        note = f"{refreshes} token request(s) during the run"
    report.add(Figure(
        "B14", f"{rows} Bulk 2.0 rows at {latency:g} s API latency, parallel={parallel} vs parallel=1 wall time",
        ours=median(a), theirs=median(b), unit="s", target=TARGET,
        details={"rows": rows, "pages": pages, "page_rows": page_rows, "latency_s": latency, "rounds": rounds,
                 "parallel": parallel, "ours_s": [round(x, 2) for x in a], "theirs_s": [round(x, 2) for x in b],
                 "results_phase_ours_s": round(median(phases[parallel]), 2),
                 "results_phase_theirs_s": round(median(phases[1]), 2),
                 "results_phase_ratio": round(median(phases[parallel]) / median(phases[1]), 2),
                 # the machine is shared: the 1-minute load average before and after the rounds
                 "load_average": [round(load_before, 1), round(load_after, 1)]},
        note=note,
    ))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
