"""Every benchmark script runs with ``--quick`` and prints its figure lines.

No timing is asserted: on shared CI machines the numbers mean nothing at these sizes. What
is checked is the plumbing: the local org in a child process, both sides of every figure,
the line format, ``--json`` and run_all's table.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
LINE = re.compile(r"^(B\d+) .+: .+ \(target .+\) (OK|MISSED)$", re.MULTILINE)


def _run(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(BENCH, script), *args], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "script,figures",
    [
        ("bench_login.py", ["B1", "B2", "B6"]),
        ("bench_query.py", ["B4"]),
        ("bench_import.py", ["B5"]),
        ("bench_bulk_parallel.py", ["B14"]),
        ("bench_roundtrips.py", ["B15"] * 6),
    ],
)
def test_quick_run_prints_its_figures(script: str, figures: List[str]) -> None:
    out = _run(script, "--quick")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    found = [m.group(1) for m in LINE.finditer(out.stdout)]
    assert found == figures, out.stdout


def test_quick_json_b3_counts_are_reported() -> None:
    out = _run("bench_threads.py", "--quick", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    assert data["machine"]["nproc"] >= 1
    (figure,) = data["figures"]
    assert figure["id"] == "B3" and LINE.match(figure["line"]), figure["line"]
    assert isinstance(figure["met"], bool)
    details = figure["details"]
    threads = details["threads"]
    # both sides ran every thread; ours refreshed once per expiry (counts, not timings)
    assert details["ours_successes"] == [threads]
    assert details["ours_token_requests"] == [1]
    assert len(details["theirs_token_requests"]) == 1 and details["theirs_token_requests"][0] >= 1


@pytest.mark.skipif(not os.path.exists(os.path.join(BENCH, "bench_query_df.py")),
                    reason="bench_query_df.py is not there yet")
def test_run_all_quick_prints_the_table() -> None:
    # two scripts only (the others ran above): bench_query_df.py's JSON and ours
    out = _run("run_all.py", "--quick", "--only", "bench_query.py", "--only", "bench_query_df.py", timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "| figure | ours | theirs | ratio | target | met? |" in out.stdout
    for figure in ("B4", "B7", "B8"):
        assert f"| {figure} " in out.stdout, out.stdout
    assert re.search(r"Machine: \d+ CPUs, Python \d+\.\d+", out.stdout)


def test_quick_json_b11_reads_every_row_both_ways() -> None:
    out = _run("bench_bulk_parallel.py", "--quick", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    (figure,) = json.loads(out.stdout)["figures"]
    assert figure["id"] == "B14" and LINE.match(figure["line"]), figure["line"]
    assert figure["note"] == ""  # both sides wrote every row, no token request during the run
    details = figure["details"]
    assert details["pages"] > 1 and details["parallel"] == 4
    assert details["results_phase_ours_s"] > 0 and details["results_phase_theirs_s"] > 0
