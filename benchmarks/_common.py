"""Shared plumbing of the benchmarks: the local org in a child process, timing helpers,
figure lines and ``--json`` output.

The local org runs in a separate Python process (``python -c``), so its server threads do
not compete with the measured client for the GIL. The child prints one JSON line (the
credentials, the SF_* environment, the org's URLs and CA file), then serves commands read
from its stdin, one per line, answering each with one JSON line on stdout:

    expire    org.expire_all_sessions()            -> {"ok": true}
    counts    -> {"token_requests": n, "api_requests": n, "requests": n}
    reset     org.reset_counters()                 -> {"ok": true}
    latency S org.api_latency = S                  -> {"ok": true}
    timeline  -> {"requests": [[host, method, path, status, started, ended], ...]}
              (started / ended: the org's time.monotonic(), 0 when the org does not record them)

It stops when its stdin is closed.

Every figure is printed as one line::

    B1 cold connect_jwt vs simple-salesforce built-in JWT login: 0.83 (target <= 1.0) OK

followed by the medians it was computed from. ``--json`` prints all figures as one JSON
object instead. Benchmarks only ever talk to 127.0.0.1: :func:`loopback_only` makes any
other address fail loudly.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "OrgProcess",
    "Figure",
    "Report",
    "base_parser",
    "alternate",
    "median",
    "loopback_only",
    "machine",
    "trust_org_ca",
]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in the child: start the org, print one JSON line, then serve commands from stdin.
_CHILD = r"""
import json, sys, tempfile
options = json.loads(sys.argv[1])
from sfjwt_ext.testing import LocalOrg

with tempfile.TemporaryDirectory(prefix="sfjwt-bench-") as folder:
    org = LocalOrg(page_size=options.get("page_size", 2000))
    org.start()
    try:
        creds = org.new_app_with_key(folder, username=options.get("username", "bench@example.com"))
        if options.get("sample_data"):
            org.load_sample_data()
        accounts = int(options.get("accounts") or 0)
        if accounts:
            org.insert("Account", [{"Name": "Bench account %05d" % i} for i in range(accounts)])
        opportunities = int(options.get("opportunities") or 0)
        if opportunities:
            from sfjwt_ext.testing.sample import generate_opportunities
            generate_opportunities(org.store, opportunities)
        org.api_latency = float(options.get("api_latency") or 0.0)  # seconds added to every API answer
        print(json.dumps({
            "env": creds.env(),
            "username": creds.username,
            "consumer_key": creds.consumer_key,
            "private_key_file": creds.private_key_file,
            "certificate_file": creds.certificate_file,
            "login_url": org.login_url,
            "instance_url": org.instance_url,
            "ca_file": org.ca_file,
            "org_id": org.org_id,
        }), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "expire":
                org.expire_all_sessions()
                reply = {"ok": True}
            elif command == "counts":
                reply = {"token_requests": org.token_requests, "api_requests": org.api_requests,
                         "requests": len(org.requests)}
            elif command == "reset":
                org.reset_counters()
                reply = {"ok": True}
            elif command.startswith("latency "):
                org.api_latency = float(command.split()[1])
                reply = {"ok": True}
            elif command == "timeline":
                reply = {"requests": [[r.host, r.method, r.path, r.status, getattr(r, "started", 0.0),
                                       getattr(r, "ended", 0.0)] for r in list(org.requests)]}
            elif command == "":
                continue
            else:
                reply = {"error": "unknown command %r" % command}
            print(json.dumps(reply), flush=True)
    finally:
        org.stop()
"""


class OrgProcess:
    """A :class:`sfjwt_ext.testing.LocalOrg` in a child process.

    ``OrgProcess(accounts=10)`` inserts 10 Accounts; ``sample_data=True`` loads the sample
    data set; ``opportunities=N`` generates N Opportunities; ``api_latency=S`` makes the org
    answer every API request S seconds late. Use as a context manager.
    """

    def __init__(self, *, startup_timeout: float = 60.0, **options: Any) -> None:
        self.options = options
        self.startup_timeout = startup_timeout
        self.proc: Optional[subprocess.Popen] = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.info: Dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "OrgProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        threading.Thread(target=self._read, name="org-stdout", daemon=True).start()
        line = self._readline(self.startup_timeout, "start")
        self.info = json.loads(line)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _readline(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"the local org process did not answer {what!r} within {timeout:g} s") from None
        if line is None:
            code = self.proc.wait(timeout=10) if self.proc is not None else None
            raise RuntimeError(f"the local org process exited (code {code}) before answering {what!r}")
        return line

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "OrgProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- commands ------------------------------------------------------------------------
    def command(self, name: str, timeout: float = 30.0) -> Dict[str, Any]:
        if self.proc is None or self.proc.stdin is None:
            raise RuntimeError("the local org process is not running")
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self._readline(timeout, name))
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply  # type: ignore[no-any-return]

    def expire_all_sessions(self) -> None:
        self.command("expire")

    def token_requests(self) -> int:
        return int(self.command("counts")["token_requests"])

    def counts(self) -> Dict[str, int]:
        return self.command("counts")

    def set_latency(self, seconds: float) -> None:
        self.command(f"latency {seconds!r}")

    def timeline(self) -> List[List[Any]]:
        return list(self.command("timeline")["requests"])

    # -- credentials -----------------------------------------------------------------------
    @property
    def env(self) -> Dict[str, str]:
        return dict(self.info["env"])

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    def connect_kwargs(self) -> Dict[str, Any]:
        return {
            "username": self.info["username"],
            "consumer_key": self.info["consumer_key"],
            "private_key_file": self.info["private_key_file"],
            "login_url": self.info["login_url"],
            "verify": self.info["ca_file"],
        }


def trust_org_ca(org: OrgProcess) -> None:
    """Make the org's CA the one requests trusts in this process (both sides of a figure)."""
    os.environ["REQUESTS_CA_BUNDLE"] = org.ca_file
    os.environ.pop("CURL_CA_BUNDLE", None)


# ---------------------------------------------------------------------------------------
# loopback only
# ---------------------------------------------------------------------------------------
_guard_installed = False


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True
    host = host.strip("[]").lower()
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def isolate() -> None:
    """Loopback only, and none of the user's own SF_* settings: each side gets exactly the
    local org's settings from the benchmark."""
    loopback_only()
    for name in [n for n in os.environ if n.startswith("SF_")]:
        os.environ.pop(name)


def loopback_only() -> None:
    """Refuse to resolve or connect to anything but loopback addresses in this process."""
    global _guard_installed
    if _guard_installed:
        return
    _guard_installed = True
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise OSError(f"benchmarks may only reach 127.0.0.1, not {address[0]!r}")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"benchmarks may only resolve loopback names, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def alternate(
    rounds: int,
    a: Callable[[], Any],
    b: Callable[[], Any],
    *,
    before: Optional[Callable[[], Any]] = None,
) -> Tuple[List[float], List[float]]:
    """Time ``a`` and ``b`` ``rounds`` times each, alternating which goes first; returns
    (seconds of a, seconds of b). ``before`` runs untimed before every single measurement."""
    times: Dict[str, List[float]] = {"a": [], "b": []}
    funcs = {"a": a, "b": b}
    for r in range(rounds):
        for which in (("a", "b") if r % 2 == 0 else ("b", "a")):
            if before is not None:
                before()
            t0 = time.perf_counter()
            funcs[which]()
            times[which].append(time.perf_counter() - t0)
    return times["a"], times["b"]


def milliseconds(seconds: Sequence[float], digits: int = 2) -> List[float]:
    """Measured seconds as rounded milliseconds, for a figure's details."""
    return [round(t * 1000, digits) for t in seconds]


def token_note(expected: int, made: int) -> str:
    """A figure's note when the org saw another number of token requests than the run
    should make (a figure with a note is not met)."""
    return "" if made == expected else f"expected {expected} token requests, the org saw {made}"


def run_json_child(
    args: Sequence[str], env: Dict[str, str], *, timeout: Optional[float] = None, what: str = "a child process",
    cwd: Optional[str] = None,
) -> Dict[str, Any]:
    """Run ``python args...`` with ``env`` (stdin closed; in ``cwd``, which ``python -c``
    puts first on sys.path) and return the JSON object of the last line it prints;
    RuntimeError with the end of its stderr when it fails."""
    done = subprocess.run([sys.executable, *args], env=env, stdin=subprocess.DEVNULL, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One measured claim. ``ratio`` is ours / theirs unless ``kind`` says otherwise:
    ``kind="difference"`` compares ``value`` (ours - theirs) with ``target``;
    ``kind="count"`` compares ``value`` with ``target`` for equality."""

    id: str
    label: str
    ours: float
    theirs: float
    unit: str
    target: float
    kind: str = "ratio"          # "ratio" (ours/theirs <= target) | "difference" (<= target) | "count" (==)
    value: Optional[float] = None
    details: Dict[str, Any] = field(default_factory=dict)
    met: bool = False
    note: str = ""
    display: str = ""            # shown instead of the computed value when set
    target_display: str = ""     # shown instead of the computed target when set

    def __post_init__(self) -> None:
        if self.value is None:
            if self.kind == "ratio":
                self.value = self.ours / self.theirs if self.theirs else float("inf")
            elif self.kind == "difference":
                self.value = self.ours - self.theirs
            else:
                self.value = self.ours
        if self.kind == "count":
            self.met = self.value == self.target and not self.note
        else:
            self.met = self.value <= self.target and not self.note

    @property
    def target_text(self) -> str:
        if self.target_display:
            return self.target_display
        if self.kind == "ratio":
            return f"<= {float(self.target)!r}"
        if self.kind == "difference":
            return f"<= +{self.target:g} {self.unit}"
        return f"== {self.target:g}"

    @property
    def value_text(self) -> str:
        if self.kind == "ratio":
            return f"{self.value:.2f}" if self.value < 10 else f"{self.value:.1f}"
        if self.kind == "difference":
            return f"{self.value:+.1f} {self.unit}"
        return f"{self.value:g}"

    def line(self) -> str:
        status = "OK" if self.met else "MISSED"
        return f"{self.id} {self.label}: {self.display or self.value_text} (target {self.target_text}) {status}"

    def detail_line(self) -> str:
        text = f"    ours {_fmt(self.ours, self.unit)}, theirs {_fmt(self.theirs, self.unit)}"
        extra = ", ".join(f"{k} {v}" for k, v in self.details.items() if not isinstance(v, (list, dict)))
        if extra:
            text += f"; {extra}"
        if self.note:
            text += f"; {self.note}"
        return text

    def as_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["target_text"] = self.target_text
        data["line"] = self.line()
        return data


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    return f"{value:g} {unit}".strip()


def machine() -> Dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }


class Report:
    """Collects the figures of one script; prints them as lines or as JSON."""

    def __init__(self, script: str, args: argparse.Namespace) -> None:
        self.script = script
        self.args = args
        self.figures: List[Figure] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        if not self.args.json:
            print(figure.line(), flush=True)
            print(figure.detail_line(), flush=True)
        return figure

    def finish(self) -> int:
        if self.args.json:
            print(json.dumps({
                "script": self.script,
                "quick": bool(self.args.quick),
                "machine": machine(),
                "figures": [f.as_dict() for f in self.figures],
            }, indent=2))
        return 0


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one round (for the smoke test; figures are not meaningful)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of A and B (default per script)")
    return parser
