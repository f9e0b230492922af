"""The Salesforce CLI 2.146 (a client we did not write) against the local org's External Client
Apps (issue 15, item 6, the org side): JWT login as an admin, ``sf project deploy start
--metadata-dir`` of an ECA package written here, ``sf org list metadata``, a ConnectedApp deploy
refused, ``sf data delete record`` of a PermissionSetAssignment, and ``sf org login jwt`` with the
deployed ECA's consumer key. Run offline as tests/test_sf_cli.py runs it."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict, List

from test_sf_cli import SF_BIN, TIMEOUT, _env, _sf, pytestmark  # noqa: F401 - the skip when sf is missing
from test_testing_eca import eca_package

from sfjwt_ext.testing import LocalOrg
from sfjwt_ext.testing.core.tls import new_app_key_pair
from cryptography.hazmat.primitives import serialization

ADMIN = "admin@example.com"


def _write(folder: Path, files: Dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def _sf_failing(args: List[str], *, cwd: Path, env: Dict[str, str]) -> dict:
    proc = subprocess.run([str(SF_BIN), *args, "--json"], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert proc.returncode != 0 and out.get("status") != 0, out
    return dict(out)


def _refused_connected_app(tmp_path: Path, project: Path, env: Dict[str, str]) -> None:
    """A new ConnectedApp fails `sf project deploy start` with the Spring '26 message."""
    connected = _write(tmp_path / "legacy", {
        "package.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<Package xmlns="http://soap.sforce.com/2006/04/'
                       'metadata"><types><members>Legacy</members><name>ConnectedApp</name></types>'
                       "<version>66.0</version></Package>\n",
        "connectedApps/Legacy.connectedApp": '<?xml version="1.0" encoding="UTF-8"?>\n<ConnectedApp xmlns="'
                                             'http://soap.sforce.com/2006/04/metadata"><contactEmail>a@example.com'
                                             "</contactEmail><label>Legacy</label></ConnectedApp>\n"})
    failed = _sf_failing(["project", "deploy", "start", "--metadata-dir", str(connected), "--target-org",
                          "admin", "--wait", "2"], cwd=project, env=env)
    assert "005228017" in json.dumps(failed)


def test_sf_cli_deploys_an_eca_that_then_logs_in(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key, cert = new_app_key_pair("cli eca")
    key_file = tmp_path / "eca.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with LocalOrg.with_app(tmp_path / "admin", username=ADMIN) as org:
        creds = org.credentials
        assert creds is not None
        env = _env(home, org)
        project = tmp_path / "project"
        (project / "force-app").mkdir(parents=True)
        (project / "sfdx-project.json").write_text(json.dumps({
            "packageDirectories": [{"path": "force-app", "default": True}], "name": "local", "namespace": "",
            "sourceApiVersion": "66.0"}))
        _sf(["org", "login", "jwt", "--client-id", creds.consumer_key, "--jwt-key-file", creds.private_key_file,
             "--username", ADMIN, "--instance-url", org.login_url, "--alias", "admin"], cwd=project, env=env)

        package = _write(tmp_path / "mdapi", eca_package("cli_app", pem, permission_set="cli_users", extra={
            "permissionsets/cli_users.permissionset":
                '<?xml version="1.0" encoding="UTF-8"?>\n<PermissionSet xmlns="http://soap.sforce.com/2006/04/'
                'metadata"><hasActivationRequired>false</hasActivationRequired><label>CLI users</label>'
                "</PermissionSet>\n"}))
        deployed = _sf(["project", "deploy", "start", "--metadata-dir", str(package), "--target-org", "admin",
                        "--wait", "2"], cwd=project, env=env)
        assert deployed["status"] == "Succeeded" and deployed["success"] is True
        listed = _sf(["org", "list", "metadata", "-m", "ExternalClientApplication", "--target-org", "admin"],
                     cwd=project, env=env)
        assert sorted(m["fullName"] for m in listed) == ["cli_app", "sfjwt_test_app"]   # with_app made an ECA too
        app = org.app_registry.named("cli_app")
        assert app is not None

        _refused_connected_app(tmp_path, project, env)

        assignment = org.assign_permission_set(ADMIN, "cli_users")
        _sf(["org", "login", "jwt", "--client-id", app.consumer_key, "--jwt-key-file", str(key_file), "--username",
             ADMIN, "--instance-url", org.instance_url, "--alias", "eca"], cwd=project, env=env)
        # (the CLI keys an auth by username: the ECA login replaced the admin's, for the same user)
        _sf(["data", "delete", "record", "--sobject", "PermissionSetAssignment", "--record-id", assignment,
             "--target-org", ADMIN], cwd=project, env=env)
        assert org.store.query(f"SELECT Id FROM PermissionSetAssignment WHERE Id = '{assignment}'").records == []
        refused = _sf_failing(["org", "login", "jwt", "--client-id", app.consumer_key, "--jwt-key-file",
                               str(key_file), "--username", ADMIN, "--instance-url", org.instance_url,
                               "--alias", "eca2"], cwd=project, env=env)
        assert "user is not admin approved to access this app" in json.dumps(refused)
