"""The ``sfjwt`` command (also ``python -m sfjwt_ext``).

    sfjwt keygen [--out DIR] [--name salesforce] [--days N] [--bits 2048|3072|4096]
                 [--passphrase-env VAR] [--force]
    sfjwt check  [--cert FILE] [--target-org ALIAS | --instance-url URL] [--json]
    sfjwt setup  [--target-org ALIAS | --instance-url URL] [--username USER] [--app-name NAME]
                 [--permission-set NAME] [--key-file FILE] [--out DIR] [--profile NAME]
                 [--dry-run DIR] [--wait SECONDS | --no-wait] [--json]
    sfjwt query  [SOQL | -] [--include-deleted] [--limit-pages N]
                 [--format table|csv|json|jsonl|parquet] [--output FILE] [--json]
    sfjwt demo
    sfjwt cache  list|clear [--folder DIR] [--json]

Connection options (--username, --consumer-key/--client-id, --key-file/--jwt-key-file,
--domain, --login-url, --profile) only on the commands that use them (``USES``); the
Salesforce CLI's names are aliases (query: --instance-url, --result-format, --output-file).
``--json``: one JSON document on stdout (:mod:`sfjwt_ext.cli.jsonout`), errors too.

Exit codes: 0 success; 1 Salesforce refused an API call (e.g. ``MALFORMED_QUERY``, its
message quoted); 2 settings, key, file or usage problems (a missing setting, a bad key, a
``--cert`` / ``--out`` / ``--output`` path that cannot be read or written); 3 Salesforce
refused the login; 4 the token endpoint (or the instance) could not be reached or kept failing
(connection errors, timeouts, 5xx, 429); 5 ``setup``'s wait for a working login ran out;
130 interrupted. No traceback for expected failures;
``--verbose`` shows one, and DEBUG logs (secrets masked). Nothing ever prompts.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import IO, Any, Callable, Dict, Optional, Sequence, Tuple, cast

from .base import (EXIT_API, EXIT_AUTH, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_WAIT_EXPIRED,
                   UsageError, describe_error, err, json_failure)
from .parser import ArgumentsRefused, build_parser, check_options_apply, refuse_extras

__all__ = ["main", "build_parser", "UsageError", "EXIT_OK", "EXIT_API", "EXIT_USAGE", "EXIT_AUTH", "EXIT_UNAVAILABLE",
           "EXIT_WAIT_EXPIRED", "EXIT_INTERRUPTED"]


def _setup_logging(verbose: bool) -> None:
    if not verbose:
        return
    from .._internal.redact import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("sfjwt_ext")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _exit_code(exc: BaseException) -> int:
    from simple_salesforce.exceptions import SalesforceError

    from ..errors import AuthenticationError, ConfigurationError, PrivateKeyError, TokenEndpointUnavailable

    if isinstance(exc, (ConfigurationError, PrivateKeyError, UsageError, Warning)):  # a Warning: -W error
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, TokenEndpointUnavailable):
        return EXIT_UNAVAILABLE
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return EXIT_UNAVAILABLE
    if isinstance(exc, SalesforceError):
        return EXIT_API
    if isinstance(exc, OSError):  # a local file: --out, --output, --cert ... (not the network)
        return EXIT_USAGE
    return EXIT_API


def _prefix(exc: BaseException, code: int) -> str:
    from ..errors import TokenEndpointUnavailable

    if code == EXIT_AUTH:
        return "login refused"
    if code == EXIT_UNAVAILABLE:
        return "token endpoint unavailable" if isinstance(exc, TokenEndpointUnavailable) else "cannot reach Salesforce"
    return "error"


#: The commands, each in its own module (imported only when it runs, so ``--help`` stays argparse-only).
COMMANDS = ("keygen", "check", "setup", "query", "demo", "cache")


def _command(name: str) -> Callable[[argparse.Namespace, IO[str]], int]:
    module = importlib.import_module(f"{__name__}.{name}")
    return cast(Callable[[argparse.Namespace, IO[str]], int], getattr(module, f"cmd_{name}"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    words = list(argv) if argv is not None else sys.argv[1:]
    try:
        args, extras = parser.parse_known_args(words)
        if extras:
            refuse_extras(parser, args, extras)
    except SystemExit as exc:  # --help, --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except ArgumentsRefused as exc:  # already printed on stderr
        if "--json" in (words[: words.index("--")] if "--" in words else words):
            from . import jsonout

            command = next((word for word in words if word in COMMANDS), "sfjwt")
            jsonout.write(sys.stdout, jsonout.failure(code=EXIT_USAGE, name="UsageError", message=str(exc),
                                                      command=command, collected=jsonout.Warnings()))
        return EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _setup_logging(verbose)
    return _run(args, verbose)


def _run(args: argparse.Namespace, verbose: bool) -> int:
    """The command, its warnings on one line each, its failures as one message (and with
    --json one JSON document on stdout) and an exit code."""
    from .jsonout import Warnings, one_line_warnings

    args.collected = Warnings(quiet=verbose)
    args.report = {}  # what a command found so far: the "data" of a --json error document
    try:
        with one_line_warnings(args.collected):
            check_options_apply(args)
            return _command(args.command)(args, sys.stdout)
    except KeyboardInterrupt:
        err("interrupted")
        json_failure(args, EXIT_INTERRUPTED, "Interrupted", {}, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (sfjwt query ... | head): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is quiet
        except OSError:  # pragma: no cover
            pass
        return EXIT_OK
    except Exception as exc:  # every expected failure is one of ours or simple-salesforce's
        code = _exit_code(exc)
        if verbose:
            traceback.print_exc(file=sys.stderr)
        message = describe_error(exc)
        err(f"sfjwt {args.command}: {_prefix(exc, code)}: {message}")
        if not verbose:
            err("(run with --verbose for details)")
        json_failure(args, code, *_error_name_and_data(exc), message)
        return code


def _error_name_and_data(exc: BaseException) -> Tuple[str, Dict[str, Any]]:
    """The error's name in a --json document: Salesforce's errorCode (INVALID_FIELD ...), as
    ``sf`` gives it, else our exception's class name."""
    from simple_salesforce.exceptions import SalesforceError

    from .._internal.redact import redact

    content = getattr(exc, "content", None) if isinstance(exc, SalesforceError) else None
    if isinstance(content, list) and content and isinstance(content[0], dict) and content[0].get("errorCode"):
        first = content[0]
        return str(first["errorCode"]), {"errorCode": first["errorCode"], "message": redact(first.get("message", ""))}
    return type(exc).__name__, {}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
