"""``sfjwt demo``: the whole flow with no Salesforce account and no network.

Starts the local org (``sfjwt_ext.testing``) on 127.0.0.1 with sample data, makes a key pair
and an External Client App in a temporary folder, logs in with :func:`~sfjwt_ext.connect_jwt`, runs
a few queries, expires the session and shows the next query succeed after one transparent
re-login, then stops the org and removes the folder.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from typing import IO, Any, Iterator, List, Sequence

from .output import flatten, format_table, row_values, select_columns
from ..client import SalesforceJWT, connect_jwt
from ..testing import LocalOrg

__all__ = ["run_demo"]

QUERIES = [
    ("The five biggest accounts",
     "SELECT Name, Industry, BillingCountry, AnnualRevenue FROM Account "
     "WHERE AnnualRevenue != null ORDER BY AnnualRevenue DESC LIMIT 5"),
    ("Opportunities by stage",
     "SELECT StageName, COUNT(Id) deals, SUM(Amount) total FROM Opportunity "
     "GROUP BY StageName ORDER BY StageName"),
    ("Contacts with their account (a parent relationship)",
     "SELECT FirstName, LastName, Email, Account.Name FROM Contact ORDER BY LastName LIMIT 5"),
]


def _rows(sf: SalesforceJWT, soql: str) -> List[Sequence[Any]]:
    result = sf.query(soql)
    columns = select_columns(soql) or []
    return [columns] + [row_values(columns, flatten(r)) for r in result["records"]]


def _table(out: IO[str], rows: List[Sequence[Any]]) -> None:
    columns, body = rows[0], rows[1:]
    shown = [[f"{v:,.0f}" if isinstance(v, float) else v for v in row] for row in body]
    for line in format_table(columns, shown).splitlines():
        out.write("    " + line + "\n")


def _plural(name: str) -> str:
    if name.endswith("y"):
        return name[:-1] + "ies"
    return name + ("es" if name.endswith("s") else "s")


@contextlib.contextmanager
def _isolated_environment(folder: str) -> Iterator[None]:
    """The demo logs in to the local org only: the user's own ``SF_*`` settings and profile
    file (``SF_PROFILE``, ``SF_PRIVATE_KEY``, ``SF_DOMAIN``, ...) must not leak into it, and a
    proxy from ``HTTPS_PROXY`` must not be asked to reach 127.0.0.1. Restored afterwards."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith("SF_"):
                del os.environ[name]
        os.environ["SFJWT_CONFIG"] = os.path.join(folder, "no-profiles.ini")  # never created
        for name in ("NO_PROXY", "no_proxy"):
            current = os.environ.get(name, "")
            os.environ[name] = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_demo(out: IO[str]) -> int:
    started = time.monotonic()
    out.write("sfjwt demo: Salesforce's JWT bearer flow against a local org on 127.0.0.1 (no network)\n\n")
    with tempfile.TemporaryDirectory(prefix="sfjwt-demo-") as folder, _isolated_environment(folder), \
            LocalOrg() as org:
        credentials = org.new_app_with_key(folder, username="demo@example.com")
        counts = org.load_sample_data()
        loaded = ", ".join(f"{n:,} {_plural(name)}" for name, n in counts.items())
        out.write(f"1. Started a local org: login host {org.login_url}, instance {org.instance_url}\n")
        out.write(f"   sample data: {loaded}\n")
        out.write("2. Made an RSA key pair and an External Client App "
                  f"(consumer key {credentials.consumer_key[:12]}...)\n")
        out.write(f"   for the pre-authorized user {credentials.username}\n")

        sf = connect_jwt(**credentials.connect_kwargs(), cache=False)
        out.write(f"3. connect_jwt() signed a JWT, exchanged it at {org.token_url}\n")
        out.write(f"   and got a session on {sf.token.instance_url} (org {sf.token.org_id})\n")
        out.write(f"   token requests so far: {org.token_requests}\n\n")

        for title, soql in QUERIES:
            out.write(f"   {title}:\n      {soql}\n")
            _table(out, _rows(sf, soql))
            out.write("\n")

        before = org.token_requests
        org.expire_all_sessions()
        out.write("4. The org expired every session (as Salesforce does after inactivity).\n")
        total = sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]
        out.write(f"   The next query still worked: SELECT COUNT() FROM Opportunity -> {total:,}\n")
        out.write(f"   token requests: {before} before, {org.token_requests} after "
                  f"(one transparent re-login; refreshes by this client: {sf.refresh_count})\n\n")
    out.write(f"5. Stopped the org and removed the key folder. Done in {time.monotonic() - started:.1f} s.\n")
    out.write("   Next: `sfjwt keygen` to make your own key, then `sfjwt check` against your org.\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: IO[str]) -> int:
    return run_demo(out)
