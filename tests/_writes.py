"""Helpers shared by the write tests (ingest, upsert, composite, search); not a test module.

- ``run_writes``: run tests/js/jsforce_writes.js (jsforce, a client we did not write).
- ``add_external_id``: give an object an external id field (``org.add_field``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

JS_DIR = Path(__file__).parent / "js"
SCRIPT = JS_DIR / "jsforce_writes.js"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the jsforce tests need Node.js >= 18")
    if not (JS_DIR / "node_modules" / "jsforce").is_dir() or not (JS_DIR / "node_modules" / "jsonwebtoken").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `npm ci --prefix tests/js` (as .ci/run does)")
    return node


def run_writes(org: Any, steps: List[str], **extra: str) -> Dict[str, Dict[str, Any]]:
    """Run the given steps; returns the events by name. Fails the test on a jsforce error."""
    node = node_or_skip()
    creds = org.credentials
    env = dict(os.environ)
    env.update({
        "SF_LOGIN_URL": org.login_url,
        "SF_USERNAME": creds.username,
        "SF_CONSUMER_KEY": creds.consumer_key,
        "SF_PRIVATE_KEY_FILE": creds.private_key_file,
        "SF_API_VERSION": str(org.api_version),
        "NODE_EXTRA_CA_CERTS": org.ca_file,
        "SF_STEPS": ",".join(steps),
    })
    env.update(extra)
    proc = subprocess.run([node, str(SCRIPT)], cwd=str(JS_DIR), env=env, capture_output=True, text=True,
                          timeout=120)
    events = {}
    for line in proc.stdout.splitlines():
        if line.strip().startswith("{"):
            event = json.loads(line)
            events[event["event"]] = event
    if "error" in events or proc.returncode != 0:
        pytest.fail(f"jsforce failed: {events.get('error')}; stderr:\n{proc.stderr[-2000:]}")
    return events


def add_external_id(org: Any, sobject: str = "Account", name: str = "Legacy_Id__c", *, unique: bool = True) -> str:
    """Add an external id text field to ``sobject`` (the org's custom schema)."""
    org.add_field(sobject, name, type="string", external_id=True, unique=unique)
    return name
