"""query_df vs. ``pd.json_normalize(sf.query_all(q)["records"])``: wall time and peak memory.

    python benchmarks/bench_query_df.py                  # 100,000 Opportunities, 3 rounds
    python benchmarks/bench_query_df.py --rows 500 --repeat 1 --json

The local org runs in a child process (so its threads and its GIL do not share the CPU
time of the client being measured), filled with ``generate_opportunities(rows)``. Both
sides fetch the same pages over HTTPS on 127.0.0.1 through the same ``connect_jwt()``
client; the difference is what the client does with them:

  A = query_df(sf, Q, progress=False, bulk=False)
  B = pd.json_normalize(sf.query_all(Q)["records"])

Time: A and B alternate (which one goes first alternates too) for ``--repeat`` rounds in
this process; medians are compared. Memory: a separate pass, because tracemalloc slows
both sides down; each measurement runs in a fresh child process (connect first, then
tracemalloc around A or B alone). tracemalloc does not see the buffers of pyarrow's
memory pool (pandas 3 keeps string columns there), so the figure compared is
tracemalloc's peak + the arrow pool's peak, both reported.

Targets: A at most 0.8x the time and 0.6x the peak memory of B.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import run_json_child  # noqa: E402

QUERY = "SELECT Id, Name, Amount, StageName, CloseDate, Probability, IsWon FROM Opportunity"
TIME_TARGET = 0.8
MEMORY_TARGET = 0.6

# Runs in the server child: start an org, fill it, print its SF_* settings, wait for EOF on stdin.
_SERVER = r"""
import json, sys, tempfile
from sfjwt_ext.testing import LocalOrg
from sfjwt_ext.testing.sample import generate_opportunities

rows = int(sys.argv[1])
with tempfile.TemporaryDirectory(prefix="sfjwt-bench-") as folder, LocalOrg() as org:
    creds = org.new_app_with_key(folder, username="bench@example.com")
    generate_opportunities(org.store, rows)
    print(json.dumps(creds.env()), flush=True)
    sys.stdin.read()
"""


def start_org(rows: int) -> Tuple[subprocess.Popen, Dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(rows)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise SystemExit(f"the local org did not start (exit code {proc.returncode})")
    return proc, json.loads(line)


def stop_org(proc: subprocess.Popen) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    except Exception:
        proc.kill()
        proc.wait()


def connect(env: Dict[str, str]) -> Any:
    os.environ.update(env)
    from sfjwt_ext import connect_jwt

    return connect_jwt(cache=False)


def run_a(sf: Any, query: str) -> Any:
    from sfjwt_ext.data.dataframe import query_df

    return query_df(sf, query, progress=False, bulk=False)


def run_b(sf: Any, query: str) -> Any:
    import pandas as pd

    return pd.json_normalize(sf.query_all(query)["records"])


RUNNERS: Dict[str, Callable[[Any, str], Any]] = {"A": run_a, "B": run_b}


# --------------------------------------------------------------------------- memory child


def memory_child(which: str) -> None:
    """In a fresh process: connect, then measure one run of A or B; print JSON."""
    import tracemalloc

    import pandas  # noqa: F401  - imported before measuring, like the client
    env = json.loads(os.environ["SFJWT_BENCH_ENV"])
    sf = connect(env)
    sf.query("SELECT Id FROM Opportunity LIMIT 1")  # warm the connection (and describe for A below)
    if which == "A":
        run_a(sf, QUERY + " LIMIT 1")
    try:
        import pyarrow as pa
        pool = pa.default_memory_pool()
        arrow_before = pool.bytes_allocated()
    except ImportError:  # pragma: no cover
        pool = None
        arrow_before = 0
    gc.collect()
    tracemalloc.start()
    df = RUNNERS[which](sf, QUERY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrow_peak = (pool.max_memory() or 0) - arrow_before if pool is not None else 0
    print(json.dumps({"rows": len(df), "tracemalloc_peak": peak, "arrow_peak": max(arrow_peak, 0)}))


def measure_memory(which: str, env: Dict[str, str]) -> Dict[str, int]:
    child_env = dict(os.environ, SFJWT_BENCH_ENV=json.dumps(env))
    return run_json_child([os.path.abspath(__file__), "--memory-child", which], child_env,
                          what=f"the memory child of {which}")


# --------------------------------------------------------------------------- main


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="Opportunities in the org (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of A and B (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--quick", action="store_true", help="a smoke run: --rows 500 --repeat 1")
    parser.add_argument("--memory-child", choices=["A", "B"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    if args.quick:
        args.rows, args.repeat = 500, 1
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")

    proc, env = start_org(args.rows)
    try:
        sf = connect(env)
        # warm up both paths once (TLS connection, describe cache, imports)
        run_a(sf, QUERY + " LIMIT 10")
        run_b(sf, QUERY + " LIMIT 10")
        times: Dict[str, List[float]] = {"A": [], "B": []}
        rows_seen: Dict[str, int] = {}
        for r in range(args.repeat):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for which in order:
                gc.collect()
                t0 = time.perf_counter()
                df = RUNNERS[which](sf, QUERY)
                times[which].append(time.perf_counter() - t0)
                rows_seen[which] = len(df)
                del df
        memory: Dict[str, List[Dict[str, int]]] = {"A": [], "B": []}
        for r in range(args.repeat):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for which in order:
                memory[which].append(measure_memory(which, env))
    finally:
        stop_org(proc)

    t_a, t_b = statistics.median(times["A"]), statistics.median(times["B"])

    def peak(which: str, key: str = "") -> float:
        if key:
            return statistics.median(m[key] for m in memory[which])
        return statistics.median(m["tracemalloc_peak"] + m["arrow_peak"] for m in memory[which])

    m_a, m_b = peak("A"), peak("B")
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "query": QUERY,
        "rows_returned": rows_seen,
        "time_s": {"A_query_df": times["A"], "B_json_normalize": times["B"],
                   "A_median": t_a, "B_median": t_b},
        "time_ratio": t_a / t_b,
        "time_target": TIME_TARGET,
        "time_ok": t_a / t_b <= TIME_TARGET,
        "peak_memory_bytes": {
            "A_tracemalloc": peak("A", "tracemalloc_peak"), "A_arrow": peak("A", "arrow_peak"), "A_total": m_a,
            "B_tracemalloc": peak("B", "tracemalloc_peak"), "B_arrow": peak("B", "arrow_peak"), "B_total": m_b,
        },
        "peak_memory_ratio": m_a / m_b,
        "peak_memory_ratio_tracemalloc_only": peak("A", "tracemalloc_peak") / peak("B", "tracemalloc_peak"),
        "memory_target": MEMORY_TARGET,
        "memory_ok": m_a / m_b <= MEMORY_TARGET,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    mb = 1024 * 1024
    pm = result["peak_memory_bytes"]
    print(f"{args.rows} Opportunities, {args.repeat} round(s): {QUERY}")
    print(f"A query_df        median {t_a:.3f} s  peak {m_a / mb:.1f} MB "
          f"(tracemalloc {pm['A_tracemalloc'] / mb:.1f} + arrow {pm['A_arrow'] / mb:.1f})")
    print(f"B json_normalize  median {t_b:.3f} s  peak {m_b / mb:.1f} MB "
          f"(tracemalloc {pm['B_tracemalloc'] / mb:.1f} + arrow {pm['B_arrow'] / mb:.1f})")
    print(f"time ratio {t_a / t_b:.2f} (target <= {TIME_TARGET}) {'met' if result['time_ok'] else 'NOT met'}")
    print(f"peak memory ratio {m_a / m_b:.2f} (target <= {MEMORY_TARGET}) "
          f"{'met' if result['memory_ok'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
