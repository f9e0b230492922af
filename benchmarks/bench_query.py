"""B4: the per-call cost of the refreshing client on a live session.

    python benchmarks/bench_query.py            # 2,000 queries per side, blocks of 100
    python benchmarks/bench_query.py --quick    # 20 queries per side (smoke test)

A  ``connect_jwt()`` -> ``sf.query(SOQL)`` (RefreshingSession: token check, expiry check)
B  a plain ``simple_salesforce.Salesforce(session_id=..., instance_url=...,
   session=requests.Session())`` with the same token, ``sf.query(SOQL)``

Both talk to the same local org (a child process) over HTTPS with keep-alive; both trust
its CA. The calls are interleaved in blocks (A block, B block, B block, A block, ...); the
figure is the ratio of the median block times. Target: ratio <= 1.05.
"""
from __future__ import annotations

import gc
import os
import sys
from typing import Any, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402

from _common import Figure, OrgProcess, Report, alternate, base_parser, isolate, median, trust_org_ca  # noqa: E402

SOQL = "SELECT Id, Name FROM Account LIMIT 10"


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=None, help="queries per side (default 2000)")
    parser.add_argument("--block", type=int, default=None, help="queries per block (default 100)")
    args = parser.parse_args(argv)
    calls = args.calls or (20 if args.quick else 2000)
    block = args.block or (10 if args.quick else 100)
    blocks = max(1, calls // block)
    isolate()
    report = Report("bench_query", args)

    from simple_salesforce import Salesforce

    from sfjwt_ext import connect_jwt

    with OrgProcess(accounts=10) as org:
        trust_org_ca(org)
        ours_sf = connect_jwt(**org.connect_kwargs(), cache=False)
        plain_session = requests.Session()
        plain_session.verify = org.ca_file
        theirs_sf = Salesforce(session_id=ours_sf.session_id, instance_url=ours_sf.token.instance_url,
                               version=ours_sf.sf_version, session=plain_session)
        for sf in (ours_sf, theirs_sf):  # warm-up: connection, imports
            for _ in range(min(block, 20)):
                assert sf.query(SOQL)["totalSize"] == 10

        def run(sf: Any) -> Any:
            def calls_() -> None:
                for _ in range(block):
                    sf.query(SOQL)
            return calls_

        before = org.token_requests()
        gc.collect()
        gc.disable()
        try:
            a, b = alternate(blocks, run(ours_sf), run(theirs_sf))
        finally:
            gc.enable()
        refreshes = org.token_requests() - before
    report.add(Figure(
        "B4", f"{blocks * block} sf.query calls, connect_jwt client vs plain Salesforce(session_id=...)",
        ours=median(a) * 1000 / block, theirs=median(b) * 1000 / block, unit="ms", target=1.05,
        details={"calls_per_side": blocks * block, "block": block, "blocks": blocks,
                 "token_requests_during": refreshes,
                 "ours_total_s": round(sum(a), 3), "theirs_total_s": round(sum(b), 3)},
        note="" if refreshes == 0 else f"{refreshes} token request(s) during the run",
    ))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
