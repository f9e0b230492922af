"""``sfjwt check``: the settings, the key, one real JWT login and, on a refusal, its causes."""
from __future__ import annotations

import argparse
import io
import os
import time
from typing import IO, Any, Dict

from simple_salesforce.api import DEFAULT_API_VERSION

from ..auth.keys import load_private_key
from .keypair import fingerprint, key_matches_certificate, load_certificate
from ..config import resolve_settings
from ..errors import AuthenticationError, InvalidClientIdError
from . import jsonout
from .admin import admin_session
from .base import EXIT_OK, UsageError, connection_arguments, describe_error
from .diagnose import causes, login_client


def cmd_check(args: argparse.Namespace, out: IO[str]) -> int:
    """Settings, key, then one real JWT login (never a cached one); on a refusal, with an
    admin session (--target-org / --instance-url), the causes read from the org. With
    --json, what it found goes into ``args.report``: the result, or the error's data."""
    stdout, report = out, args.report
    if getattr(args, "json", False):
        out = io.StringIO()  # the text report is not shown: the JSON document is
    settings = resolve_settings(**connection_arguments(args))
    report["settings"] = {n: {"value": v if src else None, "source": src or None} for n, v, src in settings.describe()}
    report["configFile"] = settings.config_file
    _check_settings_text(settings, out)
    settings.require()

    key = load_private_key(
        private_key=settings.private_key, private_key_file=settings.private_key_file,
        passphrase=settings.private_key_passphrase,
    )
    report["key"] = {"type": "RSA", "bits": key.key_size}
    out.write(f"key:          RSA {key.key_size} bits, OK\n")
    cert = _check_certificate(args, key, out) if args.cert else None
    client = login_client(settings, key)
    report.update(tokenUrl=client.target.token_url, loginUrl=client.login_url, audience=client.audience)
    out.write(f"token URL:    {client.target.token_url}\n")
    out.flush()
    started = time.monotonic()
    try:
        token = client.fetch()  # a real token request: no login cache, no token cache
    except AuthenticationError as exc:
        out.write(f"aud sent:     {client.audience}\n")
        if isinstance(exc, InvalidClientIdError):
            out.write("note:         a new or changed app can take up to ~10 minutes to apply; "
                      "if it was just made, run `sfjwt check` again later\n")
        _diagnose(args, settings, key, cert, out)
        raise
    finally:
        client.close()
    elapsed_ms = (time.monotonic() - started) * 1000.0
    report["login"] = {
        "username": settings.username, "userId": token.user_id, "orgId": token.org_id,
        "instanceUrl": token.instance_url, "apiVersion": str(settings.version or _default_version()),
        "timeMs": round(elapsed_ms),
    }
    _check_login_text(report, out)
    if getattr(args, "json", False):
        jsonout.write(stdout, jsonout.success(report, args.collected))
    return EXIT_OK


def _check_certificate(args: argparse.Namespace, key: Any, out: IO[str]) -> Any:
    """--cert: the certificate, checked against the key (UsageError when they differ)."""
    cert = load_certificate(args.cert)
    if not key_matches_certificate(key, cert):
        raise UsageError(
            f"the private key does not match the certificate {args.cert}: upload the .crt that "
            "was made with this key to the External Client App (Settings > Flow Enablement > Upload "
            "Files; a Connected App: 'Use digital signatures'), or pass the matching key with "
            "--key-file / SF_PRIVATE_KEY_FILE"
        )
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    args.report["certificate"] = {"file": args.cert, "matchesKey": True, "sha256": fingerprint(cert),
                                  "expires": f"{expires:%Y-%m-%dT%H:%M:%S}Z"}
    out.write(f"certificate:  {args.cert} matches the key (SHA-256 {fingerprint(cert)}, expires {expires:%Y-%m-%d})\n")
    return cert


def _check_settings_text(settings: Any, out: IO[str]) -> None:
    out.write("settings:\n")
    for name, shown, source in settings.describe():
        out.write(f"  {name:<24} {shown}{f'   [{source}]' if source else ''}\n")
    if settings.config_file is not None:
        found = "" if os.path.exists(settings.config_file) else ", not found"
        out.write(f"  (profile file: {settings.config_file}{found})\n")


def _check_login_text(report: Dict[str, Any], out: IO[str]) -> None:
    login = report["login"]
    out.write("login:        OK\n")
    out.write(f"  user:         {login['username']}\n")
    out.write(f"  user id:      {login['userId'] or '?'}\n")
    out.write(f"  org id:       {login['orgId'] or '?'}\n")
    out.write(f"  instance URL: {login['instanceUrl']}\n")
    out.write(f"  API version:  {login['apiVersion']}\n")
    out.write(f"  login host:   {report['loginUrl']}\n")
    out.write(f"  aud sent:     {report['audience']}\n")
    out.write(f"  time:         {login['timeMs']} ms\n")


def _default_version() -> str:
    return str(DEFAULT_API_VERSION)


def _diagnose(args: argparse.Namespace, settings: Any, key: Any, cert: Any, out: IO[str]) -> None:
    """With an admin session: print every cause of the refusal that holds in the org."""
    if not (getattr(args, "target_org", None) or getattr(args, "instance_url", None)):
        out.write("why:          add --target-org ALIAS (an admin's Salesforce CLI login) to read the app and "
                  "the user and name the cause\n")
        return
    try:
        admin = admin_session(target_org=args.target_org, instance_url=args.instance_url)
        found = causes(admin, consumer_key=str(settings.consumer_key), username=str(settings.username),
                       key=key, cert=cert)
    except Exception as exc:  # the login failure stays the error; say why there is no diagnosis
        out.write(f"why:          cannot read the org with the admin session: {describe_error(exc)}\n")
        return
    if not found:
        out.write("why:          the app, its certificate and the user look right in the org: Salesforce may "
                  "still be applying a change (up to ~10 minutes), or see Setup > Users > the user > Login History\n")
    for cause in found:
        out.write(f"cause:        {cause}\n")
    args.report["causes"] = [str(cause) for cause in found]
