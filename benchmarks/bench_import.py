"""B5: what importing sfjwt-ext adds on top of simple-salesforce.

    python benchmarks/bench_import.py            # 11 fresh interpreters per statement
    python benchmarks/bench_import.py --quick    # 1 (smoke test)

Each statement runs in a fresh interpreter that times it itself (``time.perf_counter()``
around the statement, so interpreter start-up and ``site`` are left out); statements
alternate run by run and medians are compared. (``-X importtime``'s top-level sums were
tried first: they mis-attribute imports made from a lazy ``__getattr__``, which is how
``sfjwt_ext`` loads ``connect_jwt``, and counted ``requests`` twice.) The list of modules
each statement imported comes from ``sys.modules``.

    import simple_salesforce                 what every simple-salesforce user pays
    from sfjwt_ext import connect_jwt        what a user of connect_jwt pays (it imports
                                             simple_salesforce, requests, cryptography ...)
    import sfjwt_ext                         the package alone (public names are lazy)

Figure: what ``from sfjwt_ext import connect_jwt`` adds on top of ``import simple_salesforce``,
timed in the same interpreter right after simple-salesforce is loaded (the headline: the two
fresh-interpreter totals differ by about as much as two runs of the same statement do on a
shared 2-core machine, +-20 ms). Target: at most +15 ms. The fresh-interpreter totals and
their difference, and ``import sfjwt_ext`` alone, are reported alongside.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import REPO, Figure, Report, base_parser, median  # noqa: E402

STATEMENTS: Dict[str, str] = {
    "baseline": "pass",
    "simple_salesforce": "import simple_salesforce",
    "connect_jwt": "from sfjwt_ext import connect_jwt",
    "sfjwt_ext": "import sfjwt_ext",
    # what sfjwt-ext adds once simple-salesforce is loaded, timed in the same interpreter
    "added": "import simple_salesforce  # untimed\nfrom sfjwt_ext import connect_jwt",
}
TARGET_MS = 15.0
HEAVY = ("pandas", "tqdm", "argparse", "sfjwt_ext.testing", "sfjwt_ext.cli", "sfjwt_ext.data.dataframe")


def run(statement: str) -> Tuple[float, float, List[str]]:
    """(import µs measured inside the interpreter, wall seconds, modules imported)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure imports, not compiling .py files
    prelude, _, statement = statement.rpartition("  # untimed\n")
    code = (
        "import sys, time\n"
        f"{prelude}\n"
        "before = set(sys.modules)\n"
        "t = time.perf_counter()\n"
        f"{statement}\n"
        "elapsed = time.perf_counter() - t\n"
        "print(elapsed)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    first, _, rest = out.stdout.partition("\n")
    return float(first) * 1e6, wall, rest.split()


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 11)
    report = Report("bench_import", args)
    for statement in STATEMENTS.values():  # warm the .pyc files and the OS cache
        run(statement)
    us: Dict[str, List[float]] = {k: [] for k in STATEMENTS}
    wall: Dict[str, List[float]] = {k: [] for k in STATEMENTS}
    modules: Dict[str, List[str]] = {}
    names = list(STATEMENTS)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            total, seconds, imported = run(STATEMENTS[name])
            us[name].append(total)
            wall[name].append(seconds)
            modules[name] = imported

    def ms(name: str) -> float:
        return (median(us[name]) - median(us["baseline"])) / 1000.0

    def wall_ms(name: str) -> float:
        return (median(wall[name]) - median(wall["baseline"])) * 1000.0

    heavy = sorted({m for m in modules["sfjwt_ext"] if m.split(".")[0] in HEAVY or m in HEAVY})
    added = median(us["added"]) / 1000.0
    report.add(Figure(
        "B5", "import time, from sfjwt_ext import connect_jwt on top of import simple_salesforce",
        ours=ms("simple_salesforce") + added, theirs=ms("simple_salesforce"), unit="ms", target=TARGET_MS,
        kind="difference",
        details={
            "runs": rounds,
            "added_in_same_interpreter_ms": round(added, 1),
            "fresh_interpreter_connect_jwt_ms": round(ms("connect_jwt"), 1),
            "fresh_interpreter_difference_ms": round(ms("connect_jwt") - ms("simple_salesforce"), 1),
            "import_sfjwt_ext_alone_ms": round(ms("sfjwt_ext"), 1),
            "wall_connect_jwt_ms": round(wall_ms("connect_jwt"), 1),
            "wall_simple_salesforce_ms": round(wall_ms("simple_salesforce"), 1),
            "wall_sfjwt_ext_alone_ms": round(wall_ms("sfjwt_ext"), 1),
            "heavy_modules_in_import_sfjwt_ext": heavy,
        },
        note=f"import sfjwt_ext imported {', '.join(heavy)}" if heavy else "",
    ))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
