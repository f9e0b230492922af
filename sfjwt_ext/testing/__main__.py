"""Run a local Salesforce org in the foreground: ``python -m sfjwt_ext.testing``.

It loads the sample data, writes an External Client App key into a folder (``--dir``; default a new
temporary folder, removed at exit), prints the login as shell ``export`` lines on stdout
(values quoted with ``shlex.quote``), then serves until SIGINT or SIGTERM. Human-readable
messages go to stderr. Typical use from a shell::

    python -m sfjwt_ext.testing > /tmp/sf-org.env &
    ORG_PID=$!
    until grep -q SF_CA_BUNDLE /tmp/sf-org.env 2>/dev/null; do sleep 0.1; done
    source /tmp/sf-org.env          # SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE, SF_LOGIN_URL, SF_CA_BUNDLE
    sfjwt check                     # or any client that reads SF_* variables
    kill -INT $ORG_PID

Options: ``--dir FOLDER``, ``--username NAME``, ``--port-login N``, ``--port-instance N``
(0 = ephemeral, the default), ``--no-sample-data``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sfjwt_ext.testing",
                                     description="Run a local Salesforce org (JWT login + REST) on 127.0.0.1.")
    parser.add_argument("--dir", help="folder for salesforce.key / salesforce.crt (default: a temporary folder)")
    parser.add_argument("--username", default="user@example.com", help="the approved user (default %(default)s)")
    parser.add_argument("--port-login", type=int, default=0, help="login host port (default: ephemeral)")
    parser.add_argument("--port-instance", type=int, default=0, help="instance host port (default: ephemeral)")
    parser.add_argument("--no-sample-data", action="store_true", help="start with an empty org")
    args = parser.parse_args(argv)

    from .org import LocalOrg

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    temp_dir = None
    folder = args.dir
    if not folder:
        temp_dir = tempfile.mkdtemp(prefix="sfjwt-local-org-key-")
        folder = temp_dir
    org = LocalOrg(login_port=args.port_login, instance_port=args.port_instance)
    try:
        org.start()
        creds = org.new_app_with_key(folder, username=args.username)  # first: the user owns the sample records
        counts = {}
        if not args.no_sample_data:
            try:
                counts = org.load_sample_data()
            except RuntimeError as exc:
                print(f"sample data not loaded: {exc}", file=sys.stderr)
        for name, value in creds.env().items():
            sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
        sys.stdout.flush()
        print(f"Local Salesforce org {org.org_id}", file=sys.stderr)
        print(f"  login host:    {org.login_url}", file=sys.stderr)
        print(f"  instance host: {org.instance_url}", file=sys.stderr)
        print(f"  key folder:    {os.path.abspath(folder)}" + (" (removed at exit)" if temp_dir else ""),
              file=sys.stderr)
        if counts:
            print("  sample data:   " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
        print("Serving until Ctrl-C (SIGINT) or SIGTERM.", file=sys.stderr)
        sys.stderr.flush()
        while not stop.wait(0.5):
            pass
        print("stopping", file=sys.stderr)
    finally:
        org.stop()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
