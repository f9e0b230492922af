"""Run every benchmark and print one markdown table of the figures.

    python benchmarks/run_all.py              # full sizes (a few minutes on 2 cores)
    python benchmarks/run_all.py --quick      # tiny sizes, 1 round: checks the plumbing only
    python benchmarks/run_all.py --json       # everything as one JSON object

Runs bench_login.py (B1, B2, B6), bench_threads.py (B3), bench_query.py (B4),
bench_import.py (B5), bench_query_df.py (B7, B8), bench_parquet_memory.py (B9, B10),
bench_token_cache.py (B11, B12, B13), bench_bulk_parallel.py (B14; 1,000,000 rows at
1 s latency: several minutes) and bench_roundtrips.py (B15: round trips waited for, at
0.3 s and 1 s latency), each in its own process with ``--json``. Prints the machine
(nproc, Python, date) and a table: figure, ours, theirs,
ratio, target, met?. Exits 1 when a script failed (or, with ``--strict``, when a target
was missed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["bench_login.py", "bench_threads.py", "bench_query.py", "bench_import.py", "bench_query_df.py",
           "bench_parquet_memory.py", "bench_token_cache.py", "bench_bulk_parallel.py", "bench_roundtrips.py"]
TIMEOUT = 1800


def _args_for(script: str, quick: bool) -> List[str]:
    if script == "bench_query_df.py":
        return ["--json"] + (["--rows", "500", "--repeat", "1"] if quick else [])
    return ["--json"] + (["--quick"] if quick else [])


def _run(script: str, quick: bool) -> Tuple[Optional[Dict[str, Any]], str]:
    path = os.path.join(HERE, script)
    started = time.monotonic()
    try:
        out = subprocess.run([sys.executable, path] + _args_for(script, quick), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"{script}: timed out after {TIMEOUT} s"
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        return None, f"{script}: exit code {out.returncode} after {elapsed:.0f} s\n{tail}"
    try:
        start = out.stdout.index("{")
        return json.loads(out.stdout[start:]), f"{script}: {elapsed:.0f} s"
    except ValueError:
        return None, f"{script}: no JSON in its output:\n{out.stdout[-2000:]}"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def _rows_from_figures(data: Dict[str, Any]) -> List[Dict[str, str]]:
    rows = []
    for f in data.get("figures", []):
        details = f.get("details", {})
        if f["kind"] == "ratio" and f.get("unit") == "s":
            ours, theirs, ratio = f"{f['ours']:.1f} s", f"{f['theirs']:.1f} s", f"{f['value']:.2f}"
            if "results_phase_ratio" in details:
                ratio += f" (results phase {details['results_phase_ratio']:.2f})"
        elif f["kind"] == "ratio":
            ours, theirs, ratio = _ms(f["ours"]), _ms(f["theirs"]), f"{f['value']:.2f}"
            if f["id"] == "B6":
                ours, theirs = ours + " / signature", theirs + " / signature"
            if f["id"] == "B4":
                ours, theirs = ours + " / call", theirs + " / call"
        elif f["kind"] == "difference":
            ours, theirs, ratio = _ms(f["ours"]), _ms(f["theirs"]), f"{f['value']:+.1f} ms"
        elif f["kind"] == "count" and f["unit"] == "sequential requests":  # B15
            ours, ratio = f"{int(f['ours'])} sequential", "n/a"
            theirs = f"{int(f['theirs'])} sequential (--before)" if f["theirs"] else "floor " + f"{f['target']:g}"
        elif f["kind"] == "count" and f["unit"] == "requests":  # B12, B13
            ours, theirs, ratio = f"{int(f['ours'])} token request(s)", f"{int(f['theirs'])} token requests", "n/a"
        else:  # B3
            threads = details.get("threads", "?")
            ours = f"{int(f['ours'])} token request(s), {min(details.get('ours_successes', [0]))}/{threads} ok"
            theirs = f"{int(f['theirs'])} token requests, {min(details.get('theirs_successes', [0]))}/{threads} ok"
            ratio = "n/a"
        rows.append({
            "figure": f"{f['id']} {f['label']}",
            "ours": ours,
            "theirs": theirs,
            "ratio": ratio,
            "target": f.get("target_text", ""),
            "met": ("yes" if f["met"] else "**no**") + (f" ({f['note']})" if f.get("note") else ""),
        })
    return rows


def _rows_from_query_df(data: Dict[str, Any]) -> List[Dict[str, str]]:
    t = data["time_s"]
    m = data["peak_memory_bytes"]
    rows_n = data.get("rows")
    mb = 1024 * 1024
    return [
        {
            "figure": f"B7 query_df vs json_normalize(query_all) time, {rows_n} rows",
            "ours": f"{t['A_median']:.2f} s", "theirs": f"{t['B_median']:.2f} s",
            "ratio": f"{data['time_ratio']:.2f}", "target": f"<= {data['time_target']}",
            "met": "yes" if data["time_ok"] else "**no**",
        },
        {
            "figure": f"B8 query_df vs json_normalize(query_all) peak memory, {rows_n} rows",
            "ours": f"{m['A_total'] / mb:.1f} MB", "theirs": f"{m['B_total'] / mb:.1f} MB",
            "ratio": f"{data['peak_memory_ratio']:.2f}", "target": f"<= {data['memory_target']}",
            "met": "yes" if data["memory_ok"] else "**no**",
        },
    ]


def _rows_from_parquet(data: Dict[str, Any]) -> List[Dict[str, str]]:
    runs, small, large = data["runs"], data["small"], data["large"]

    def mb(key: str) -> str:
        return f"{runs[key]['peak_kb'] / 1024:.0f} MB"

    return [
        {
            "figure": f"B9 query_to_parquet peak RSS, {large} vs {small} rows",
            "ours": mb(f"P_{large}"), "theirs": mb(f"P_{small}"), "ratio": f"{data['growth']:.2f}",
            "target": "<= 1.4", "met": "yes" if data["growth_ok"] else "**no**",
        },
        {
            "figure": f"B10 query_to_parquet vs query_df().to_parquet peak RSS, {large} rows",
            "ours": mb(f"P_{large}"), "theirs": mb(f"D_{large}"), "ratio": f"{data['versus_df']:.2f}",
            "target": "<= 0.6", "met": "yes" if data["versus_df_ok"] else "**no**",
        },
    ]


def table(rows: List[Dict[str, str]]) -> str:
    lines = ["| figure | ours | theirs | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['ours']} | {r['theirs']} | {r['ratio']} | {r['target']} | {r['met']} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (plumbing check only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target was missed")
    parser.add_argument("--only", action="append", help="run only this script (repeatable), e.g. bench_login.py")
    args = parser.parse_args(argv)
    scripts = [s for s in SCRIPTS if os.path.exists(os.path.join(HERE, s))]
    if args.only:
        scripts = [s for s in scripts if s in args.only or s.replace(".py", "") in args.only]
    rows: List[Dict[str, str]] = []
    results: Dict[str, Any] = {}
    failures: List[str] = []
    for script in scripts:
        data, status = _run(script, args.quick)
        print(status, file=sys.stderr, flush=True)
        if data is None:
            failures.append(status)
            continue
        results[script] = data
        if script == "bench_query_df.py":
            rows.extend(_rows_from_query_df(data))
        elif script == "bench_parquet_memory.py":
            rows.extend(_rows_from_parquet(data))
        else:
            rows.extend(_rows_from_figures(data))
    info = machine()
    missed = [r["figure"] for r in rows if not r["met"].startswith("yes")]
    if args.json:
        print(json.dumps({"machine": info, "quick": args.quick, "rows": rows, "results": results,
                          "failures": failures}, indent=2))
    else:
        print(f"Machine: {info['nproc']} CPUs, Python {info['python']}, {info['platform']}, {info['date']}"
              + (" (--quick: sizes too small for the figures to mean anything)" if args.quick else ""))
        print()
        print(table(rows))
        for failure in failures:
            print(f"\nFAILED {failure}")
    if failures:
        return 1
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
