"""``connect_jwt()``: settings -> key -> token exchange -> refreshing session -> SalesforceJWT.

    from sfjwt_ext import connect_jwt
    sf = connect_jwt()                      # everything from SF_* variables / the profile
    sf.query_all("SELECT Id FROM Account")  # an ordinary simple_salesforce.Salesforce

Reuse: in one process, a second ``connect_jwt()`` for the same user, Connected App, token
URL, audience and key (SHA-256 of the key file's or text's bytes and the passphrase, so a reuse costs no key
parse) does not log in again. It gets
the live token and *shares* the first client's :class:`~sfjwt_ext.session.Refresher`, so a
refresh done by either client serves both. A notebook cell that is run again therefore
costs no login. ``cache=False`` neither reads nor fills that cache; failed logins are
never cached; :func:`clear_cache` empties it.

Your own ``session=``: ``sf.session`` is always a :class:`~sfjwt_ext.session.RefreshingSession`
(that is what keeps every API, bulk and metadata included, alive). When you pass a
``requests.Session``, its mounted adapters (shared: same pools, same retry policy),
headers, proxies, cookies (copied), client certificate, auth, hooks and params are taken
over by the refreshing session; its ``verify`` is used unless ``verify=`` is given.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import html
import os
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.metadata import SfdcMetadataApi

from .session import Refresher, RefreshingSession, _make_logger, _mask

if TYPE_CHECKING:  # pragma: no cover
    from .exchange import LoginTarget, TokenResponse

__all__ = ["connect_jwt", "SalesforceJWT", "clear_cache"]

logger = _make_logger("sfjwt_ext.connect")

CacheKey = Tuple[str, str, str, str, str]

_cache: Dict[CacheKey, Refresher] = {}
_cache_lock = threading.Lock()
_login_locks: Dict[CacheKey, threading.Lock] = {}
_insecure_warned = False

# Arguments of Salesforce() that connect_jwt decides itself.
_RESERVED = frozenset(
    {
        "session_id", "instance", "instance_url", "password", "security_token",
        "organizationId", "consumer_secret", "privatekey_file", "privatekey", "client_id",
    }
)


# Settings resolved for the same arguments, environment and profile file (by its stat),
# so that a cached connect_jwt() -- a notebook cell run again -- costs microseconds.
_SETTINGS_MEMO: "collections.OrderedDict[Tuple[Any, ...], Any]" = collections.OrderedDict()
_SETTINGS_MEMO_SIZE = 16
_CONFIG_ENV = ("SFJWT_CONFIG", "XDG_CONFIG_HOME", "HOME", "APPDATA")
_SETTINGS_ENV: List[str] = []  # every variable settings reads; _CONFIG_ENV last
_CONFIG_PATHS: Dict[Tuple[Optional[str], ...], str] = {}
# A client of the same refresher with the same verify / proxies / timeout shares the first
# one's RefreshingSession: its connection pool too (no new TLS handshake).
_SHARED_SESSIONS: "weakref.WeakValueDictionary[Tuple[Any, ...], RefreshingSession]" = weakref.WeakValueDictionary()


def clear_cache() -> None:
    """Forget every cached login of this process (clients already made keep working)."""
    with _cache_lock:
        _cache.clear()
        _login_locks.clear()
        _SETTINGS_MEMO.clear()
        _SHARED_SESSIONS.clear()


def _cwd() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _resolve_settings(arguments: Dict[str, Any]) -> Any:
    """``settings.resolve_settings`` with a small memo: the key is the arguments, every
    environment variable settings read, and the profile file's stat (an edit shows).
    Key text given as an argument is never kept in the memo."""
    from .settings import ENV, ENV_ALIASES, config_path, resolve_settings

    if arguments.get("private_key") is not None or arguments.get("private_key_passphrase") is not None:
        return resolve_settings(**arguments)
    if not _SETTINGS_ENV:
        _SETTINGS_ENV.extend([*ENV.values(), *(a for aliases in ENV_ALIASES.values() for a in aliases), *_CONFIG_ENV])
    environ = os.environ
    environment = tuple(environ.get(name) for name in _SETTINGS_ENV)
    config_env = environment[-len(_CONFIG_ENV):]
    path = _CONFIG_PATHS.get(config_env)
    if path is None:
        path = _CONFIG_PATHS[config_env] = str(config_path())
    try:
        # Its content, not only its stat: two edits within the file system's timestamp
        # granularity that keep the size would otherwise look the same (a profile is small).
        with open(path, "rb") as handle:
            profile_file: Any = hashlib.sha256(handle.read()).digest()
    except OSError:
        profile_file = None
    # The working directory is part of the key: relative paths (SFJWT_CONFIG, the CA
    # bundle) were checked against it.
    key = (tuple(sorted(arguments.items())), environment, profile_file, _cwd())
    try:
        hash(key)
    except TypeError:  # an unhashable argument: no memo, resolve_settings says what is wrong
        return resolve_settings(**arguments)
    with _cache_lock:
        settings = _SETTINGS_MEMO.get(key)
        if settings is not None:
            bundle = getattr(settings, "ca_bundle", None)
            if bundle and not os.path.exists(bundle):
                # deleted since: resolve again, which raises the ConfigurationError naming it
                del _SETTINGS_MEMO[key]
                settings = None
            else:
                _SETTINGS_MEMO.move_to_end(key)
                return settings
    settings = resolve_settings(**arguments)
    with _cache_lock:
        _SETTINGS_MEMO[key] = settings
        while len(_SETTINGS_MEMO) > _SETTINGS_MEMO_SIZE:
            _SETTINGS_MEMO.popitem(last=False)
    return settings


def _session_for(
    refresher: Refresher, *, verify: Any, proxies: Optional[Dict[str, str]], timeout: Any,
    base: Optional[requests.Session],
) -> RefreshingSession:
    if base is not None:  # the caller's own session: its adapters, headers, cookies
        return RefreshingSession(refresher, verify=verify, proxies=proxies, timeout=timeout, base=base)
    key = (id(refresher), verify, tuple(sorted((proxies or {}).items())), repr(timeout))
    with _cache_lock:
        shared = _SHARED_SESSIONS.get(key)
        if shared is not None and shared.refresher is refresher:
            return shared
        shared = RefreshingSession(refresher, verify=verify, proxies=proxies, timeout=timeout)
        _SHARED_SESSIONS[key] = shared
        return shared


def _instance_from_url(instance_url: str) -> str:
    """What simple-salesforce keeps as ``sf_instance``: host, plus the port when not 443."""
    parts = urlsplit(instance_url)
    instance = parts.hostname or ""
    if parts.port not in (None, 443):
        instance += f":{parts.port}"
    return instance


def _key_fingerprint(key: Any) -> str:
    numbers = key.public_key().public_numbers()
    return hashlib.sha256(f"{numbers.n:x}:{numbers.e:x}".encode("ascii")).hexdigest()


def _key_source_fingerprint(settings: Any) -> Optional[str]:
    """Identify the key by what the user gave, without parsing it.

    Parsing a PEM key costs ~50 ms (cryptography validates it); hashing its bytes costs
    microseconds, so a cached connect_jwt() skips the parse. The passphrase is part of the
    identity: a wrong one never rides on a cached session. ``None`` when the source cannot
    be read (the full load then reports why).
    """
    source = settings.private_key if settings.private_key is not None else None
    digest = hashlib.sha256()
    if source is None and settings.private_key_file:
        try:
            with open(settings.private_key_file, "rb") as handle:
                digest.update(b"file\0" + handle.read())
        except OSError:
            return None
    elif isinstance(source, str):
        digest.update(b"text\0" + source.encode("utf-8", "surrogatepass"))
    elif isinstance(source, (bytes, bytearray)):
        digest.update(b"bytes\0" + bytes(source))
    elif source is not None and hasattr(source, "public_key"):
        digest.update(b"object\0" + _key_fingerprint(source).encode("ascii"))
    else:
        return None
    passphrase = settings.private_key_passphrase
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8", "surrogatepass")
    digest.update(b"\0pass\0" + (hashlib.sha256(passphrase).digest() if passphrase else b""))
    return digest.hexdigest()


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:  # pragma: no cover
        return url


def _masked_settings(settings: Any) -> Any:
    """A copy of the settings whose key text and passphrase read ``(hidden)``: the key
    object lives in the token client, nothing else keeps secrets."""
    secret_names = ("private_key", "private_key_passphrase")
    sources = getattr(settings, "sources", None)
    if isinstance(sources, dict):
        try:
            cleaned = {
                name: (
                    dataclasses.replace(setting, value="(hidden)")
                    if name in secret_names and getattr(setting, "value", None) is not None
                    else setting
                )
                for name, setting in sources.items()
            }
            return type(settings)(cleaned, config_file=getattr(settings, "config_file", None))
        except Exception:  # pragma: no cover - a Settings of another shape
            logger.debug("could not copy the settings; keeping none on the client")
            return None
    if any(getattr(settings, name, None) for name in secret_names):
        return None  # never keep secrets we cannot mask
    return settings


class SalesforceJWT(Salesforce):
    """A :class:`simple_salesforce.Salesforce` whose session never expires for you.

    Made by :func:`connect_jwt`. ``sf.session`` is a :class:`RefreshingSession`;
    ``sf.refresher`` the (possibly shared) :class:`Refresher`; ``sf.login_target`` where
    the token came from; ``sf.settings`` the resolved settings without secrets.
    """

    def __init__(
        self,
        *,
        refresher: Refresher,
        session: RefreshingSession,
        login_target: Optional["LoginTarget"] = None,
        settings: Any = None,
        version: Optional[str] = None,
        username: Optional[str] = None,
        **salesforce_kwargs: Any,
    ) -> None:
        # Set before Salesforce.__init__: its __getattr__ turns unknown names into SFType.
        self.refresher = refresher
        self.login_target = login_target
        self.settings = settings
        self.username = username
        self._mdapi = None
        self._sfjwt_token_lock = threading.Lock()
        token = refresher.token
        super().__init__(
            session_id=token.access_token,
            instance_url=token.instance_url,
            version=version or DEFAULT_API_VERSION,
            session=session,
            **salesforce_kwargs,
        )
        self.auth_type = "jwt-bearer"
        if login_target is not None:
            self.auth_site = f"{urlsplit(login_target.token_url).scheme}://{_host(login_target.token_url)}"
        refresher.attach(self)
        if refresher.token is not token:  # refreshed between the two lines above
            self._sfjwt_token_changed(refresher.token)

    # -- names simple-salesforce would turn into SObject types ---------------------------
    def __getattr__(self, name: str) -> Any:
        # SObject API names never start with "_": so IPython's probes (_repr_*_,
        # _ipython_canary_method_should_not_exist_) and half-built objects get the
        # AttributeError they expect instead of an SFType.
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return super().__getattr__(name)

    @property
    def token(self) -> "TokenResponse":
        """The current token (its repr masks the access token)."""
        return self.refresher.token

    @property
    def refresh_count(self) -> int:
        return self.refresher.refresh_count

    # -- the metadata client on our session ----------------------------------------------
    @property
    def mdapi(self) -> SfdcMetadataApi:
        """The Metadata API client, with its zeep transport on ``sf.session``.

        simple-salesforce's zeep client would post through zeep's own requests.Session (no
        refresh, no CA bundle); we point it at the refreshing session. Its headers are a
        copy, so the metadata path no longer changes ``sf.headers``.
        """
        if self._mdapi is None:
            api = SfdcMetadataApi(
                session=self.session,
                session_id=self.session_id,
                instance=self.sf_instance,
                metadata_url=self.metadata_url,
                api_version=self.sf_version,
                headers=dict(self.headers),
            )
            transport = getattr(getattr(api, "_client", None), "transport", None)
            if transport is not None:
                transport.session = self.session
            _redact_zeep_debug_log()
            self._mdapi = api
        return self._mdapi

    # -- refresh notifications --------------------------------------------------------------
    def _sfjwt_token_changed(self, token: "TokenResponse") -> None:
        """Called by the refresher (under no lock) after every refresh.

        Two refreshes in quick succession notify from two threads in any order: the client
        always takes the refresher's *current* token (under its own lock), so a late
        notification of an older token cannot overwrite a newer one.
        """
        with self._sfjwt_token_lock:
            self._sfjwt_apply_token(self.refresher.token)

    def _sfjwt_apply_token(self, token: "TokenResponse") -> None:
        self.session_id = token.access_token
        self.headers["Authorization"] = "Bearer " + token.access_token
        instance = _instance_from_url(token.instance_url)
        if instance and instance != self.sf_instance:
            logger.info("instance moved from %s to %s", self.sf_instance, instance)
            self._set_instance(instance)

    def _set_instance(self, instance: str) -> None:
        self.sf_instance = instance
        self.base_url = f"https://{instance}/services/data/v{self.sf_version}/"
        self.apex_url = f"https://{instance}/services/apexrest/"
        self.bulk_url = f"https://{instance}/services/async/{self.sf_version}/"
        self.bulk2_url = f"https://{instance}/services/data/v{self.sf_version}/jobs/"
        self.metadata_url = f"https://{instance}/services/Soap/m/{self.sf_version}/"
        self.tooling_url = f"{self.base_url}tooling/"
        self.oauth2_url = f"https://{instance}/services/oauth2/"
        self._mdapi = None

    # -- conveniences ----------------------------------------------------------------------
    def query_df(self, soql: str, **kw: Any) -> Any:
        """``sfjwt_ext.dataframe.query_df(self, soql, **kw)`` (pandas imported only now)."""
        from .dataframe import query_df

        return query_df(self, soql, **kw)

    def query_arrow(self, soql: str, **kw: Any) -> Any:
        """``sfjwt_ext.dataframe.query_arrow(self, soql, **kw)``: a ``pyarrow.Table``."""
        from .dataframe import query_arrow

        return query_arrow(self, soql, **kw)

    def query_to_parquet(self, soql: str, path: "str | os.PathLike[str]", **kw: Any) -> int:
        """``sfjwt_ext.dataframe.query_to_parquet(self, soql, path, **kw)``: rows written."""
        from .dataframe import query_to_parquet

        return query_to_parquet(self, soql, path, **kw)

    def _summary(self) -> Dict[str, str]:
        token = self.refresher.token
        logged_in = datetime.fromtimestamp(self.refresher.logged_in_at, tz=timezone.utc)
        return {
            "user": str(self.username or "?"),
            "org": str(getattr(token, "org_id", None) or "?"),
            "instance": f"https://{self.sf_instance}",
            "version": str(self.sf_version),
            "login host": _host(self.login_target.token_url) if self.login_target is not None else "?",
            "logged in": logged_in.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "refreshes": str(self.refresher.refresh_count),
        }

    def __repr__(self) -> str:
        s = self._summary()
        return (
            f"SalesforceJWT(user={s['user']!r}, org={s['org']!r}, instance={s['instance']!r}, "
            f"version={s['version']!r}, login_host={s['login host']!r}, "
            f"logged_in={s['logged in']!r}, refreshes={s['refreshes']})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<table><caption>SalesforceJWT</caption>{rows}</table>"


def _redact_zeep_debug_log() -> None:
    """zeep logs whole SOAP envelopes (with ``<sessionId>``) at DEBUG: mask them."""
    try:
        from ._redact import RedactingFilter
    except Exception:  # pragma: no cover
        return
    import logging

    zeep_logger = logging.getLogger("zeep.transports")
    if not any(isinstance(f, RedactingFilter) for f in zeep_logger.filters):
        zeep_logger.addFilter(RedactingFilter())


def _warn_insecure() -> None:
    global _insecure_warned
    if not _insecure_warned:
        _insecure_warned = True
        logger.warning(
            "verify=False: TLS certificates of Salesforce are NOT checked for this connection "
            "(anyone on the network path can read the session). Use verify=<CA bundle path> "
            "or SF_CA_BUNDLE instead."
        )


def _login(
    settings: Any,
    key: Any,
    target: "LoginTarget",
    *,
    verify: Union[bool, str],
    proxies: Optional[Dict[str, str]],
    timeout: Any,
) -> Refresher:
    from .exchange import TokenClient

    kwargs: Dict[str, Any] = {
        "username": settings.username,
        "consumer_key": settings.consumer_key,
        "key": key,
        "target": target,
        "verify": verify,
        "proxies": proxies,
    }
    if timeout is not None:
        kwargs["timeout"] = timeout
    client = TokenClient(**kwargs)
    if getattr(client, "username", None) is None:
        try:
            client.username = settings.username  # for the refresher's log lines
        except Exception:  # pragma: no cover
            pass
    started = time.monotonic()
    logger.debug("logging in %s at %s", settings.username, target.token_url)
    token = client.fetch()
    # exchange.py logs the login at INFO (user, host, org, elapsed); this is the step.
    logger.debug(
        "logged in %s at %s (org %s, instance %s) in %.0f ms",
        settings.username, _host(target.token_url), getattr(token, "org_id", "?"),
        _host(token.instance_url), (time.monotonic() - started) * 1000.0,
    )
    return Refresher(client, token)


def _cached_login(key: CacheKey, login: Callable[[], Refresher]) -> Tuple[Refresher, bool]:
    """(refresher, reused): one login per key even when threads connect at once."""
    with _cache_lock:
        refresher = _cache.get(key)
        if refresher is not None:
            return refresher, True
        lock = _login_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            refresher = _cache.get(key)
            if refresher is not None:
                return refresher, True
        refresher = login()  # raises: nothing cached
        with _cache_lock:
            _cache[key] = refresher
        return refresher, False


def connect_jwt(
    username: Optional[str] = None,
    consumer_key: Optional[str] = None,
    *,
    private_key: Optional[str] = None,
    private_key_file: Optional[str] = None,
    private_key_passphrase: Optional[str] = None,
    domain: Optional[str] = None,
    login_url: Optional[str] = None,
    audience: Optional[str] = None,
    version: Optional[str] = None,
    session: Optional[requests.Session] = None,
    proxies: Optional[Dict[str, str]] = None,
    verify: Optional[Union[bool, str]] = None,
    timeout: Any = None,
    cache: bool = True,
    profile: Optional[str] = None,
    **salesforce_kwargs: Any,
) -> SalesforceJWT:
    """Log in with the OAuth 2.0 JWT bearer flow; return a :class:`SalesforceJWT`.

    Every argument left out comes from the environment (``SF_USERNAME``,
    ``SF_CONSUMER_KEY``, ``SF_PRIVATE_KEY_FILE`` ...) or the profile (``profile=`` /
    ``SF_PROFILE``). ``verify`` defaults to ``SF_CA_BUNDLE`` when set, else ``True``.
    ``timeout`` applies to the token POST and to every API call made without one.
    Extra keyword arguments (``parse_float``, ``object_pairs_hook``) go to
    ``simple_salesforce.Salesforce``.
    """
    from .exchange import resolve_login
    from .keys import load_private_key
    reserved = sorted(_RESERVED.intersection(salesforce_kwargs))
    if reserved:
        raise TypeError(
            f"connect_jwt() decides {', '.join(reserved)} itself (from the JWT login); "
            "remove that argument"
        )
    started = time.monotonic()
    arguments = {
        "username": username,
        "consumer_key": consumer_key,
        "private_key": private_key,
        "private_key_file": private_key_file,
        "private_key_passphrase": private_key_passphrase,
        "domain": domain,
        "login_url": login_url,
        "audience": audience,
        "version": version,
        "profile": profile,
    }
    settings = _resolve_settings({k: v for k, v in arguments.items() if v is not None})
    settings.require()

    if verify is None:
        if session is not None and session.verify is not True:
            verify = session.verify
        else:
            verify = getattr(settings, "ca_bundle", None) or True
    if verify is False:
        _warn_insecure()
    if proxies is None and session is not None and session.proxies:
        proxies = dict(session.proxies)

    target = resolve_login(
        domain=settings.domain, login_url=settings.login_url, audience=settings.audience
    )
    api_version = str(getattr(settings, "version", None) or DEFAULT_API_VERSION).lstrip("vV")

    def load_key() -> Any:
        return load_private_key(
            private_key=settings.private_key,
            private_key_file=settings.private_key_file,
            passphrase=settings.private_key_passphrase,
        )

    tls_verify: Union[bool, str] = True if verify is None else verify

    def login(key: Any = None) -> Refresher:
        key = load_key() if key is None else key
        return _login(settings, key, target, verify=tls_verify, proxies=proxies, timeout=timeout)

    key_id = _key_source_fingerprint(settings) if cache else None
    if cache and key_id is None:
        # Unreadable source: load now so the user gets the PrivateKeyError that says why.
        key = load_key()
        key_id = _key_fingerprint(key)
        login = functools.partial(login, key)  # type: ignore[assignment]
    if cache:
        cache_key: CacheKey = (
            str(settings.username), str(settings.consumer_key), target.token_url,
            target.audience, str(key_id),
        )
        refresher, reused = _cached_login(cache_key, login)
        if reused:
            logger.info(
                "reusing the session of %s at %s (org %s, token %s)",
                settings.username, _host(target.token_url),
                getattr(refresher.token, "org_id", "?"), _mask(refresher.access_token),
            )
    else:
        refresher = login()

    refreshing = _session_for(refresher, verify=verify, proxies=proxies, timeout=timeout, base=session)
    sf = SalesforceJWT(
        refresher=refresher,
        session=refreshing,
        login_target=target,
        settings=_masked_settings(settings),
        version=api_version,
        username=settings.username,
        **salesforce_kwargs,
    )
    if settings.domain:
        sf.domain = settings.domain
    logger.debug("connect_jwt done in %.0f ms", (time.monotonic() - started) * 1000.0)
    return sf
