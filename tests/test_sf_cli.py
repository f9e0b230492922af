"""The Salesforce CLI 2.146 (a client we did not write) against the local org: JWT login,
``sf org display`` and ``sf project retrieve start -m ApexClass`` (issue 10, shape details).

The CLI is pinned in tests/sfcli/package.json (``npm ci --prefix tests/sfcli``, as .ci/run
does). It runs with HOME and its config folders in tmp_path, telemetry and update checks off,
trusting only the org's CA; every call has a hard timeout so a call that would reach the
internet fails instead of hanging."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from sfjwt_ext.testing import LocalOrg

SF_DIR = Path(__file__).resolve().parent / "sfcli"
SF_BIN = SF_DIR / "node_modules" / ".bin" / "sf"
TIMEOUT = 120

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not SF_BIN.exists(),
    reason="node or tests/sfcli/node_modules is missing: run `npm ci --prefix tests/sfcli` (as .ci/run does)")


def _env(home: Path, org: LocalOrg) -> Dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return dict(keep, HOME=str(home), USERPROFILE=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CACHE_HOME=str(home / ".cache"),
                SF_DATA_DIR=str(home / ".sf-data"), SF_CACHE_DIR=str(home / ".sf-cache"),
                NODE_EXTRA_CA_CERTS=org.ca_file,
                SF_DISABLE_TELEMETRY="true", SFDX_DISABLE_TELEMETRY="true", SF_AUTOUPDATE_DISABLE="true",
                SFDX_AUTOUPDATE_DISABLE="true", SF_SKIP_NEW_VERSION_CHECK="true", SF_DISABLE_AUTOUPDATE="true",
                SF_USE_GENERIC_UNIX_KEYCHAIN="true", SFDX_USE_GENERIC_UNIX_KEYCHAIN="true",
                SF_CONTENT_TYPE="JSON", SF_DISABLE_SOURCE_MEMBER_POLLING="true", SF_LOG_LEVEL="warn",
                FORCE_COLOR="0", CI="true")


def _sf(args: List[str], *, cwd: Path, env: Dict[str, str]) -> dict:
    proc = subprocess.run([str(SF_BIN), *args, "--json"], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        raise AssertionError(f"sf {args[0:3]} printed no JSON (rc {proc.returncode}): {proc.stdout[-2000:]} "
                             f"{proc.stderr[-2000:]}")
    assert proc.returncode == 0 and out.get("status") == 0, (out, proc.stderr[-2000:])
    return out["result"]


def test_sf_cli_jwt_login_display_and_retrieve_apex_classes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with LocalOrg.with_app(tmp_path / "app") as org:
        creds = org.credentials
        assert creds is not None
        org.insert("ApexClass", [{"Name": "CliGreeter", "Body": "public class CliGreeter {}", "ApiVersion": 62.0}])
        env = _env(home, org)
        project = tmp_path / "project"
        (project / "force-app").mkdir(parents=True)
        (project / "sfdx-project.json").write_text(json.dumps({
            "packageDirectories": [{"path": "force-app", "default": True}], "name": "local",
            "namespace": "", "sourceApiVersion": str(org.api_version)}))

        login = _sf(["org", "login", "jwt", "--client-id", creds.consumer_key, "--jwt-key-file",
                     creds.private_key_file, "--username", creds.username, "--instance-url", org.login_url,
                     "--alias", "local"], cwd=project, env=env)
        assert login["username"] == creds.username

        shown = _sf(["org", "display", "--target-org", "local"], cwd=project, env=env)
        assert shown["username"] == creds.username
        assert shown["instanceUrl"] == org.instance_url
        assert shown["id"] == org.org_id

        retrieved = _sf(["project", "retrieve", "start", "-m", "ApexClass", "--target-org", "local"],
                        cwd=project, env=env)
        body = project / "force-app" / "main" / "default" / "classes" / "CliGreeter.cls"
        assert body.read_text() == "public class CliGreeter {}"
        assert (body.parent / "CliGreeter.cls-meta.xml").is_file()
        assert {f["fullName"] for f in retrieved["files"]} == {"CliGreeter"}
