"""benchmarks/bench_token_cache.py runs with --quick and reports its counts (no timing asserted)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_json_counts_one_login_with_the_cache() -> None:
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_token_cache.py"), "--quick", "--json"],
                         cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = {f["id"]: f for f in json.loads(out.stdout)["figures"]}
    assert sorted(figures) == ["B11", "B12", "B13"]
    assert figures["B11"]["details"]["token_requests"] == 1  # only the cold login of the one round
    assert (figures["B12"]["ours"], figures["B12"]["theirs"]) == (1, 3)
    assert (figures["B13"]["ours"], figures["B13"]["theirs"]) == (1, 2)
    assert figures["B13"]["details"]["before_expiry_with_cache"] == 0
