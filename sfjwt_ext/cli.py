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
``--json``: one JSON document on stdout (:mod:`sfjwt_ext._cli_json`), errors too.

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
import io
import logging
import os
import sys
import time
import traceback
from typing import IO, Any, Dict, NoReturn, Optional, Sequence, Tuple
from urllib.parse import urlencode

from ._version import __version__

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_API", "EXIT_USAGE", "EXIT_AUTH", "EXIT_UNAVAILABLE"]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
EXIT_WAIT_EXPIRED = 5
EXIT_INTERRUPTED = 130

EXAMPLES = """\
examples:
  sfjwt setup --target-org my-admin             # an External Client App + a profile, from an admin's sf login
  sfjwt demo                                    # the whole flow against a local org, no account needed
  sfjwt keygen --out ~/.sfjwt                   # salesforce.key + salesforce.crt, then the Setup steps
  export SF_USERNAME=you@acme.com SF_CONSUMER_KEY=3MVG9... SF_PRIVATE_KEY_FILE=~/.sfjwt/salesforce.key
  sfjwt check --cert ~/.sfjwt/salesforce.crt    # settings, key, login: what to fix if it fails
  sfjwt query "SELECT Id, Name, Account.Name FROM Contact" --format csv > contacts.csv
  echo "SELECT COUNT() FROM Account" | sfjwt --profile uat query -
  sfjwt cache list                              # logins shared by processes (token_cache=, SF_TOKEN_CACHE)

settings come from the options, else SF_* environment variables, else the profile
(~/.config/sfjwt/config.ini, or SFJWT_CONFIG). exit codes: 0 ok, 1 API error (e.g.
MALFORMED_QUERY), 2 settings, key, file or usage, 3 login refused by Salesforce,
4 token endpoint unreachable or failing, 5 setup's wait ran out, 130 interrupted.
"""

APP_STEPS = """\
Next, in Salesforce Setup (or let `sfjwt setup --target-org ALIAS --key-file {key}` do all of it):
  1. Quick Find "External Client App Manager" > New External Client App: a name, your contact
     email, Distribution State "Local". Enable OAuth; Callback URL http://localhost:1717/OauthRedirect
     (unused by JWT); OAuth Scopes "Manage user data via APIs (api)" and
     "Perform requests at any time (refresh_token, offline_access)";
     Flow Enablement: "Enable JWT Bearer Flow", Upload Files: {crt}. Create.
  2. The app's Policies tab > Edit Policies:
     Permitted Users = "Admin approved users are pre-authorized",
     then select the Profiles or Permission Sets of the users who will log in. Save.
  3. The app's Settings tab > OAuth Settings > Consumer Key and Secret: copy the Consumer Key.
  4. export SF_USERNAME=... SF_CONSUMER_KEY=... SF_PRIVATE_KEY_FILE={key}
     then run: sfjwt check --cert {crt}   (a new app can take up to ~10 minutes to apply)
An existing Connected App works the same way (Setup > App Manager): "Use digital signatures"
with {crt}, Manage > Edit Policies, Manage Profiles / Permission Sets, Manage Consumer Details.
"""


class UsageError(Exception):
    """A command-line mistake that argparse cannot see (exit 2)."""


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------
class _ArgumentsRefused(Exception):
    """argparse refused the command line (already printed on stderr): exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused command line raises (main() writes the --json error document
    and returns 2) instead of exiting from inside the parser."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise _ArgumentsRefused(message)


#: The connection options: dest -> (flag, the Salesforce CLI's name for it or "", help).
CONNECTION_OPTIONS: Dict[str, Tuple[str, str, str, str]] = {
    "username": ("--username", "", "NAME", "Salesforce username (SF_USERNAME)"),
    "consumer_key": ("--consumer-key", "--client-id", "KEY", "the app's consumer key (SF_CONSUMER_KEY)"),
    "key_file": ("--key-file", "--jwt-key-file", "FILE", "PEM private key file (SF_PRIVATE_KEY_FILE)"),
    "domain": ("--domain", "", "DOMAIN", "login, test, acme.my, or a host (SF_DOMAIN)"),
    "login_url": ("--login-url", "--instance-url", "URL",
                  "login host, e.g. https://acme.my.salesforce.com (SF_LOGIN_URL)"),
    "profile": ("--profile", "", "NAME", "profile of the config file (SF_PROFILE)"),
}
_LOGIN = ("username", "consumer_key", "key_file", "domain", "login_url", "profile")
#: The connection options each command uses: it lists only these, and refuses the others
#: (also given before the command).
USES: Dict[str, Tuple[str, ...]] = {
    "check": _LOGIN, "query": _LOGIN, "setup": ("username", "key_file", "profile"), "cache": ("profile",),
    "keygen": (), "demo": (),
}
_NOT_FOR = {
    "setup": "setup makes the app and writes the profile's consumer key and login URL itself",
}


def _general_options(parser: argparse.ArgumentParser) -> None:
    s = argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=s, help="DEBUG logs (secrets masked) and tracebacks")
    parser.add_argument("--version", action="version", version=f"sfjwt {__version__}")


def _connection_group(parser: argparse.ArgumentParser, dests: Sequence[str], *, instance_url_alias: bool,
                      title: str = "connection (else SF_* environment variables, else the profile)",
                      description: Optional[str] = None) -> None:
    """The connection options ``dests``, each with its Salesforce CLI alias (``--client-id``
    ...); ``--instance-url`` only where it is not an admin session's option (check, setup).
    SUPPRESS defaults: a value given before or after the command is never overwritten by
    the other parser's default."""
    if not dests:
        return
    group = parser.add_argument_group(title, description)
    for dest in dests:
        flag, alias, metavar, text = CONNECTION_OPTIONS[dest]
        names = [flag] + ([alias] if alias and (alias != "--instance-url" or instance_url_alias) else [])
        group.add_argument(*names, dest=dest, default=argparse.SUPPRESS, metavar=metavar, help=text)


#: The commands that take --json.
JSON_COMMANDS = ("check", "query", "cache", "setup")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="one JSON document on stdout ({status, result, warnings}, as the Salesforce CLI); "
                             "errors too, with the same exit codes")


def _not_applicable(flag: str, dest: str, command: str) -> str:
    users = JSON_COMMANDS if dest == "json" else tuple(name for name, dests in USES.items() if dest in dests)
    why = "it is for " + ", ".join(users) if dest == "json" else _NOT_FOR.get(command, "it is for " + ", ".join(users))
    return f"{flag} does not apply to `sfjwt {command}`: {why}"


def _check_options_apply(args: argparse.Namespace) -> None:
    """A connection option (or --json) given before a command that does not use it is refused."""
    for dest, (flag, _alias, _metavar, _text) in CONNECTION_OPTIONS.items():
        if hasattr(args, dest) and dest not in USES[args.command]:
            raise UsageError(_not_applicable(flag, dest, args.command))
    if getattr(args, "json", False) and args.command not in JSON_COMMANDS:
        raise UsageError(_not_applicable("--json", "json", args.command))


def _refuse_extras(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> NoReturn:
    """Words after the command that it does not take: a connection option (or --json) is
    named as such ("--username does not apply to `sfjwt keygen`"), anything else is argparse's
    "unrecognized arguments"."""
    flags = {name: dest for dest, (flag, alias, _m, _t) in CONNECTION_OPTIONS.items() for name in (flag, alias) if name}
    flags["--json"] = "json"
    for word in extras:
        name = word.split("=", 1)[0]
        if name in flags and args.command:
            parser.error(_not_applicable(name, flags[name], args.command))
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="sfjwt",
        description="Salesforce OAuth 2.0 JWT bearer login: make keys, diagnose a setup, run SOQL.",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    _general_options(parser)
    _connection_group(parser, _LOGIN, instance_url_alias=False,
                      title="connection", description="  Before or after the command, else SF_* environment variables, else the profile.\n"
                                  "  check and query take them all; setup --username, --key-file, --profile;\n"
                                  "  cache --profile; keygen and demo none (`sfjwt COMMAND --help` lists each one's).")
    _json_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = sub.add_parser(
        "keygen", formatter_class=formatter,
        help="make a private key and a self-signed certificate for the Connected App",
        description="Write NAME.key (private key, mode 0600) and NAME.crt (self-signed X.509, "
                    "SHA-256) and print the Connected App steps.",
        epilog="example:\n  sfjwt keygen --out ~/.sfjwt --days 730",
    )
    keygen.add_argument("--out", default=".", metavar="DIR", help="folder to write to (default: .)")
    keygen.add_argument("--name", type=_file_name, default="salesforce", help="file name without extension (default: salesforce)")
    keygen.add_argument("--days", type=_days, default=730, metavar="N", help="certificate validity, 1 to 36500 (default: 730)")
    keygen.add_argument("--bits", type=int, choices=(2048, 3072, 4096), default=2048, help="RSA key size (default: 2048)")
    keygen.add_argument("--passphrase-env", metavar="VAR", help="encrypt the key with the passphrase in this environment variable")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")

    check = sub.add_parser(
        "check", formatter_class=formatter,
        help="show the settings, check the key, log in, and say what to fix",
        description="The doctor: every setting and where it came from (secrets masked), the key "
                    "(and that it matches --cert), the login host and aud, then a login.",
        epilog="example:\n  sfjwt check --cert ~/.sfjwt/salesforce.crt",
    )
    check.add_argument("--cert", metavar="FILE", help="the certificate uploaded to the External Client App")
    _admin_options(check, "on a refused login, read the app and the user with an admin's session: ")

    setup = sub.add_parser(
        "setup", formatter_class=formatter,
        help="make (or update) an External Client App and a profile from an admin's session",
        description="Deploy an External Client App for the JWT bearer flow through the Metadata API (a "
                    "new key and certificate unless --key-file; scopes api, refresh_token; admin-approved "
                    "users pre-authorized through a permission set, created and assigned to --username), "
                    "read back its consumer key, write the profile that connect_jwt(profile=...) reads, "
                    "then log in by JWT until it works. Run it again to update the same app.",
        epilog="examples:\n  sf org login web --alias my-admin && sfjwt setup --target-org my-admin\n"
               "  sfjwt setup --target-org my-admin --username etl@acme.com --app-name acme_etl --profile etl\n"
               "  SF_ADMIN_ACCESS_TOKEN=... sfjwt setup --instance-url https://acme.my.salesforce.com\n"
               "  sfjwt setup --dry-run eca-package --username etl@acme.com   # then: sf project deploy start "
               "--metadata-dir eca-package",
    )
    _admin_options(setup, "")
    setup.add_argument("--app-name", default="sfjwt", metavar="NAME",
                       help="the External Client App's API name (default: sfjwt); an existing one is updated")
    setup.add_argument("--permission-set", metavar="NAME",
                       help="pre-authorizes the app's users; created if missing (default: <app name>_users)")
    setup.add_argument("--out", metavar="DIR",
                       help="where a new <app name>.key (0600) and .crt go (default: the profile file's folder)")
    setup.add_argument("--dry-run", metavar="DIR",
                       help="only write the Metadata API package (and a new key) into DIR: nothing is deployed")
    wait = setup.add_mutually_exclusive_group()
    wait.add_argument("--wait", type=_seconds, default=900.0, metavar="SECONDS",
                      help="wait up to SECONDS for a JWT login to work (default: 900)")
    wait.add_argument("--no-wait", dest="wait", action="store_const", const=None,
                      help="do not log in at the end")

    query = sub.add_parser(
        "query", formatter_class=formatter,
        help="run SOQL and print every page",
        description="Run SOQL, fetch every page (streaming) and print flat rows (Account.Name "
                    "columns). In csv/json/jsonl, stdout holds only the data.",
        epilog='examples:\n  sfjwt query "SELECT Id, Name FROM Account" --format csv\n'
               "  sfjwt query - --format jsonl < accounts.soql",
    )
    query.add_argument("soql", nargs="?", default="-", help="the SOQL query; '-' or nothing reads it from stdin")
    query.add_argument("--include-deleted", action="store_true", help="queryAll: deleted and archived records too")
    query.add_argument("--limit-pages", type=_positive_int, metavar="N", help="stop after N pages")
    query.add_argument("--format", "--result-format", dest="format", choices=("table", "csv", "json", "jsonl", "parquet"),
                       type=lambda text: "table" if text == "human" else text,  # sf's name for the table
                       help="output format (default: table; 'human' as in sf is table); parquet needs --output "
                            "FILE and pyarrow")
    query.add_argument("--output", "--output-file", dest="output", metavar="FILE",
                       help="write the data to FILE instead of stdout")

    cache = sub.add_parser(
        "cache", formatter_class=formatter,
        help="list or clear the token cache shared by processes (token_cache=, SF_TOKEN_CACHE)",
        description="The on-disk token cache: 'list' shows each cached login (user, instance, org, "
                    "age; never a token), 'clear' removes them. The folder: --folder, else "
                    "SF_TOKEN_CACHE or the profile's token_cache when it is a path, else the "
                    "user's cache folder.",
        epilog="examples:\n  sfjwt cache list\n  SF_TOKEN_CACHE=/srv/jobs/tokens sfjwt cache clear",
    )
    cache.add_argument("action", choices=("list", "clear"), help="list the cached logins, or remove them")
    cache.add_argument("--folder", metavar="DIR", help="the token cache folder (default: see above)")

    sub.add_parser(
        "demo", formatter_class=formatter,
        help="the whole flow against a local org: no account, no network",
        description="Start a local Salesforce org on 127.0.0.1 with sample data, make a key and a "
                    "Connected App, log in with connect_jwt, query, expire the session and watch "
                    "the client log in again by itself; then stop everything.",
    )
    for name, command in sub.choices.items():  # each command lists only the options it uses
        _general_options(command)
        _connection_group(command, USES[name], instance_url_alias=name == "query")
        if name in JSON_COMMANDS:
            _json_option(command)
    return parser


def _admin_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    group = parser.add_argument_group("admin session")
    group.add_argument("--target-org", metavar="ALIAS", help=prefix + "an admin's Salesforce CLI login "
                       "(alias or username; sf on PATH)")
    group.add_argument("--instance-url", metavar="URL", help=prefix + "the admin's instance, with the "
                       "admin's access token in SF_ADMIN_ACCESS_TOKEN (never on the command line), as "
                       "`sf org login access-token --instance-url`" + ("; the JWT login host is --login-url" if prefix else ""))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more seconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _days(text: str) -> int:
    from .auth.keys import MAX_DAYS

    value = _positive_int(text)
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than {MAX_DAYS} days (100 years): a certificate cannot be valid past "
            "the year 9999, and a new one can be uploaded at any time"
        )
    return value


def _file_name(text: str) -> str:
    from .errors import ConfigurationError
    from .auth.keys import check_pair_name

    try:
        check_pair_name(text)
    except ConfigurationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name: give the name without folder or extension (--name prod "
            "writes prod.key and prod.crt) and the folder with --out"
        ) from None
    return text


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _connection_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    names = {
        "username": "username", "consumer_key": "consumer_key", "key_file": "private_key_file",
        "domain": "domain", "login_url": "login_url", "profile": "profile",
    }
    return {target: getattr(args, source) for source, target in names.items() if getattr(args, source, None) is not None}


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _setup_logging(verbose: bool) -> None:
    if not verbose:
        return
    from ._internal.redact import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("sfjwt_ext")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _exit_code(exc: BaseException) -> int:
    from simple_salesforce.exceptions import SalesforceError

    from .errors import AuthenticationError, ConfigurationError, PrivateKeyError, TokenEndpointUnavailable

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


def _describe_error(exc: BaseException) -> str:
    from simple_salesforce.exceptions import SalesforceError

    from ._internal.redact import redact
    from .errors import SfJwtError

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


def _prefix(exc: BaseException, code: int) -> str:
    from .errors import TokenEndpointUnavailable

    if code == EXIT_AUTH:
        return "login refused"
    if code == EXIT_UNAVAILABLE:
        return "token endpoint unavailable" if isinstance(exc, TokenEndpointUnavailable) else "cannot reach Salesforce"
    return "error"


# ---------------------------------------------------------------------------------------
# keygen
# ---------------------------------------------------------------------------------------
def cmd_keygen(args: argparse.Namespace, out: IO[str]) -> int:
    from .errors import ConfigurationError
    from .auth.keys import KeyPairExistsError, fingerprint, load_certificate, write_key_pair

    passphrase: Optional[str] = None
    if args.passphrase_env:
        passphrase = os.environ.get(args.passphrase_env)
        if not passphrase:
            raise UsageError(
                f"--passphrase-env {args.passphrase_env}: that environment variable is not set or "
                f"is empty: export {args.passphrase_env}=... first (the passphrase never goes on the "
                "command line)"
            )
    try:
        key_path, cert_path = write_key_pair(
            args.out, args.name, bits=args.bits, days=args.days, passphrase=passphrase, force=args.force,
        )
    except KeyPairExistsError as exc:  # in CLI terms: --force, not force=True
        raise UsageError(
            f"{' and '.join(repr(p) for p in exc.paths)} already exist{'s' if len(exc.paths) == 1 else ''}: "
            "pass --force to replace, or choose another --name / --out"
        ) from None
    except ConfigurationError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot write the key pair into --out {args.out!r}: {exc.strerror or exc}") from exc
    cert = load_certificate(cert_path)
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    out.write(f"private key:  {key_path}  (RSA {args.bits} bits, mode 0600{', encrypted' if passphrase else ''}: keep it secret)\n")
    out.write(f"certificate:  {cert_path}  (upload this one to Salesforce)\n")
    out.write(f"  SHA-256 fingerprint: {fingerprint(cert)}\n")
    out.write(f"  expires:             {expires:%Y-%m-%d %H:%M} UTC\n\n")
    out.write(APP_STEPS.format(crt=cert_path, key=key_path))
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace, out: IO[str]) -> int:
    """Settings, key, then one real JWT login (never a cached one); on a refusal, with an
    admin session (--target-org / --instance-url), the causes read from the org. With
    --json, what it found goes into ``args.report``: the result, or the error's data."""
    from .diagnose import login_client
    from .errors import AuthenticationError, InvalidClientIdError
    from .auth.keys import load_private_key
    from .config import resolve_settings

    stdout, report = out, args.report
    if getattr(args, "json", False):
        out = io.StringIO()  # the text report is not shown: the JSON document is
    settings = resolve_settings(**_connection_arguments(args))
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
        from . import _cli_json

        _cli_json.write(stdout, _cli_json.success(report, args.collected))
    return EXIT_OK


def _check_certificate(args: argparse.Namespace, key: Any, out: IO[str]) -> Any:
    """--cert: the certificate, checked against the key (UsageError when they differ)."""
    from .auth.keys import fingerprint, key_matches_certificate, load_certificate

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
    from simple_salesforce.api import DEFAULT_API_VERSION

    return str(DEFAULT_API_VERSION)


def _diagnose(args: argparse.Namespace, settings: Any, key: Any, cert: Any, out: IO[str]) -> None:
    """With an admin session: print every cause of the refusal that holds in the org."""
    from .admin import admin_session
    from .diagnose import causes

    if not (getattr(args, "target_org", None) or getattr(args, "instance_url", None)):
        out.write("why:          add --target-org ALIAS (an admin's Salesforce CLI login) to read the app and "
                  "the user and name the cause\n")
        return
    try:
        admin = admin_session(target_org=args.target_org, instance_url=args.instance_url)
        found = causes(admin, consumer_key=str(settings.consumer_key), username=str(settings.username),
                       key=key, cert=cert)
    except Exception as exc:  # the login failure stays the error; say why there is no diagnosis
        out.write(f"why:          cannot read the org with the admin session: {_describe_error(exc)}\n")
        return
    if not found:
        out.write("why:          the app, its certificate and the user look right in the org: Salesforce may "
                  "still be applying a change (up to ~10 minutes), or see Setup > Users > the user > Login History\n")
    for cause in found:
        out.write(f"cause:        {cause}\n")
    args.report["causes"] = [str(cause) for cause in found]


# ---------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------
def cmd_setup(args: argparse.Namespace, out: IO[str]) -> int:
    from .eca_setup import SetupOptions, WaitTimeout, run_setup

    options = SetupOptions(
        target_org=args.target_org, instance_url=args.instance_url, username=getattr(args, "username", None),
        app_name=args.app_name, permission_set=args.permission_set, key_file=getattr(args, "key_file", None),
        out=args.out, profile=getattr(args, "profile", None) or "default", dry_run=args.dry_run, wait=args.wait,
    )
    started = time.monotonic()
    try:
        result = run_setup(options, err=sys.stderr)
    except WaitTimeout as exc:
        _err(f"sfjwt setup: {_describe_error(exc)}")
        _json_failure(args, EXIT_WAIT_EXPIRED, "WaitTimeout", {}, _describe_error(exc))
        return EXIT_WAIT_EXPIRED
    if getattr(args, "json", False):
        from . import _cli_json

        _cli_json.write(out, _cli_json.success(_setup_result(result, options, time.monotonic() - started),
                                               args.collected))
        return EXIT_OK
    _setup_report(result, options, out, time.monotonic() - started)
    return EXIT_OK


def _setup_result(result: Any, options: Any, elapsed: float) -> Dict[str, Any]:
    """setup's --json result: what the text report shows, by name (never a secret: the
    consumer key is not one; the private key is a path)."""
    if result.package_dir:
        return {"dryRun": True, "packageDir": result.package_dir, "appName": result.app_name,
                "consumerKey": result.consumer_key, "privateKeyFile": result.key_file, "username": result.username,
                "permissionSet": options.permission_set or result.app_name + "_users"}
    return {
        "dryRun": False, "appName": result.app_name, "created": result.created, "consumerKey": result.consumer_key,
        "username": result.username, "privateKeyFile": result.key_file, "certificateFile": result.certificate_file,
        "profile": result.profile, "configFile": result.config_file, "loginUrl": result.login_url,
        "loggedIn": result.logged_in if options.wait is not None else None, "tokenRequests": result.token_requests,
        "timeSeconds": round(elapsed, 1),
    }


def _setup_report(result: Any, options: Any, out: IO[str], elapsed: float) -> None:
    if result.package_dir:
        out.write(f"package:       {result.package_dir} (package.xml + the External Client App {result.app_name!r})\n")
        out.write(f"consumer key:  {result.consumer_key}\n")
        out.write(f"private key:   {result.key_file}\n")
        out.write("nothing was deployed. Next:\n"
                  f"  sf project deploy start --metadata-dir {result.package_dir} --target-org ALIAS\n"
                  f"  sf org assign permset --name {options.permission_set or result.app_name + '_users'} "
                  f"--on-behalf-of {result.username} --target-org ALIAS\n")
        return
    out.write(f"app:           {result.app_name} ({'created' if result.created else 'updated'})\n")
    out.write(f"consumer key:  {result.consumer_key}\n")
    out.write(f"user:          {result.username}\n")
    out.write(f"private key:   {result.key_file}\n")
    if result.certificate_file:
        out.write(f"certificate:   {result.certificate_file}\n")
    out.write(f"profile:       [{result.profile}] in {result.config_file}\n")
    out.write(f"login URL:     {result.login_url}\n")
    if options.wait is None:
        out.write("login:         not tried (--no-wait)\n")
    else:
        out.write(f"login:         OK ({result.token_requests} token request{'s' if result.token_requests != 1 else ''})\n")
    out.write(f"time:          {elapsed:.1f} s\n")
    profile = "" if result.profile == "default" else f" --profile {result.profile}"
    call = "" if result.profile == "default" else f'profile="{result.profile}"'
    out.write(f"next:          sfjwt check{profile}\n"
              f"               python -c 'from sfjwt_ext import connect_jwt; print(connect_jwt({call}).query(\"SELECT Id FROM User LIMIT 1\"))'\n")


# ---------------------------------------------------------------------------------------
# query
# ---------------------------------------------------------------------------------------
class _Progress:
    """A one-line record counter on stderr, only when stderr is a terminal."""

    def __init__(self, total: Optional[int]) -> None:
        self.total = total
        self.done = 0
        self.shown = False

    def update(self, n: int) -> None:
        self.done += n
        of = f"/{self.total}" if self.total is not None else ""
        sys.stderr.write(f"\r{self.done}{of} records")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


#: Salesforce refuses a REST request whose URI and headers together pass 16,384 bytes
#: (HTTP 414 or 431, an HTML page; Salesforce Help 000386264). ``sf.query`` sends the SOQL
#: in the URL of a GET, so a longer query is refused here, before any connection. The room
#: is for the host, the path and the headers (the bearer token, the user agent ...).
QUERY_URI_LIMIT = 16_384
_QUERY_URI_ROOM = 1_000


def _read_soql(args: argparse.Namespace) -> str:
    soql: Optional[str] = args.soql
    if soql in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "no SOQL given: pass it as an argument (sfjwt query \"SELECT Id FROM Account\") or "
                "pipe it in (sfjwt query - < query.soql)"
            )
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        if isinstance(data, bytes):
            try:
                soql = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"the SOQL on stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                    f"{exc.start}): save the query as UTF-8 (e.g. `iconv -f latin1 -t utf-8 "
                    "query.soql`)"
                ) from None
        else:
            soql = data
    try:
        soql.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes in argv come as lone surrogates
        raise UsageError(
            f"the SOQL argument is not valid UTF-8 (at character {exc.start}): pass it as UTF-8 text, "
            "or pipe a UTF-8 file in (sfjwt query - < query.soql)"
        ) from None
    soql = soql.strip()
    if not soql:
        raise UsageError("the SOQL query is empty: pass e.g. sfjwt query \"SELECT Id, Name FROM Account\"")
    encoded = len(urlencode({"q": soql}))
    if encoded + _QUERY_URI_ROOM > QUERY_URI_LIMIT:
        raise UsageError(
            f"the query is too long for a GET: {len(soql):,} characters, {encoded:,} bytes in the URL, "
            f"and Salesforce refuses a request whose URI and headers pass {QUERY_URI_LIMIT:,} bytes; "
            "shorten it (fewer fields, split a long IN (...) list over several queries) or run it "
            "as a Bulk API 2.0 query job (sf.bulk2), which sends the SOQL in the request body"
        )
    return soql


def _show_progress(args: argparse.Namespace, out: IO[str]) -> bool:
    """A progress line on stderr only when stderr is a terminal, and not when the rows are
    being printed on that same terminal as they arrive (they would tangle)."""
    if not _isatty(sys.stderr):
        return False
    return bool(args.output) or args.format == "table" or not _isatty(out)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def cmd_query(args: argparse.Namespace, out: IO[str]) -> int:
    """Rows are written as each page arrives (the next page is fetched while one is written):
    nothing but the current page is held, except by the table format, which keeps at most
    ``TABLE_MAX_ROWS`` and then stops fetching. ``--output`` is checked before the login
    and goes through a temporary file renamed at the end (:class:`~sfjwt_ext._internal.outfile.OutputFile`),
    made only once Salesforce has answered the first page: a failure at any point leaves an
    existing file byte for byte as it was. With --json: :func:`_query_json`."""
    soql = _read_soql(args)
    if getattr(args, "json", False):
        return _query_json(args, soql, out)
    args.format = args.format or "table"
    if args.format == "parquet":
        return _query_parquet(args, soql)
    return _query_rows(args, soql, out)


def _query_rows(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    from ._cli_output import make_writer
    from ._internal.outfile import OutputFile
    from .client import connect_jwt
    from .data.records import QueryPages, RowPlan

    output = OutputFile(args.output, named="--output") if args.output else None
    sf = connect_jwt(**_connection_arguments(args))
    plan = RowPlan(soql)  # the SELECT list's columns; the records' own keys for FIELDS() / TYPEOF
    is_count = plan.query is not None and plan.query.is_count

    fetch = QueryPages(sf, soql, args.include_deleted)
    result = fetch.first()
    target: IO[str] = out if output is None else output.open()
    writer = None
    pages = 0
    progress: Optional[_Progress] = None
    total: Optional[int] = None
    stopped = ""
    try:
        while True:
            pages += 1
            total = result.get("totalSize")
            records = result.get("records") or []
            if is_count and not records:
                records = [{"count": total}]
            next_url = result.get("nextRecordsUrl")
            rows_after = (writer.rows if writer is not None else 0) + len(records)
            prefetched = bool(next_url) and not result.get("done", True) and _wants_next_page(args, pages, rows_after)
            if prefetched and next_url:
                fetch.prefetch(next_url)  # the next page travels while this one is written
            if records and writer is None:
                # the SELECT list's order, the API's spelling of each name (select id -> Id)
                writer = make_writer(args.format, target, plan.start(records))
            if writer is not None:
                for values in plan.rows(records):
                    writer.write(values)
            if progress is None and not result.get("done", True) and _show_progress(args, out):
                progress = _Progress(total)
            if progress is not None:
                progress.update(len(records))
            if result.get("done", True) or not next_url:
                break
            if writer is not None and writer.full:  # the table's cap, and more pages remain
                writer.truncated = True
                break
            if args.limit_pages is not None and pages >= args.limit_pages:
                stopped = "limit"
                break
            result = fetch.take() if prefetched else fetch.more(next_url)
        if writer is None:
            writer = make_writer(args.format, target, plan.columns or [])
        writer.close()
        if output is not None:
            output.commit()
    finally:
        fetch.close()
        if progress is not None:
            progress.close()
        if output is not None:
            output.discard()  # after a commit: nothing left to do
    args.report.update(totalSize=total, done=stopped != "limit" and not writer.truncated, recordCount=writer.rows)
    if stopped == "limit":
        _err(f"stopped after {pages} page(s) (--limit-pages); more records remain")
    if writer.truncated:
        _err(f"the table shows the first {writer.rows} records: use --format csv (or json/jsonl, "
             "with --output FILE) for all of them")
    noun = "record" if writer.rows == 1 else "records"
    _err(f"{writer.rows} {noun}" + (f" of {total}" if total is not None and total != writer.rows and not is_count else "")
         + f", {pages} page{'s' if pages != 1 else ''}" + (f", written to {args.output}" if args.output else ""))
    return EXIT_OK


def _wants_next_page(args: argparse.Namespace, pages: int, rows_after: int) -> bool:
    """Whether the page after this one will be written (so it can be fetched meanwhile)."""
    from ._cli_output import TABLE_MAX_ROWS

    if args.limit_pages is not None and pages >= args.limit_pages:
        return False
    return args.format != "table" or rows_after < TABLE_MAX_ROWS


def _query_parquet(args: argparse.Namespace, soql: str) -> int:
    """--format parquet: query_to_parquet's writer (typed columns, page by page) into the
    same OutputFile as the other formats; pyarrow, pandas and the path checked before the login."""
    from ._internal.outfile import OutputFile
    from .client import connect_jwt
    from .data.dataframe import BULK_PARALLEL, _frames, _pandas, _parquet_into, _pyarrow

    if not args.output:
        raise UsageError("--format parquet writes a file: add --output FILE (e.g. --output accounts.parquet)")
    if args.limit_pages is not None:
        raise UsageError("--limit-pages does not apply to --format parquet: add a LIMIT to the SOQL instead")
    try:
        pa, pq = _pyarrow("--format parquet")
        pd = _pandas()
    except ImportError as exc:  # the cause names the module: "No module named 'pyarrow'"
        raise UsageError(f"--format parquet needs pyarrow and pandas ({exc.__cause__ or exc}): "
                         "pip install 'sfjwt-ext[pandas,arrow]', or use --format csv") from None
    with OutputFile(args.output, named="--output") as output:
        sf = connect_jwt(**_connection_arguments(args))
        frames = _frames(pd, sf, soql, args.include_deleted, None if _isatty(sys.stderr) else False, "auto", None,
                         BULK_PARALLEL, "query_to_parquet")
        rows = _parquet_into(output, pa, pq, frames)
    args.report.update(done=True, recordCount=rows)
    _err(f"{rows} record{'' if rows == 1 else 's'}, written to {args.output}")
    return EXIT_OK


def _query_json(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    """query --json: without --output, ``sf data query --json``'s document (the records as
    Salesforce returns them: attributes, nested parents); with --output, the data goes to the
    file in --format (default json) and the document says where and how much."""
    from . import _cli_json

    if not args.output:
        if args.format not in (None, "json"):
            raise UsageError(f"--json prints the records as JSON on stdout: --format {args.format} needs "
                             "--output FILE (or leave --format out)")
        return _query_records_json(args, soql, out)
    args.format = args.format or "json"
    code = _query_parquet(args, soql) if args.format == "parquet" else _query_rows(args, soql, io.StringIO())
    result = dict(args.report, outputFile=args.output, resultFormat=args.format)
    _cli_json.write(out, _cli_json.success(result, args.collected))
    return code


def _query_records_json(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    from ._cli_json import RecordsDocument
    from .client import connect_jwt

    document = RecordsDocument()
    try:
        sf = connect_jwt(**_connection_arguments(args))
        result = sf.query(soql, include_deleted=args.include_deleted)
        total: Optional[int] = result.get("totalSize")
        pages = 0
        while True:
            pages += 1
            document.add(result.get("records") or [])
            done = bool(result.get("done", True)) or not result.get("nextRecordsUrl")
            if done or (args.limit_pages is not None and pages >= args.limit_pages):
                break
            result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True,
                                   include_deleted=args.include_deleted)
        document.finish(out, total=total, done=done, collected=args.collected)
    finally:
        document.close()
    if not done:
        _err(f"stopped after {pages} page(s) (--limit-pages); more records remain")
    _err(f"{document.count} record{'' if document.count == 1 else 's'}, {pages} page{'s' if pages != 1 else ''}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, out: IO[str]) -> int:
    from .demo import run_demo

    return run_demo(out)


def _cache_folder(args: argparse.Namespace) -> str:
    """--folder, else a token_cache path from SF_TOKEN_CACHE / the profile, else the default."""
    from .config import resolve_settings, token_cache_value
    from .sharing.diskcache import default_folder

    if args.folder:
        value = token_cache_value(args.folder, "--folder")
        if isinstance(value, str):
            return value
        raise UsageError(f"--folder {args.folder!r} is not a folder path")
    profile = {"profile": args.profile} if getattr(args, "profile", None) else {}
    setting = resolve_settings(**profile).token_cache
    return setting if isinstance(setting, str) else str(default_folder())


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def cmd_cache(args: argparse.Namespace, out: IO[str]) -> int:
    from .sharing.diskcache import TokenStore

    folder = _cache_folder(args)
    store = TokenStore(folder)
    if getattr(args, "json", False):
        return _cache_json(args, store, folder, out)
    if args.action == "clear":
        removed = store.clear()
        out.write(f"removed {removed} cached token{'' if removed == 1 else 's'} from {folder}\n")
        return EXIT_OK
    entries = store.entries()
    if not entries:
        _err(f"no cached tokens in {folder}")
        return EXIT_OK
    rows = [("user", "instance", "org", "age", "token URL", "key", "problem")]
    for info in entries:
        rows.append((
            info.username or "?", info.instance_url or "?", info.org_id or "?",
            _age(info.age) if info.issued_at else "?", info.token_url or "?",
            info.key_id[:19] or "?", info.problem,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    _err(f"{len(entries)} cached login{'' if len(entries) == 1 else 's'} in {folder} (tokens are never shown)")
    return EXIT_OK


def _cache_json(args: argparse.Namespace, store: Any, folder: str, out: IO[str]) -> int:
    """cache --json: list -> the entries (never a token), clear -> how many were removed."""
    from . import _cli_json

    if args.action == "clear":
        result: Dict[str, Any] = {"folder": folder, "removed": store.clear()}
    else:
        fields = ("username", "instance_url", "org_id", "user_id", "token_url", "key_id", "problem")
        entries = [dict({_camel(name): getattr(info, name, "") or None for name in fields},
                        issuedAt=_utc(getattr(info, "issued_at", 0)),
                        ageSeconds=round(info.age) if getattr(info, "issued_at", 0) else None)
                   for info in store.entries()]
        result = {"folder": folder, "entries": entries}
    _cli_json.write(out, _cli_json.success(result, args.collected))
    return EXIT_OK


def _utc(seconds: float) -> Optional[str]:
    import datetime

    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


COMMANDS = {"keygen": cmd_keygen, "check": cmd_check, "setup": cmd_setup, "query": cmd_query, "demo": cmd_demo,
            "cache": cmd_cache}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    words = list(argv) if argv is not None else sys.argv[1:]
    try:
        args, extras = parser.parse_known_args(words)
        if extras:
            _refuse_extras(parser, args, extras)
    except SystemExit as exc:  # --help, --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except _ArgumentsRefused as exc:  # already printed on stderr
        if "--json" in (words[: words.index("--")] if "--" in words else words):
            from . import _cli_json

            command = next((word for word in words if word in COMMANDS), "sfjwt")
            _cli_json.write(sys.stdout, _cli_json.failure(code=EXIT_USAGE, name="UsageError", message=str(exc),
                                                          command=command, collected=_cli_json.Warnings()))
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
    from ._cli_json import Warnings, one_line_warnings

    args.collected = Warnings(quiet=verbose)
    args.report = {}  # what a command found so far: the "data" of a --json error document
    try:
        with one_line_warnings(args.collected):
            _check_options_apply(args)
            return COMMANDS[args.command](args, sys.stdout)
    except KeyboardInterrupt:
        _err("interrupted")
        _json_failure(args, EXIT_INTERRUPTED, "Interrupted", {}, "interrupted")
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
        message = _describe_error(exc)
        _err(f"sfjwt {args.command}: {_prefix(exc, code)}: {message}")
        if not verbose:
            _err("(run with --verbose for details)")
        _json_failure(args, code, *_error_name_and_data(exc), message)
        return code


def _error_name_and_data(exc: BaseException) -> Tuple[str, Dict[str, Any]]:
    """The error's name in a --json document: Salesforce's errorCode (INVALID_FIELD ...), as
    ``sf`` gives it, else our exception's class name."""
    from simple_salesforce.exceptions import SalesforceError

    from ._internal.redact import redact

    content = getattr(exc, "content", None) if isinstance(exc, SalesforceError) else None
    if isinstance(content, list) and content and isinstance(content[0], dict) and content[0].get("errorCode"):
        first = content[0]
        return str(first["errorCode"]), {"errorCode": first["errorCode"], "message": redact(first.get("message", ""))}
    return type(exc).__name__, {}


def _json_failure(args: argparse.Namespace, code: int, name: str, data: Dict[str, Any], message: str = "") -> None:
    if not getattr(args, "json", False):
        return
    from . import _cli_json

    merged = dict(getattr(args, "report", {}) or {}, **data)
    _cli_json.write(sys.stdout, _cli_json.failure(code=code, name=name, message=message, command=args.command,
                                                  collected=args.collected, data=merged))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
