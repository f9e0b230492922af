"""The ``sfjwt`` parser: argparse only (no other import, so ``sfjwt --help`` stays fast); one
function per command's options."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, NoReturn, Optional, Sequence, Tuple

from .._version import __version__
from .base import UsageError

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


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------
class ArgumentsRefused(Exception):
    """argparse refused the command line (already printed on stderr): exit 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a refused command line raises (main() writes the --json error document
    and returns 2) instead of exiting from inside the parser."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise ArgumentsRefused(message)


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


def check_options_apply(args: argparse.Namespace) -> None:
    """A connection option (or --json) given before a command that does not use it is refused."""
    for dest, (flag, _alias, _metavar, _text) in CONNECTION_OPTIONS.items():
        if hasattr(args, dest) and dest not in USES[args.command]:
            raise UsageError(_not_applicable(flag, dest, args.command))
    if getattr(args, "json", False) and args.command not in JSON_COMMANDS:
        raise UsageError(_not_applicable("--json", "json", args.command))


def refuse_extras(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> NoReturn:
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
    parser = _ArgumentParser(
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

    for add in (_keygen_parser, _check_parser, _setup_parser, _query_parser, _cache_parser, _demo_parser):
        add(sub, formatter)
    for name, command in sub.choices.items():  # each command lists only the options it uses
        _general_options(command)
        _connection_group(command, USES[name], instance_url_alias=name == "query")
        if name in JSON_COMMANDS:
            _json_option(command)
    return parser


def _keygen_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt keygen's options."""
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


def _check_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt check's options."""
    check = sub.add_parser(
        "check", formatter_class=formatter,
        help="show the settings, check the key, log in, and say what to fix",
        description="The doctor: every setting and where it came from (secrets masked), the key "
                    "(and that it matches --cert), the login host and aud, then a login.",
        epilog="example:\n  sfjwt check --cert ~/.sfjwt/salesforce.crt",
    )
    check.add_argument("--cert", metavar="FILE", help="the certificate uploaded to the External Client App")
    _admin_options(check, "on a refused login, read the app and the user with an admin's session: ")


def _setup_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt setup's options."""
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
    wait.add_argument("--wait", type=_wait_seconds, default=900.0, metavar="SECONDS",
                      help="wait up to SECONDS for a JWT login to work (default: 900)")
    wait.add_argument("--no-wait", dest="wait", action="store_const", const=None,
                      help="do not log in at the end")


def _query_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt query's options."""
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


def _cache_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt cache's options."""
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


def _demo_parser(sub: "argparse._SubParsersAction[_ArgumentParser]", formatter: Any) -> None:
    """sfjwt demo (no options of its own)."""
    sub.add_parser(
        "demo", formatter_class=formatter,
        help="the whole flow against a local org: no account, no network",
        description="Start a local Salesforce org on 127.0.0.1 with sample data, make a key and a "
                    "Connected App, log in with connect_jwt, query, expire the session and watch "
                    "the client log in again by itself; then stop everything.",
    )


def _admin_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    group = parser.add_argument_group("admin session")
    group.add_argument("--target-org", metavar="ALIAS", help=prefix + "an admin's Salesforce CLI login "
                       "(alias or username; sf on PATH)")
    group.add_argument("--instance-url", metavar="URL", help=prefix + "the admin's instance, with the "
                       "admin's access token in SF_ADMIN_ACCESS_TOKEN (never on the command line), as "
                       "`sf org login access-token --instance-url`" + ("; the JWT login host is --login-url" if prefix else ""))


def _wait_seconds(text: str) -> float:
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
    from .keypair import MAX_DAYS

    value = _positive_int(text)
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than {MAX_DAYS} days (100 years): a certificate cannot be valid past "
            "the year 9999, and a new one can be uploaded at any time"
        )
    return value


def _file_name(text: str) -> str:
    from ..errors import ConfigurationError
    from .keypair import check_pair_name

    try:
        check_pair_name(text)
    except ConfigurationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name: give the name without folder or extension (--name prod "
            "writes prod.key and prod.crt) and the folder with --out"
        ) from None
    return text
