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
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import platformdirs

from ._internal.files import check_file_permissions, file_kind, file_size_text, read_small_file, warn_on_mode
from .errors import ConfigurationError

__all__ = [
    "ENV",
    "ENV_ALIASES",
    "Setting",
    "masked_settings",
    "Settings",
    "resolve_settings",
    "config_path",
    "check_file_permissions",
    "check_profile_permissions",
    "read_small_file",
    "read_profile_file",
    "check_timeout",
    "check_verify",
    "token_cache_value",
    "PROFILE_MAX_BYTES",
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

#: profile key -> setting name
PROFILE_KEYS: Dict[str, str] = {
    "username": "username",
    "consumer_key": "consumer_key",
    "client_id": "consumer_key",
    "private_key_file": "private_key_file",
    "domain": "domain",
    "login_url": "login_url",
    "audience": "audience",
    "api_version": "version",
    "ca_bundle": "ca_bundle",
    "token_cache": "token_cache",
}
_FORBIDDEN_PROFILE_KEYS = ("private_key", "private_key_passphrase")

SECRETS = frozenset({"private_key", "private_key_passphrase"})
DEFAULTS: Dict[str, Any] = {"domain": "login"}

#: how to set each required setting: (argument, environment variable, CLI flag)
_HOW_TO_SET: Dict[str, Tuple[str, str, str]] = {
    "username": ("username=", "SF_USERNAME", "--username"),
    "consumer_key": ("consumer_key=", "SF_CONSUMER_KEY", "--consumer-key"),
    "private_key": (
        "private_key= or private_key_file=",
        "SF_PRIVATE_KEY or SF_PRIVATE_KEY_FILE",
        "--key-file",
    ),
}
_ARGUMENT_NAMES = tuple(ENV)
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
    if value is None:
        return "None"
    if name in SECRETS:
        return "'<hidden>'"
    return repr(value)


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


def check_profile_permissions(path: Any, stacklevel: int = 3) -> bool:
    """Warn when the profile file is *writable* by group or others: profiles hold no secret
    (anyone may read them), but whoever can write one can point your logins elsewhere."""
    return warn_on_mode(path, stat.S_IWGRP | stat.S_IWOTH, f"the profile file {str(path)!r} is writable by group "
                         "or others, who could point your logins at another host", "chmod go-w",
                         stacklevel + 1)


def _read_profiles(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        default_section="\x00no-default-section\x00", interpolation=None, strict=True
    )
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    try:
        text = read_profile_file(path).decode("utf-8-sig")
    except PermissionError:
        raise ConfigurationError(
            f"cannot read the profile file {str(path)!r}: permission denied (set SFJWT_CONFIG to "
            "another file, or fix its owner)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"the profile file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the profile file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigurationError(
            f"the profile file {str(path)!r} is not a valid INI file: {_ini_problem(exc)}. "
            "Each profile is a '[name]' line followed by 'key = value' lines"
        ) from None
    return parser


def _ini_problem(exc: configparser.Error) -> str:
    """Where the INI file is broken, without quoting its content (it might hold a secret)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a 'key = value' line before any '[profile]' header"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: the section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: '{exc.option}' appears twice in [{exc.section}]"
    if isinstance(exc, configparser.ParsingError):
        lines = [str(lineno) for lineno, _ in getattr(exc, "errors", [])]
        if lines:
            return f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)}: not a '[section]' or 'key = value' line"
    lineno = getattr(exc, "lineno", None)
    return f"line {lineno}" if lineno else type(exc).__name__


def _load_profile(
    path: Path, name: Optional[str], named_by: Optional[str]
) -> Tuple[Dict[str, str], Optional[str]]:
    """(values by setting name, profile name) from the profile file; ``{}`` when none applies."""
    if not path.exists() or str(path) == os.devnull:  # SFJWT_CONFIG=/dev/null: no profiles
        if name is not None:
            raise ConfigurationError(
                f"profile {name!r} ({named_by}) was asked for, but there is no profile file at "
                f"{str(path)!r}: create it (an INI file with a [{name}] section) or set "
                "SFJWT_CONFIG to its path"
            )
        return {}, None
    parser = _read_profiles(path)
    check_profile_permissions(path, stacklevel=4)
    wanted = name if name is not None else "default"
    if not parser.has_section(wanted):
        if name is None:
            return {}, None
        existing = ", ".join(repr(s) for s in parser.sections()) or "none"
        raise ConfigurationError(
            f"profile {name!r} ({named_by}) does not exist in {str(path)!r}; existing profiles: "
            f"{existing}"
        )
    values: Dict[str, str] = {}
    for key, raw in parser.items(wanted):
        key = key.strip().lower()
        if key in _FORBIDDEN_PROFILE_KEYS:
            raise ConfigurationError(
                f"profile [{wanted}] in {str(path)!r} has '{key}': never store the key text or "
                "passphrase in the profile: use private_key_file and SF_PRIVATE_KEY_PASSPHRASE"
            )
        if key not in PROFILE_KEYS:
            raise ConfigurationError(
                f"profile [{wanted}] in {str(path)!r} has an unknown key '{key}'; known keys: "
                + ", ".join(PROFILE_KEYS)
            )
        value = (raw or "").strip()
        if not value:
            continue
        setting = PROFILE_KEYS[key]
        if setting in values and values[setting] != value:
            raise ConfigurationError(
                f"profile [{wanted}] in {str(path)!r} sets both consumer_key and client_id to "
                "different values: keep one"
            )
        if setting == "private_key_file" or setting == "token_cache" and value.lower() not in _SWITCH_WORDS:
            value = _profile_relative(value, path)
        values[setting] = value
    return values, wanted


def _profile_relative(value: str, profile_file: Path) -> str:
    """A relative ``private_key_file`` in a profile is relative to the profile's folder."""
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return expanded
    return str(profile_file.parent / expanded)


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
class Settings:
    """The resolved, validated settings. ``repr`` masks the key text and passphrase;
    ``sources`` maps each set name to its :class:`Setting` (value and source)."""

    username: Optional[str]
    consumer_key: Optional[str]
    private_key: Optional[str]
    private_key_file: Optional[str]
    private_key_passphrase: Optional[str]
    domain: Optional[str]
    login_url: Optional[str]
    audience: Optional[str]
    version: Optional[str]
    ca_bundle: Optional[str]
    profile: Optional[str]
    token_cache: Union[bool, str, None]  # after resolve_settings: True, False or an absolute folder
    sources: Dict[str, Setting]
    config_file: Optional[Path]

    def __init__(
        self,
        sources: Mapping[str, Setting],
        *,
        config_file: Optional[Path] = None,
        empty_env: Iterable[str] = (),
    ) -> None:
        self.sources = dict(sources)
        for name in _ARGUMENT_NAMES:
            setting = self.sources.get(name)
            object.__setattr__(self, name, setting.value if setting is not None else None)
        self.config_file = config_file
        self._empty_env = tuple(empty_env)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ARGUMENT_NAMES:
            raise AttributeError(f"Settings are read-only: {name}")
        object.__setattr__(self, name, value)

    def require(self) -> None:
        """Raise :class:`ConfigurationError` naming the argument, environment variable and
        CLI flag of every missing required setting (username, consumer key, private key)."""
        missing: List[str] = []
        if not self.username:
            missing.append("username")
        if not self.consumer_key:
            missing.append("consumer_key")
        if not self.private_key and not self.private_key_file:
            missing.append("private_key")
        if not missing:
            return
        lines = []
        for name in missing:
            argument, env, flag = _HOW_TO_SET[name]
            if name == "consumer_key":
                env = "SF_CONSUMER_KEY (or SF_CLIENT_ID)"
            line = f"  - {name.replace('_', ' ')}: pass {argument}, set {env}, or use {flag}"
            empties = [var for var in self._empty_env if var in env]
            if empties:
                line += f" ({', '.join(empties)} is set but empty)"
            lines.append(line)
        where = (
            f"; or put it in a profile in {str(self.config_file)!r}"
            if self.config_file is not None
            else ""
        )
        raise ConfigurationError(
            "missing settings for the JWT login:\n" + "\n".join(lines) + where
        )

    def describe(self) -> List[Tuple[str, str, str]]:
        """``(name, display value, source)`` for every setting, secrets masked (the consumer
        key is shown); unset settings show ``(not set)`` and an empty source."""
        rows: List[Tuple[str, str, str]] = []
        for name in _ARGUMENT_NAMES:
            setting = self.sources.get(name)
            if setting is None or setting.value is None:
                rows.append((name, "(not set)", ""))
                continue
            if name == "private_key":
                value = setting.value
                shown = (
                    f"(hidden, {len(value)} characters)" if isinstance(value, (str, bytes)) else "(hidden, key object)"
                )
            elif name == "private_key_passphrase":
                shown = "(hidden)"
            else:
                shown = str(setting.value)
            rows.append((name, shown, setting.source))
        return rows

    def __repr__(self) -> str:
        parts = [f"{name}={_mask(name, getattr(self, name))}" for name in _ARGUMENT_NAMES]
        return "Settings(" + ", ".join(parts) + ")"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return self.sources == other.sources

    __hash__ = None  # type: ignore[assignment]


def _env_value(env: Mapping[str, str], name: str) -> Tuple[Optional[str], Optional[str], bool]:
    """(value, variable, set-but-empty) of setting ``name`` in ``env``."""
    variables = (ENV[name],) + ENV_ALIASES.get(name, ())
    found: List[Tuple[str, str]] = []
    empty = False
    for variable in variables:
        if variable in env:
            raw = env[variable]
            if raw is None or raw.strip() == "":
                empty = True
                continue
            found.append((variable, raw if name == "private_key" else raw.strip()))
    if len(found) > 1 and len({value for _, value in found}) > 1:
        names = " and ".join(variable for variable, _ in found)
        raise ConfigurationError(f"{names} are both set, to different values: unset one of them")
    if found:
        return found[0][1], found[0][0], False
    return None, None, empty


def _normalise_version(value: Any, source: str) -> str:
    text = str(value).strip()
    if not _VERSION_RE.match(text):
        raise ConfigurationError(
            f"API version {text!r} (from {source}) is not a version number like '62.0': fix "
            "version= / SF_API_VERSION (api_version in a profile)"
        )
    if "." not in text:
        text += ".0"
    return text


#: Settings that come as a whole from the first layer that sets any of them: an argument is
#: never mixed with an environment variable of the other kind.
_GROUPS = (("private_key", "private_key_file"), ("domain", "login_url"))
_SINGLES = ("username", "consumer_key", "private_key_passphrase", "audience", "version", "ca_bundle", "token_cache")

#: One source of settings: (values by setting name, source label). Highest precedence first.
Layer = Tuple[Mapping[str, Any], str]


def resolve_settings(
    *,
    environ: Optional[Mapping[str, str]] = None,
    config_path: Optional[str] = None,
    **arguments: Any,
) -> Settings:
    """Resolve every setting: arguments > environment (``environ``, default ``os.environ``)
    > profile (``config_path``, default :func:`config_path`) > defaults. Arguments that are
    None count as not given. Raises :class:`ConfigurationError` for contradictory or
    malformed settings; call :meth:`Settings.require` to insist on the required ones."""
    args = _argument_values(arguments)
    env: Mapping[str, str] = os.environ if environ is None else environ
    env_values, empty_env = _environment_values(env)
    profile_name, named_by = _profile_named(args, env_values)
    path = Path(os.path.expanduser(config_path)) if config_path else globals()["config_path"](env)
    profile_values, used_profile = _load_profile(path, profile_name, named_by)
    _check_groups(args, env_values, empty_env)
    layers: List[Layer] = [
        (args, "argument"),
        (env_values, "environment"),
        (profile_values, f"profile:{used_profile}" if used_profile else ""),
        (DEFAULTS, "default"),
    ]
    sources = _pick(layers)
    profile = _first("profile", layers[:2])  # a profile is named by an argument or SF_PROFILE only
    if profile is None and used_profile is not None:
        profile = Setting("profile", used_profile, "default")
    if profile is not None:
        sources["profile"] = profile
    _check_values(sources)
    return Settings(sources, config_file=path, empty_env=empty_env)


def _argument_values(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """The arguments given (None and blank ones are not), ``client_id=`` as ``consumer_key``."""
    unknown = sorted(set(arguments) - set(_ARGUMENT_NAMES) - {"client_id"})
    if unknown:
        raise TypeError(
            f"resolve_settings() got unexpected argument(s) {', '.join(unknown)}; known: "
            + ", ".join(_ARGUMENT_NAMES)
        )
    if arguments.get("client_id") is not None:
        if arguments.get("consumer_key") is not None and arguments["consumer_key"] != arguments["client_id"]:
            raise ConfigurationError("both consumer_key= and client_id= were given: pass only consumer_key=")
        arguments["consumer_key"] = arguments.pop("client_id")
    arguments.pop("client_id", None)
    args: Dict[str, Any] = {}
    for name, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, str) and value.strip() == "":
            if name == "private_key":
                raise ConfigurationError(
                    "private_key= is empty: pass the PEM text of the key, or the path as private_key_file="
                )
            continue
        args[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return args


def _environment_values(env: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """(values by setting name, the SF_* variables set but empty) of the environment."""
    values: Dict[str, str] = {}
    empty_env: List[str] = []
    for name in _ARGUMENT_NAMES:
        value, variable, empty = _env_value(env, name)
        if value is not None and variable is not None:
            values[name] = value
        elif empty:
            empty_env.extend(v for v in (ENV[name],) + ENV_ALIASES.get(name, ()) if v in env)
    return values, empty_env


def _profile_named(args: Mapping[str, Any], env_values: Mapping[str, str]) -> Tuple[Optional[str], Optional[str]]:
    """(the profile asked for, who asked: for messages), or (None, None)."""
    if "profile" in args:
        name = str(args["profile"]).strip()
        return name, f"profile={name!r}"
    if "profile" in env_values:
        return env_values["profile"], "SF_PROFILE"
    return None, None


def _check_groups(args: Mapping[str, Any], env_values: Mapping[str, str], empty_env: List[str]) -> None:
    """Refuse two settings of one group given at the same level (which would win silently)."""
    if "private_key" in args and "private_key_file" in args:
        raise ConfigurationError(
            "both private_key= and private_key_file= were given: pass only one (the PEM text or "
            "the path of the .key file)"
        )
    if "private_key" not in args and "private_key_file" not in args:
        if "SF_PRIVATE_KEY" in empty_env:
            raise ConfigurationError(
                "SF_PRIVATE_KEY is set but empty: unset it, or give it the PEM text of the key "
                "(an unset CI secret gives an empty variable); to use a key file set only "
                "SF_PRIVATE_KEY_FILE"
            )
        if "private_key" in env_values and "private_key_file" in env_values:
            raise ConfigurationError(
                "both SF_PRIVATE_KEY and SF_PRIVATE_KEY_FILE are set: unset one of them (or pass "
                "private_key= / private_key_file= to override both)"
            )
    if "domain" in env_values and "login_url" in env_values and "domain" not in args and "login_url" not in args:
        raise ConfigurationError(
            f"both SF_DOMAIN ({env_values['domain']!r}) and SF_LOGIN_URL ({env_values['login_url']!r}) "
            "are set, and SF_LOGIN_URL would silently win: unset one of them (to send the JWT to a My Domain "
            "host with a login/test audience, set SF_LOGIN_URL and SF_AUDIENCE)"
        )


def _first(name: str, layers: List[Layer]) -> Optional[Setting]:
    for values, source in layers:
        if name in values:
            return Setting(name, values[name], source)
    return None


def _pick(layers: List[Layer]) -> Dict[str, Setting]:
    """Each setting from the first layer that has it; a group from the first that has any of it."""
    sources: Dict[str, Setting] = {}
    for group in _GROUPS:
        for values, source in layers:
            if any(name in values for name in group):
                sources.update((name, Setting(name, values[name], source)) for name in group if name in values)
                break
    for name in _SINGLES:
        setting = _first(name, layers)
        if setting is not None:
            sources[name] = setting
    return sources


def _check_values(sources: Dict[str, Setting]) -> None:
    """Normalise the version, the CA bundle path and the token cache switch; refuse bad ones."""
    if "version" in sources:
        setting = sources["version"]
        sources["version"] = Setting(
            "version", _normalise_version(setting.value, _describe_source("version", setting)), setting.source
        )
    if "ca_bundle" in sources:
        setting = sources["ca_bundle"]
        bundle = os.path.expanduser(str(setting.value))
        if not os.path.exists(bundle):
            raise ConfigurationError(
                f"the CA bundle {bundle!r} (from {_describe_source('ca_bundle', setting)}) does not "
                "exist: fix verify= / ca_bundle= / SF_CA_BUNDLE (a PEM file of trusted CAs)"
            )
        sources["ca_bundle"] = Setting("ca_bundle", bundle, setting.source)
    if "token_cache" in sources:
        setting = sources["token_cache"]
        sources["token_cache"] = Setting(
            "token_cache", token_cache_value(setting.value, _describe_source("token_cache", setting)), setting.source
        )
    for name in ("username", "consumer_key"):
        if name in sources and not isinstance(sources[name].value, str):
            raise ConfigurationError(f"{name}= must be a string, not {type(sources[name].value).__name__}")


_SWITCH_ON = ("1", "true", "yes", "on")
_SWITCH_OFF = ("0", "false", "no", "off")
_SWITCH_WORDS = _SWITCH_ON + _SWITCH_OFF


def token_cache_value(value: object, named: str = "token_cache=") -> Union[bool, str]:
    """``token_cache`` as connect_jwt uses it: True (the default folder), False (off) or
    the absolute path of a folder. Strings ``1``/``true``/``yes``/``on`` and
    ``0``/``false``/``no``/``off`` (any case) are switches; any other string is a folder
    (``~`` expanded). ConfigurationError names ``named`` for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{named} must be True, False or the path of a folder, not {type(value).__name__} "
            "(token_cache= / SF_TOKEN_CACHE: 1 or a path turns the shared token cache on, 0 off)"
        )
    text = value.strip()
    if text.lower() in _SWITCH_ON:
        return True
    if text.lower() in _SWITCH_OFF or not text:
        return False
    return os.path.abspath(os.path.expanduser(text))


def _describe_source(name: str, setting: Setting) -> str:
    if setting.source == "argument":
        return f"{name}="
    if setting.source == "environment":
        return ENV[name]
    return setting.source


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
            raise ConfigurationError(
                f"timeout={tuple(value)!r} has {len(value)} value{'s' if len(value) != 1 else ''}: "
                f"{_TIMEOUT_FIX}"
            )
        return (_seconds(value[0], "connect"), _seconds(value[1], "read"))
    return _seconds(value)


_CERT_RE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_CA_SCAN_CHUNK = 64 * 1024
_CA_SCAN_LIMIT = 64 * 1024 * 1024
_CA_FIX = (
    "give verify= / SF_CA_BUNDLE (ca_bundle in a profile) the path of a PEM file of trusted CA "
    "certificates ('-----BEGIN CERTIFICATE-----'), or a folder prepared with c_rehash; or leave "
    "it unset for the system's CAs"
)


def _has_pem_certificate(handle: IO[bytes]) -> bool:
    """A PEM certificate line within the first :data:`_CA_SCAN_LIMIT` bytes (usually the
    first chunk: bundles start with one)."""
    tail = b""
    read = 0
    while read < _CA_SCAN_LIMIT:
        chunk = handle.read(_CA_SCAN_CHUNK)
        if not chunk:
            return False
        read += len(chunk)
        if _CERT_RE.search(tail + chunk):
            return True
        tail = chunk[-40:]
    return False


_HASHED_NAME_RE = re.compile(r"^[0-9a-f]{8}\.r?[0-9]+$")


def _has_hashed_certificates(folder: str) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(_HASHED_NAME_RE.match(entry.name) for entry in entries)
    except OSError:
        return False


def _check_ca_bundle(path: str, named: str, fix: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigurationError(f"{named} names {path!r}, which does not exist: {fix}") from None
    except OSError as exc:
        raise ConfigurationError(f"{named} names {path!r}, which cannot be read ({exc.strerror or exc}): {fix}") from None
    if stat.S_ISDIR(info.st_mode):
        # a c_rehash folder: OpenSSL looks certificates up by their hash names (<hash>.0)
        if not _has_hashed_certificates(path):
            raise ConfigurationError(
                f"{named} names the folder {path!r}, which holds no certificates by hash name "
                f"(<hash>.0, made by c_rehash / openssl rehash): {fix}"
            )
        return
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"{named} names {path!r}, which is {file_kind(info.st_mode)}: {fix}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigurationError(f"{named} names {path!r}, which cannot be read ({exc.strerror or exc}): {fix}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the stat
        os.close(fd)
        raise ConfigurationError(f"{named} names {path!r}, which is not a regular file: {fix}")
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if not _has_pem_certificate(handle):
            raise ConfigurationError(
                f"{named} names {path!r} ({file_size_text(info.st_size)}), which holds no PEM certificate "
                "(no '-----BEGIN CERTIFICATE-----' line; a DER .cer converts with `openssl x509 "
                f"-inform der -in ca.cer -out ca.pem`): {fix}"
            )


def check_verify(
    verify: object,
    *,
    named: str = "verify=",
    trust_env: bool = True,
    environ: Optional[Mapping[str, str]] = None,
) -> Union[bool, str]:
    """``verify=`` checked before any connection: ``True`` / ``False``, or the path (``str``
    or path-like, ``~`` expanded) of an existing PEM file holding a certificate, or of a
    c_rehash folder. ``named`` says where the value came from (``verify=``, ``SF_CA_BUNDLE``,
    ``profile:<name>``). With ``True`` and ``trust_env``, requests replaces it by
    ``REQUESTS_CA_BUNDLE`` (else ``CURL_CA_BUNDLE``): that file is checked the same way and
    named. Raises :class:`ConfigurationError`; returns the value to use."""
    if isinstance(verify, bool):
        if verify and trust_env:
            env = os.environ if environ is None else environ
            for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                value = env.get(variable)
                if value:  # requests: os.environ.get("REQUESTS_CA_BUNDLE") or ...("CURL_CA_BUNDLE")
                    _check_ca_bundle(
                        value,
                        f"{variable} (which requests uses when verify= is left at its default)",
                        f"fix or unset {variable}, or pass verify= / SF_CA_BUNDLE the path of a PEM "
                        "file of trusted CA certificates",
                    )
                    break
        return verify
    if isinstance(verify, os.PathLike):
        verify = os.fspath(verify)
    if not isinstance(verify, str):
        raise ConfigurationError(
            f"{named} is {verify!r} (of type {type(verify).__name__}): it must be True, False or the path of "
            f"a CA bundle; {_CA_FIX}"
        )
    if not verify.strip():
        raise ConfigurationError(f"{named} is an empty string: {_CA_FIX}")
    path = os.path.expanduser(verify)
    where = named if named == "verify=" else f"{named} (verify=)"
    _check_ca_bundle(path, where, _CA_FIX)
    return path


def masked_settings(settings: Settings) -> Settings:
    """A copy of the settings whose key text and passphrase read ``(hidden)``: the key
    object lives in the token client, nothing else keeps secrets."""
    sources = {
        name: dataclasses.replace(setting, value="(hidden)")
        if name in SECRETS and setting.value is not None
        else setting
        for name, setting in settings.sources.items()
    }
    return Settings(sources, config_file=settings.config_file)
