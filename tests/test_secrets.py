"""Nothing secret ever reaches a log line, an exception, a repr or the CLI's output.

One test walks the whole life of a client with DEBUG logging on the root logger (urllib3
included): a login with an encrypted key and its passphrase, a query, a forced refresh
(every session expired, then a query), a bad query, a refused login (a user who has not
approved the app), and the ``sfjwt`` command (``check --verbose`` that works, and one that
fails). Everything collected is searched for every line of the key's PEM body (encrypted
and plain), the passphrase, any JWT (assertion) and every access token the org issued.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from cryptography.hazmat.primitives import serialization

from sfjwt_ext import connect_jwt, resolve_settings
from sfjwt_ext.client import clear_cache
from sfjwt_ext.errors import ConsumerNotApprovedError
from sfjwt_ext.cli.keypair import generate_key_pair

PASSPHRASE = "Tr0ub4dor&3 horse staple"
# a JWS compact header: 'eyJ' + base64url JSON, then a dot
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _run_cli(args: List[str], env: Dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "sfjwt_ext", *args], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120, env=env)
    # --verbose prints the traceback by design: it is part of what must hold no secret
    return f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"


def test_no_secret_anywhere(salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    org = salesforce_org
    org.insert("Account", [{"Name": f"Secretive {i}"} for i in range(5)])
    key, cert = generate_key_pair()
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(PASSPHRASE.encode()))
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    traditional = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    key_file = tmp_path / "encrypted.key"
    key_file.write_bytes(encrypted)
    os.chmod(key_file, 0o600)
    consumer_key = org.create_app(certificate=cert)
    username = org.credentials.username
    org.add_user("unapproved@example.com", approved=False)

    handler = Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    seen: List[str] = []  # everything that must be clean
    clear_cache()
    try:
        settings = resolve_settings(username=username, consumer_key=consumer_key, private_key_file=str(key_file),
                                    private_key_passphrase=PASSPHRASE, login_url=org.login_url)
        seen += [repr(settings), str(settings), repr(settings.sources), str(settings.describe())]
        sf = connect_jwt(username=username, consumer_key=consumer_key, private_key_file=str(key_file),
                         private_key_passphrase=PASSPHRASE, login_url=org.login_url, verify=org.ca_file)
        seen += [repr(sf), str(sf), sf._repr_html_(), repr(sf.token), str(sf.token), repr(sf.refresher),
                 repr(sf.refresher.token_client), repr(sf.login_target), repr(sf.settings), repr(sf.session),
                 repr(vars(sf.settings)) if sf.settings is not None else ""]
        result = sf.query("SELECT Id, Name FROM Account")
        assert result["totalSize"] == 5
        first_token = sf.session_id
        org.expire_all_sessions()
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 5
        assert sf.session_id != first_token and sf.refresher.refresh_count == 1
        seen += [repr(sf), repr(sf.token), repr(sf.refresher)]
        try:
            sf.query("SELECT Nope FROM Nowhere")
        except Exception as exc:  # simple-salesforce's error: its text quotes the URL and body
            seen += [str(exc), repr(exc)]
        # same key, plain text in the argument
        sf2 = connect_jwt(username=username, consumer_key=consumer_key, private_key=plain.decode(),
                          login_url=org.login_url, verify=org.ca_file, cache=False)
        seen += [repr(sf2), repr(sf2.settings), repr(sf2.refresher)]
        with pytest.raises(ConsumerNotApprovedError) as refused:
            connect_jwt(username="unapproved@example.com", consumer_key=consumer_key,
                        private_key_file=str(key_file), private_key_passphrase=PASSPHRASE,
                        login_url=org.login_url, verify=org.ca_file, cache=False)
        seen += [str(refused.value), repr(refused.value), repr(refused.value.args)]
        assert "Manage Profiles" in str(refused.value) or "Edit Policies" in str(refused.value)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        clear_cache()

    cli_ran = importlib.util.find_spec("sfjwt_ext.cli") is not None
    if cli_ran:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
        env.update({"SF_USERNAME": username, "SF_CONSUMER_KEY": consumer_key, "SF_PRIVATE_KEY_FILE": str(key_file),
                    "SF_PRIVATE_KEY_PASSPHRASE": PASSPHRASE, "SF_LOGIN_URL": org.login_url,
                    "SF_CA_BUNDLE": org.ca_file, "SFJWT_CONFIG": str(tmp_path / "none.ini")})
        good = _run_cli(["check", "--verbose"], env)
        assert good.startswith("exit 0"), good
        seen.append(good)
        bad = _run_cli(["check", "--verbose"], dict(env, SF_USERNAME="unapproved@example.com"))
        assert not bad.startswith("exit 0"), bad
        seen.append(bad)

    seen += handler.lines + [caplog.text]
    assert any("oauth2/token" in line for line in handler.lines), "urllib3's DEBUG lines were not collected"
    haystack = "\n".join(seen)

    body_lines = {line for pem in (encrypted, plain, traditional)
                  for line in pem.decode().splitlines() if line and not line.startswith("-----")}
    assert body_lines
    leaked = [line for line in body_lines if line in haystack]
    assert not leaked, "a line of the private key is in the output"
    assert PASSPHRASE not in haystack
    assert not JWT_RE.search(haystack), "an assertion (JWT) is in the output"
    assert org.assertions, "the org saw no assertion"
    tokens = {s.token for s in org.sessions}
    assert len(tokens) >= 2  # the first session and the one after the refresh
    for token in tokens:
        assert token not in haystack
        assert token.split("!", 1)[1] not in haystack
    if not cli_ran:
        pytest.skip("everything but the CLI part was checked: sfjwt_ext.cli is not there yet")
