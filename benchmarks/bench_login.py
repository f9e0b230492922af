"""Login figures B1, B2 and B6, against a local org running in a child process.

    python benchmarks/bench_login.py            # 15 rounds
    python benchmarks/bench_login.py --quick    # 1 round (smoke test)
    python benchmarks/bench_login.py --json

B1  cold ``connect_jwt()`` (``cache=False``, the key loaded from ``private_key_file`` every
    time) vs simple-salesforce's built-in JWT login ``Salesforce(username=...,
    consumer_key=..., privatekey_file=...)`` to the same org. simple-salesforce hard-codes
    ``https://login.salesforce.com``: a requests ``HTTPAdapter`` mounted on its session sends
    those requests to the local org instead (``aud`` stays https://login.salesforce.com, which
    the local org accepts). Both sides trust the org's CA through ``REQUESTS_CA_BUNDLE``, and
    both use a new ``requests.Session`` (a new TLS connection) every time. Target: ratio <= 1.0.
B2  a second ``connect_jwt()`` in the same process (``cache=True``) vs the cold one just
    before it; the org must see no token request for the second. Target: ratio <= 0.05.
B6  signing a re-login's assertion with our already-loaded key
    (``sfjwt_ext.auth.assertion.sign_assertion``) vs PyJWT's ``jwt.encode(claims, pem_text,
    algorithm="RS256")`` from the PEM text, as simple-salesforce does at every (re-)login.
    Target: ratio <= 0.05.

A and B alternate in every round (which goes first alternates too); medians are compared.
"""
from __future__ import annotations

import gc
import os
import sys
from typing import Any, List, Optional
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from _common import (  # noqa: E402
    Figure, OrgProcess, Report, alternate, base_parser, isolate, median, milliseconds, token_note, trust_org_ca,
)

SALESFORCE_HOSTS = ("login.salesforce.com", "test.salesforce.com")


class RedirectToOrg(HTTPAdapter):
    """Sends requests for login.salesforce.com / test.salesforce.com to ``origin``
    (``https://127.0.0.1:<port>``), keeping the path and query."""

    def __init__(self, origin: str, **kwargs: Any) -> None:
        self.origin = origin.rstrip("/")
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").lower() in SALESFORCE_HOSTS:
            request.url = self.origin + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


def redirecting_session(login_url: str) -> requests.Session:
    session = requests.Session()
    adapter = RedirectToOrg(login_url)
    for host in SALESFORCE_HOSTS:
        session.mount(f"https://{host}", adapter)
    return session


def simple_salesforce_login(org: OrgProcess) -> Any:
    from simple_salesforce import Salesforce

    info = org.info
    return Salesforce(
        username=info["username"],
        consumer_key=info["consumer_key"],
        privatekey_file=info["private_key_file"],
        session=redirecting_session(info["login_url"]),
    )


def our_login(org: OrgProcess, cache: bool) -> Any:
    from sfjwt_ext import connect_jwt

    info = org.info
    return connect_jwt(
        username=info["username"],
        consumer_key=info["consumer_key"],
        private_key_file=info["private_key_file"],
        login_url=info["login_url"],
        cache=cache,
    )


def bench_b1(org: OrgProcess, rounds: int) -> Figure:
    # warm-up: imports, first connections, the org's first login of this user
    our_login(org, cache=False)
    simple_salesforce_login(org)
    gc.collect()
    before = org.token_requests()
    ours, theirs = alternate(rounds, lambda: our_login(org, cache=False), lambda: simple_salesforce_login(org))
    made = org.token_requests() - before
    note = token_note(2 * rounds, made)
    return Figure(
        "B1", "cold connect_jwt vs simple-salesforce built-in JWT login",
        ours=median(ours) * 1000, theirs=median(theirs) * 1000, unit="ms", target=1.0,
        details={"rounds": rounds, "token_requests": made,
                 "ours_ms": milliseconds(ours), "theirs_ms": milliseconds(theirs)},
        note=note,
    )


def bench_b2(org: OrgProcess, rounds: int) -> Figure:
    from sfjwt_ext import clear_cache

    cold: List[float] = []
    warm: List[float] = []
    warm_token_requests = 0
    import time

    for _ in range(rounds):
        clear_cache()
        gc.collect()
        t0 = time.perf_counter()
        first = our_login(org, cache=True)
        cold.append(time.perf_counter() - t0)
        before = org.token_requests()
        t0 = time.perf_counter()
        second = our_login(org, cache=True)
        warm.append(time.perf_counter() - t0)
        warm_token_requests += org.token_requests() - before
        if second.refresher is not first.refresher:
            raise RuntimeError("the second connect_jwt() did not reuse the first one's refresher")
        # Drop this round's clients now: rebinding the names inside the next timed call
        # would time the closing of their sockets instead of connect_jwt.
        del first, second
    clear_cache()
    note = "" if warm_token_requests == 0 else f"the second connect_jwt() made {warm_token_requests} token request(s)"
    return Figure(
        "B2", "second connect_jwt (cache=True) vs cold connect_jwt",
        ours=median(warm) * 1000, theirs=median(cold) * 1000, unit="ms", target=0.05,
        details={"rounds": rounds, "token_requests_of_second": warm_token_requests,
                 "second_ms": milliseconds(warm), "cold_ms": milliseconds(cold)},
        note=note,
    )


def bench_b6(key_file: str, rounds: int, per_round: int) -> Figure:
    import jwt

    from sfjwt_ext.auth.assertion import build_claims, sign_assertion
    from sfjwt_ext.auth.keys import load_private_key

    pem_text = open(key_file, encoding="ascii").read()
    key = load_private_key(private_key_file=key_file)
    claims = build_claims(consumer_key="3MVG9bench", username="bench@example.com",
                          audience="https://login.salesforce.com")

    def ours() -> None:
        for _ in range(per_round):
            sign_assertion(key, claims)

    def theirs() -> None:
        for _ in range(per_round):
            jwt.encode(claims, pem_text, algorithm="RS256")

    ours(), theirs()  # warm-up
    a, b = alternate(rounds, ours, theirs)
    return Figure(
        "B6", "re-login assertion signing with our loaded key vs PyJWT from PEM text",
        ours=median(a) * 1000 / per_round, theirs=median(b) * 1000 / per_round, unit="ms", target=0.05,
        details={"rounds": rounds, "signatures_per_round": per_round},
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["B1", "B2", "B6"], action="append", help="run only these figures")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 15)
    only = set(args.only or ["B1", "B2", "B6"])
    isolate()  # every setting is passed explicitly
    report = Report("bench_login", args)
    with OrgProcess(accounts=1) as org:
        trust_org_ca(org)
        if "B1" in only:
            report.add(bench_b1(org, rounds))
        if "B2" in only:
            report.add(bench_b2(org, rounds))
        if "B6" in only:
            report.add(bench_b6(org.info["private_key_file"], rounds, 3 if args.quick else 20))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
