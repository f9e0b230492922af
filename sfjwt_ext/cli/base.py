"""What every command shares: exit codes, UsageError, the connection arguments, one-line
error text, and the --json failure document."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
EXIT_WAIT_EXPIRED = 5
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line mistake that argparse cannot see (exit 2)."""


def connection_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    names = {
        "username": "username", "consumer_key": "consumer_key", "key_file": "private_key_file",
        "domain": "domain", "login_url": "login_url", "profile": "profile",
    }
    return {target: getattr(args, source) for source, target in names.items() if getattr(args, source, None) is not None}


def err(message: str) -> None:
    print(message, file=sys.stderr)


def describe_error(exc: BaseException) -> str:
    from simple_salesforce.exceptions import SalesforceError

    from .._internal.redact import redact
    from ..errors import SfJwtError

    if isinstance(exc, (SfJwtError, UsageError)):
        return redact(str(exc))
    if isinstance(exc, Warning):  # python -W error (or PYTHONWARNINGS=error) raised a warning
        return redact(f"{exc} ({type(exc).__name__}, an error because of -W error / PYTHONWARNINGS)")
    if isinstance(exc, SalesforceError):
        content = getattr(exc, "content", None)
        if isinstance(content, list) and content and isinstance(content[0], dict):
            parts = [f"{c.get('errorCode', '?')}: {str(c.get('message', '')).strip()}" for c in content]
            return redact("Salesforce refused the call: " + "; ".join(parts))
        return redact(f"Salesforce refused the call (HTTP {getattr(exc, 'status', '?')}): {content}")
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        where = f" {exc.filename!r}" if exc.filename is not None else ""
        return redact(f"{exc.strerror or type(exc).__name__}:{where or ' ' + str(exc)}")
    return redact(f"unexpected {type(exc).__name__}: {exc} (a bug in sfjwt? --verbose shows where)")


def json_failure(args: argparse.Namespace, code: int, name: str, data: Dict[str, Any], message: str = "") -> None:
    if not getattr(args, "json", False):
        return
    from . import jsonout

    merged = dict(getattr(args, "report", {}) or {}, **data)
    jsonout.write(sys.stdout, jsonout.failure(code=code, name=name, message=message, command=args.command,
                                                  collected=args.collected, data=merged))
