"""B9/B10: peak memory of ``query_to_parquet`` (fresh-process RSS), against its own smaller run
and against ``query_df(...).to_parquet(...)``.

    python benchmarks/bench_parquet_memory.py                       # 100,000 vs 1,000,000 rows
    python benchmarks/bench_parquet_memory.py --small 100000 --large 200000
    python benchmarks/bench_parquet_memory.py --quick --json

The local org runs in a child process filled with ``generate_opportunities(rows)``. Every
measurement is one fresh Python process (connect, import pandas and pyarrow, warm up on 10
rows, then the measured call) that reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
the peak resident set of the whole process (imports included, as a user would see it).
Both sides run the query through Bulk API 2.0 (``bulk=True``, what ``bulk="auto"``
picks at these sizes):

  P = query_to_parquet(sf, Q, path, bulk=True)         (page by page)
  D = query_df(sf, Q, bulk=True).to_parquet(path)      (the whole frame first)

Targets: P(large) <= 1.4x P(small) (B9); P(large) <= 0.6x D(large) (B10).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import run_json_child  # noqa: E402
from bench_query_df import start_org, stop_org  # noqa: E402

QUERY = "SELECT Id, Name, Amount, StageName, CloseDate, Probability, IsWon, CreatedDate FROM Opportunity"
GROWTH_TARGET = 1.4
VERSUS_DF_TARGET = 0.6

_CHILD = r"""
import json, os, resource, sys
mode, path = sys.argv[1], sys.argv[2]
from sfjwt_ext import connect_jwt
from sfjwt_ext.data.dataframe import query_df, query_to_parquet
import pandas, pyarrow.parquet
sf = connect_jwt(cache=False)
query = os.environ["BENCH_QUERY"]
query_df(sf, query + " LIMIT 10", bulk=True, progress=False)  # warm up: TLS, describe, imports
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "P":
    rows = query_to_parquet(sf, query, path, bulk=True, progress=False)
else:
    df = query_df(sf, query, bulk=True, progress=False)
    df.to_parquet(path, index=False)
    rows = len(df)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "peak_kb": peak, "before_kb": base, "file_bytes": os.path.getsize(path)}))
"""


def measure(mode: str, env: Dict[str, str]) -> Dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="sfjwt-bench-pq-") as folder:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
        child_env.update(env)
        child_env["BENCH_QUERY"] = QUERY
        return run_json_child(["-c", _CHILD, mode, os.path.join(folder, "out.parquet")], child_env,
                              timeout=3600, what=f"the {mode} child")


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100_000, help="rows of the small run (default 100000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="rows of the large run (default 1000000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--quick", action="store_true", help="a smoke run: --small 500 --large 2000")
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.large = 500, 2000
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")
    results: Dict[str, Dict[str, int]] = {}
    for rows in (args.small, args.large):
        proc, env = start_org(rows)
        try:
            results[f"P_{rows}"] = measure("P", env)
            if rows == args.large:
                results[f"D_{rows}"] = measure("D", env)
        finally:
            stop_org(proc)
    p_small, p_large = results[f"P_{args.small}"]["peak_kb"], results[f"P_{args.large}"]["peak_kb"]
    d_large = results[f"D_{args.large}"]["peak_kb"]
    growth, versus = p_large / p_small, p_large / d_large
    lines = [
        f"B9 query_to_parquet peak RSS, {args.large} vs {args.small} rows: {growth:.2f}x "
        f"({p_large / 1024:.0f} MB vs {p_small / 1024:.0f} MB) (target <= {GROWTH_TARGET}x) "
        + ("OK" if growth <= GROWTH_TARGET else "MISSED"),
        f"B10 query_to_parquet vs query_df().to_parquet peak RSS, {args.large} rows: {versus:.2f}x "
        f"({p_large / 1024:.0f} MB vs {d_large / 1024:.0f} MB) (target <= {VERSUS_DF_TARGET}x) "
        + ("OK" if versus <= VERSUS_DF_TARGET else "MISSED"),
    ]
    if args.json:
        print(json.dumps({"small": args.small, "large": args.large, "query": QUERY, "runs": results,
                          "growth": growth, "growth_ok": growth <= GROWTH_TARGET,
                          "versus_df": versus, "versus_df_ok": versus <= VERSUS_DF_TARGET, "lines": lines}))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
