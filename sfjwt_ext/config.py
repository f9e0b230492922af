"""Settings for a JWT login, resolved once: arguments > environment (``SF_*``) > profile.

A profile is a section of an INI file (``config_path()``); ``[default]`` applies when no
profile is named (``profile=`` / ``SF_PROFILE``). Its keys are the ``SF_*`` names in lower
case without ``SF_``: ``username``, ``consumer_key`` (or ``client_id``),
``private_key_file``, ``domain``, ``login_url``, ``audience``, ``api_version``,
``ca_bundle``, ``token_cache`` (``1``/``true`` or a folder; a relative folder is relative
to the profile file's). The key text and its passphrase never go into a profile.

Groups resolve as a whole: the private key (``private_key`` / ``private_key_file``) and the
login host (``domain`` / ``login_url``) come entirely from the highest-precedence source
that sets either of them, so an argument is never mixed with an environment variable of the
other kind.
"""
from __future__ import annotations

import configparser
import dataclasses
import math
import numbers
import os
import posixpath
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import platformdirs

from ._internal.files import file_kind, file_size_text, read_small_file, warn_on_mode
from .errors import ConfigurationError

__all__ = [
    "ENV", "ENV_ALIASES", "Setting", "masked_settings", "Settings", "resolve_settings", "config_path",
    "read_profile_file", "check_timeout", "check_verify", "token_cache_value", "PROFILE_MAX_BYTES",
]

#: setting name -> environment variable
ENV: Dict[str, str] = {
    "username": "SF_USERNAME",
    "consumer_key": "SF_CONSUMER_KEY",
    "private_key": "SF_PRIVATE_KEY",
    "private_key_file": "SF_PRIVATE_KEY_FILE",
    "private_key_passphrase": "SF_PRIVATE_KEY_PASSPHRASE",
    "domain": "SF_DOMAIN",
    "login_url": "SF_LOGIN_URL",
    "audience": "SF_AUDIENCE",
    "version": "SF_API_VERSION",
    "ca_bundle": "SF_CA_BUNDLE",
    "profile": "SF_PROFILE",
    "token_cache": "SF_TOKEN_CACHE",
}
#: setting name -> further environment variables accepted for it
ENV_ALIASES: Dict[str, Tuple[str, ...]] = {"consumer_key": ("SF_CLIENT_ID",)}
#: setting name -> all its environment variables
_VARIABLES: Dict[str, Tuple[str, ...]] = {
    name: (variable,) + ENV_ALIASES.get(name, ()) for name, variable in ENV.items()
}

#: never shown, never in a profile
SECRETS = frozenset({"private_key", "private_key_passphrase"})
#: profile key -> setting name: the SF_* variables in lower case without SF_ (none for the secrets and SF_PROFILE)
PROFILE_KEYS: Dict[str, str] = {
    variable[3:].lower(): name
    for name in ENV if name not in SECRETS and name != "profile"
    for variable in _VARIABLES[name]
}
DEFAULTS: Dict[str, Any] = {"domain": "login"}

#: each required setting: the settings that give it, and how to set it
_REQUIRED: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "username": (("username",), "pass username=, set SF_USERNAME, or use --username"),
    "consumer_key": (
        ("consumer_key",), "pass consumer_key=, set SF_CONSUMER_KEY (or SF_CLIENT_ID), or use --consumer-key"
    ),
    "private_key": (
        ("private_key", "private_key_file"),
        "pass private_key= or private_key_file=, set SF_PRIVATE_KEY or SF_PRIVATE_KEY_FILE, or use --key-file",
    ),
}
_VERSION_RE = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from: ``"argument"``, ``"environment"``,
    ``"profile:<name>"`` or ``"default"``."""

    name: str
    value: Any
    source: str

    def __repr__(self) -> str:
        shown = _mask(self.name, self.value)
        return f"Setting(name={self.name!r}, value={shown}, source={self.source!r})"


def _mask(name: str, value: Any) -> str:
    return "'<hidden>'" if name in SECRETS and value is not None else repr(value)


def _shown(name: str, value: Any) -> str:
    """A set value as :meth:`Settings.describe` shows it: secrets hidden, the key text's size told."""
    if name == "private_key":
        return f"(hidden, {len(value)} characters)" if isinstance(value, (str, bytes)) else "(hidden, key object)"
    return "(hidden)" if name in SECRETS else str(value)


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------
def config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The profile file: ``SFJWT_CONFIG``, else ``config.ini`` in the user's config folder
    as ``platformdirs.user_config_dir("sfjwt")`` names it: ``$XDG_CONFIG_HOME/sfjwt`` or
    ``~/.config/sfjwt`` (Linux and other POSIX), ``~/Library/Application Support/sfjwt``
    (macOS; ``$XDG_CONFIG_HOME/sfjwt`` when that is set), ``%APPDATA%\\sfjwt`` (Windows).

    ``XDG_CONFIG_HOME`` is read from ``environ`` (an absolute path, as the XDG spec says;
    a relative one is ignored), so a mapping passed in decides on its own."""
    env = os.environ if environ is None else environ
    explicit = env.get("SFJWT_CONFIG")
    if explicit:
        return Path(os.path.expanduser(explicit))
    return _user_config_dir(env) / "config.ini"


def _user_config_dir(env: Mapping[str, str]) -> Path:
    if sys.platform != "win32":
        xdg = env.get("XDG_CONFIG_HOME") or ""
        if posixpath.isabs(xdg):
            return Path(xdg) / "sfjwt"
        if env is not os.environ and sys.platform != "darwin" and posixpath.isabs(
            os.environ.get("XDG_CONFIG_HOME") or ""
        ):
            # platformdirs reads this process's XDG_CONFIG_HOME, which ``env`` leaves out:
            # the XDG default applies
            return Path(os.path.expanduser("~")) / ".config" / "sfjwt"
    return Path(platformdirs.user_config_dir("sfjwt", appauthor=False, roaming=True))


#: A profile file is a few hundred bytes; anything over this is not one.
PROFILE_MAX_BYTES = 1024 * 1024


def read_profile_file(path: Union[str, "os.PathLike[str]"]) -> bytes:
    """The bytes of the profile file (:func:`read_small_file`, cap :data:`PROFILE_MAX_BYTES`).
    :class:`ConfigurationError` names ``SFJWT_CONFIG`` for anything that is not a small
    regular file; ``OSError`` for a missing or unreadable one."""
    return read_small_file(
        path, what="the profile file", limit=PROFILE_MAX_BYTES,
        instead="set SFJWT_CONFIG to the path of an INI file of profiles (a regular file of a few lines)",
    )


def _read_profiles(path: Path) -> configparser.ConfigParser:
    """The profile file parsed, with a warning when others may change it."""
    # strict (the default): a section or a key twice is an error; keys are lower-cased by optionxform
    parser = configparser.ConfigParser(default_section="\x00no-default-section\x00", interpolation=None)
    try:
        text = read_profile_file(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(f"the profile file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or exc
        if isinstance(exc, PermissionError):
            reason = "permission denied (set SFJWT_CONFIG to another file, or fix its owner)"
        raise ConfigurationError(f"cannot read the profile file {str(path)!r}: {reason}") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigurationError(
            f"the profile file {str(path)!r} is not a valid INI file: {_ini_problem(exc)}. "
            "Each profile is a '[name]' line followed by 'key = value' lines"
        ) from None
    warn_on_mode(path, stat.S_IWGRP | stat.S_IWOTH, f"the profile file {str(path)!r} is writable by group or others, "
                 "who could point your logins at another host", "chmod go-w", stacklevel=5)
    return parser


def _ini_problem(exc: configparser.Error) -> str:
    """Where the INI file is broken, without quoting its content (it might hold a secret)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a 'key = value' line before any '[profile]' header"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: the section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: '{exc.option}' appears twice in [{exc.section}]"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        lines = [str(lineno) for lineno, _ in exc.errors]
        return f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)}: not a '[section]' or 'key = value' line"
    return type(exc).__name__


def _profile_layer(
    path: Path, args: Mapping[str, Any], env_values: Mapping[str, str]
) -> Tuple[Dict[str, str], Optional[str]]:
    """(values by setting name, name) of the profile that applies: the one ``profile=`` or
    ``SF_PROFILE`` names, else ``[default]`` when the file has it; ``({}, None)`` for none."""
    # a profile is named by an argument or SF_PROFILE only
    name = str(args["profile"]).strip() if "profile" in args else env_values.get("profile")
    named_by = f"profile={name!r}" if "profile" in args else "SF_PROFILE"
    if not path.exists() or str(path) == os.devnull:  # SFJWT_CONFIG=/dev/null: no profiles
        if name is not None:
            raise ConfigurationError(
                f"profile {name!r} ({named_by}) was asked for, but there is no profile file at {str(path)!r}: "
                f"create it (an INI file with a [{name}] section) or set SFJWT_CONFIG to its path"
            )
        return {}, None
    parser = _read_profiles(path)
    wanted = "default" if name is None else name
    if parser.has_section(wanted):
        return _profile_values(parser, wanted, path), wanted
    if name is None:
        return {}, None
    existing = ", ".join(repr(s) for s in parser.sections()) or "none"
    raise ConfigurationError(
        f"profile {name!r} ({named_by}) does not exist in {str(path)!r}; existing profiles: {existing}"
    )


def _profile_values(parser: configparser.ConfigParser, section: str, path: Path) -> Dict[str, str]:
    """The settings of one profile; relative paths made relative to the profile file's folder."""
    values: Dict[str, str] = {}
    for key, raw in parser.items(section):  # keys stripped and lower-cased by configparser
        if key in SECRETS:
            raise ConfigurationError(
                f"profile [{section}] in {str(path)!r} has '{key}': never store the key text or "
                "passphrase in the profile: use private_key_file and SF_PRIVATE_KEY_PASSPHRASE"
            )
        if key not in PROFILE_KEYS:
            raise ConfigurationError(
                f"profile [{section}] in {str(path)!r} has an unknown key '{key}'; known keys: "
                + ", ".join(PROFILE_KEYS)
            )
        value = raw.strip()
        if not value:
            continue
        setting = PROFILE_KEYS[key]
        if setting in values and values[setting] != value:
            raise ConfigurationError(
                f"profile [{section}] in {str(path)!r} sets both consumer_key and client_id to "
                "different values: keep one"
            )
        if setting == "private_key_file" or setting == "token_cache" and value.lower() not in _SWITCH_ON + _SWITCH_OFF:
            expanded = os.path.expanduser(value)
            value = expanded if os.path.isabs(expanded) else str(path.parent / expanded)
        values[setting] = value
    return values


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """The resolved, validated settings (read-only). ``repr`` masks the key text and passphrase;
    ``sources`` maps each set name to its :class:`Setting` (value and source); settings compare
    by their sources."""

    sources: Dict[str, Setting]
    config_file: Optional[Path] = dataclasses.field(default=None, compare=False)
    empty_env: Tuple[str, ...] = dataclasses.field(default=(), compare=False)  # the SF_* variables set but empty
    username: Optional[str] = dataclasses.field(init=False)
    consumer_key: Optional[str] = dataclasses.field(init=False)
    private_key: Optional[str] = dataclasses.field(init=False)
    private_key_file: Optional[str] = dataclasses.field(init=False)
    private_key_passphrase: Optional[str] = dataclasses.field(init=False)
    domain: Optional[str] = dataclasses.field(init=False)
    login_url: Optional[str] = dataclasses.field(init=False)
    audience: Optional[str] = dataclasses.field(init=False)
    version: Optional[str] = dataclasses.field(init=False)
    ca_bundle: Optional[str] = dataclasses.field(init=False)
    profile: Optional[str] = dataclasses.field(init=False)
    # after resolve_settings: True, False or an absolute folder
    token_cache: Union[bool, str, None] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        for name in ENV:
            object.__setattr__(self, name, self.sources[name].value if name in self.sources else None)

    def require(self) -> None:
        """Raise :class:`ConfigurationError` naming the argument, environment variable and
        CLI flag of every missing required setting (username, consumer key, private key)."""
        lines = []
        for name, (fields, how) in _REQUIRED.items():
            if not any(getattr(self, field) for field in fields):
                empties = [var for var in self.empty_env if any(var in _VARIABLES[field] for field in fields)]
                empty = f" ({', '.join(empties)} is set but empty)" if empties else ""
                lines.append(f"  - {name.replace('_', ' ')}: {how}{empty}")
        if lines:
            where = f"; or put it in a profile in {str(self.config_file)!r}" if self.config_file is not None else ""
            raise ConfigurationError("missing settings for the JWT login:\n" + "\n".join(lines) + where)

    def describe(self) -> List[Tuple[str, str, str]]:
        """``(name, display value, source)`` for every setting, secrets masked (the consumer
        key is shown); unset settings show ``(not set)`` and an empty source."""
        return [
            (name, _shown(name, self.sources[name].value), self.sources[name].source) if name in self.sources
            else (name, "(not set)", "") for name in ENV
        ]

    def __repr__(self) -> str:
        parts = [f"{name}={_mask(name, getattr(self, name))}" for name in ENV]
        return "Settings(" + ", ".join(parts) + ")"


def masked_settings(settings: Settings) -> Settings:
    """A copy of the settings whose key text and passphrase read ``(hidden)``: the key
    object lives in the token client, nothing else keeps secrets."""
    hidden = {name: Setting(name, "(hidden)", s.source) for name, s in settings.sources.items() if name in SECRETS}
    return Settings({**settings.sources, **hidden}, settings.config_file)


# ---------------------------------------------------------------------------------------
# resolution: a list of layers, highest precedence first
# ---------------------------------------------------------------------------------------
#: One source of settings: (values by setting name, source label).
Layer = Tuple[Mapping[str, Any], str]

#: Settings that come together from the first layer that sets any of them (so an argument is
#: never mixed with an environment variable of the other kind); the others are groups of one.
_GROUPS = (("private_key", "private_key_file"), ("domain", "login_url"), ("username",), ("consumer_key",),
           ("private_key_passphrase",), ("audience",), ("version",), ("ca_bundle",), ("token_cache",), ("profile",))

#: (group, source) -> the error when that source sets both settings of the group (one would win silently)
_CONFLICTS: Dict[Tuple[str, str], str] = {
    ("private_key", "argument"): "both private_key= and private_key_file= were given: pass only one (the PEM "
                                 "text or the path of the .key file)",
    ("private_key", "environment"): "both SF_PRIVATE_KEY and SF_PRIVATE_KEY_FILE are set: unset one of them (or "
                                    "pass private_key= / private_key_file= to override both)",
    ("domain", "environment"): "both SF_DOMAIN ({domain!r}) and SF_LOGIN_URL ({login_url!r}) are set, and "
                               "SF_LOGIN_URL would silently win: unset one of them (to send the JWT to a My Domain "
                               "host with a login/test audience, set SF_LOGIN_URL and SF_AUDIENCE)",
}


def resolve_settings(
    *, environ: Optional[Mapping[str, str]] = None, config_path: Optional[str] = None, **arguments: Any
) -> Settings:
    """Resolve every setting: arguments > environment (``environ``, default ``os.environ``)
    > profile (``config_path``, default :func:`config_path`) > defaults. Arguments that are
    None count as not given. Raises :class:`ConfigurationError` for contradictory or
    malformed settings; call :meth:`Settings.require` to insist on the required ones."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    args = _argument_values(arguments)
    env_values, empty_env = _environment_values(env)
    path = Path(os.path.expanduser(config_path)) if config_path else globals()["config_path"](env)
    profile_values, profile = _profile_layer(path, args, env_values)
    if "SF_PRIVATE_KEY" in empty_env and "private_key" not in args and "private_key_file" not in args:
        raise ConfigurationError(
            "SF_PRIVATE_KEY is set but empty: unset it, or give it the PEM text of the key (an unset CI secret "
            "gives an empty variable); to use a key file set only SF_PRIVATE_KEY_FILE"
        )
    sources = _pick([
        (args, "argument"),
        (env_values, "environment"),
        (profile_values, f"profile:{profile}"),
        ({**DEFAULTS, "profile": profile} if profile else DEFAULTS, "default"),  # the profile that applied
    ])
    for name, check in _CHECKS.items():
        setting = sources.get(name)
        if setting is not None:
            named = {"argument": f"{name}=", "environment": ENV[name]}.get(setting.source, setting.source)
            sources[name] = Setting(name, check(setting.value, named), setting.source)
    return Settings(sources, path, tuple(empty_env))


def _argument_values(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """The arguments given (None and blank ones are not), ``client_id=`` as ``consumer_key``."""
    unknown = sorted(set(arguments) - set(ENV) - {"client_id"})
    if unknown:
        raise TypeError(f"resolve_settings() got unexpected argument(s) {', '.join(unknown)}; known: {', '.join(ENV)}")
    client_id = arguments.pop("client_id", None)
    if client_id is not None:
        if arguments.get("consumer_key") is not None and arguments["consumer_key"] != client_id:
            raise ConfigurationError("both consumer_key= and client_id= were given: pass only consumer_key=")
        arguments["consumer_key"] = client_id
    if isinstance(arguments.get("private_key"), str) and not arguments["private_key"].strip():
        raise ConfigurationError(
            "private_key= is empty: pass the PEM text of the key, or the path as private_key_file="
        )
    return {name: os.fspath(value) if isinstance(value, os.PathLike) else value for name, value in arguments.items()
            if value is not None and not (isinstance(value, str) and not value.strip())}


def _environment_values(env: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """(values by setting name, the SF_* variables set but empty) of the environment."""
    values: Dict[str, str] = {}
    for name, variables in _VARIABLES.items():
        found = {
            variable: env[variable] if name == "private_key" else env[variable].strip()
            for variable in variables
            if (env.get(variable) or "").strip()
        }
        if len(set(found.values())) > 1:
            raise ConfigurationError(f"{' and '.join(found)} are both set, to different values: unset one of them")
        if found:
            values[name] = next(iter(found.values()))
    empty_env = [variable for name in ENV if name not in values for variable in _VARIABLES[name] if variable in env]
    return values, empty_env


def _pick(layers: List[Layer]) -> Dict[str, Setting]:
    """Each group of settings from the first layer that sets any of it."""
    sources: Dict[str, Setting] = {}
    for group in _GROUPS:
        for values, source in layers:
            if values.keys().isdisjoint(group):
                continue
            given = [name for name in group if name in values]
            if len(given) > 1 and (group[0], source) in _CONFLICTS:
                raise ConfigurationError(_CONFLICTS[group[0], source].format(**values))
            sources.update((name, Setting(name, values[name], source)) for name in given)
            break
    return sources


def _normalise_version(value: Any, source: str) -> str:
    text = str(value).strip()
    if not _VERSION_RE.match(text):
        raise ConfigurationError(
            f"API version {text!r} (from {source}) is not a version number like '62.0': fix "
            "version= / SF_API_VERSION (api_version in a profile)"
        )
    return text if "." in text else text + ".0"


def _existing_bundle(value: Any, named: str) -> str:
    bundle = os.path.expanduser(str(value))
    if not os.path.exists(bundle):
        raise ConfigurationError(
            f"the CA bundle {bundle!r} (from {named}) does not exist: fix verify= / ca_bundle= / SF_CA_BUNDLE (a "
            "PEM file of trusted CAs)"
        )
    return bundle


def _text(value: object, named: str, message: str = "{named} must be a string, not {type}") -> str:
    """``value`` as a string (a path-like as its path); else ConfigurationError(``message``, formatted
    with ``named``, ``value`` and ``type``)."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise ConfigurationError(message.format(named=named, value=text, type=type(text).__name__))
    return text


_SWITCH_ON = ("1", "true", "yes", "on")
_SWITCH_OFF = ("0", "false", "no", "off")


def token_cache_value(value: object, named: str = "token_cache=") -> Union[bool, str]:
    """``token_cache`` as connect_jwt uses it: True (the default folder), False (off) or
    the absolute path of a folder. Strings ``1``/``true``/``yes``/``on`` and
    ``0``/``false``/``no``/``off`` (any case) are switches; any other string is a folder
    (``~`` expanded). ConfigurationError names ``named`` for anything else."""
    if isinstance(value, bool):
        return value
    text = _text(value, named, "{named} must be True, False or the path of a folder, not {type} "
                 "(token_cache= / SF_TOKEN_CACHE: 1 or a path turns the shared token cache on, 0 off)").strip()
    if text.lower() in _SWITCH_ON:
        return True
    if text.lower() in _SWITCH_OFF or not text:
        return False
    return os.path.abspath(os.path.expanduser(text))


#: setting name -> its check, (value, where it came from) -> the value kept; run in this order
_CHECKS: Dict[str, Callable[[Any, str], Any]] = {
    "version": _normalise_version,
    "ca_bundle": _existing_bundle,
    "token_cache": token_cache_value,
    "username": _text,
    "consumer_key": _text,
}


# ---------------------------------------------------------------------------------------
# timeout= and verify= (connect_jwt's transport arguments)
# ---------------------------------------------------------------------------------------
Timeout = Union[float, Tuple[float, float]]
_TIMEOUT_FIX = "pass a number of seconds (timeout=30) or a (connect, read) pair (timeout=(10, 120))"


def _seconds(value: object, what: Optional[str] = None) -> float:
    """One timeout value in seconds; ``what`` names its place in a pair ("connect", "read")."""
    said = f"timeout={value!r}" if what is None else f"timeout= has {value!r} as its {what} time"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if value is None:
            raise ConfigurationError(
                f"timeout= has None as its {what} time: that waits forever (a half-open connection "
                f"blocks for good); {_TIMEOUT_FIX}"
            )
        kind = "a string" if isinstance(value, str) else f"of type {type(value).__name__}"
        if what is None:
            raise ConfigurationError(f"timeout={value!r} is {kind}: {_TIMEOUT_FIX}")
        raise ConfigurationError(f"timeout= has {value!r} ({kind}) as its {what} time: {_TIMEOUT_FIX}")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float (10**400)
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{said}: it must be a positive, finite number of seconds; {_TIMEOUT_FIX}")
    return seconds


def check_timeout(value: object) -> Optional[Timeout]:
    """``timeout=`` as requests takes it: ``None`` (the defaults), a positive finite number
    of seconds (``float``), or a ``(connect, read)`` pair of them (a list is taken as the
    pair). Anything else (``'5'``, ``True``, ``0``, ``-1``, ``nan``, ``inf``, ``(1,)``,
    ``(5, -1)``, ``(5, None)``) raises :class:`ConfigurationError` naming ``timeout=``."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            plural = "s" if len(value) != 1 else ""
            raise ConfigurationError(f"timeout={tuple(value)!r} has {len(value)} value{plural}: {_TIMEOUT_FIX}")
        return (_seconds(value[0], "connect"), _seconds(value[1], "read"))
    return _seconds(value)


_CERT_RE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
#: a PEM certificate line is looked for in the first this many bytes (bundles start with one)
_CA_SCAN_LIMIT = 64 * 1024 * 1024
_CA_FIX = (
    "give verify= / SF_CA_BUNDLE (ca_bundle in a profile) the path of a PEM file of trusted CA "
    "certificates ('-----BEGIN CERTIFICATE-----'), or a folder prepared with c_rehash; or leave "
    "it unset for the system's CAs"
)


_HASHED_NAME_RE = re.compile(r"^[0-9a-f]{8}\.r?[0-9]+$")


def _check_hashed_folder(folder: str, named: str, fix: str) -> None:
    """A c_rehash folder: OpenSSL looks certificates up by their hash names (<hash>.0)."""
    try:
        with os.scandir(folder) as entries:
            if any(_HASHED_NAME_RE.match(entry.name) for entry in entries):
                return
    except OSError:
        pass
    raise ConfigurationError(
        f"{named} names the folder {folder!r}, which holds no certificates by hash name "
        f"(<hash>.0, made by c_rehash / openssl rehash): {fix}"
    )


def _check_ca_bundle(path: str, named: str, fix: str) -> None:
    """A PEM file with a certificate, or a c_rehash folder. Anything else is looked at (stat),
    never opened: a FIFO would block, a device could be endless."""
    try:
        info = os.stat(path)
        regular = stat.S_ISREG(info.st_mode)
        # O_NONBLOCK: should a FIFO take the file's place after the stat, reading it ends at once (None)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)) if regular else -1
    except FileNotFoundError:
        raise ConfigurationError(f"{named} names {path!r}, which does not exist: {fix}") from None
    except OSError as exc:
        raise ConfigurationError(f"{named} names {path!r}, which cannot be read ({exc.strerror or exc}): {fix}") from None
    if stat.S_ISDIR(info.st_mode):
        _check_hashed_folder(path, named, fix)
        return
    if not regular:
        raise ConfigurationError(f"{named} names {path!r}, which is {file_kind(info.st_mode)}: {fix}")
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(16 * 1024) or b""  # bundles start with a certificate: one small read per connect_jwt
        if not _CERT_RE.search(head) and not _CERT_RE.search(head[-40:] + (handle.read(_CA_SCAN_LIMIT) or b"")):
            raise ConfigurationError(
                f"{named} names {path!r} ({file_size_text(info.st_size)}), which holds no PEM certificate "
                "(no '-----BEGIN CERTIFICATE-----' line; a DER .cer converts with `openssl x509 "
                f"-inform der -in ca.cer -out ca.pem`): {fix}"
            )


def check_verify(
    verify: object, *, named: str = "verify=", trust_env: bool = True, environ: Optional[Mapping[str, str]] = None
) -> Union[bool, str]:
    """``verify=`` checked before any connection: ``True`` / ``False``, or the path (``str``
    or path-like, ``~`` expanded) of an existing PEM file holding a certificate, or of a
    c_rehash folder. ``named`` says where the value came from (``verify=``, ``SF_CA_BUNDLE``,
    ``profile:<name>``). With ``True`` and ``trust_env``, requests replaces it by
    ``REQUESTS_CA_BUNDLE`` (else ``CURL_CA_BUNDLE``): that file is checked the same way and
    named. Raises :class:`ConfigurationError`; returns the value to use."""
    if isinstance(verify, bool):
        env = os.environ if environ is None else environ
        # requests: os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        variable = next((name for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if env.get(name)), None)
        if verify and trust_env and variable is not None:
            _check_ca_bundle(
                env[variable],
                f"{variable} (which requests uses when verify= is left at its default)",
                f"fix or unset {variable}, or pass verify= / SF_CA_BUNDLE the path of a PEM file of trusted CA "
                "certificates",
            )
        return verify
    text = _text(verify, named, "{named} is {value!r} (of type {type}): it must be True, False or the path of "
                 "a CA bundle; " + _CA_FIX)
    if not text.strip():
        raise ConfigurationError(f"{named} is an empty string: {_CA_FIX}")
    path = os.path.expanduser(text)
    _check_ca_bundle(path, named if named == "verify=" else f"{named} (verify=)", _CA_FIX)
    return path
