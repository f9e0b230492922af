"""The login cache: one object that owns every login of this process, with one lock.

``connect_jwt()`` asks :data:`default_cache` (a :class:`LoginCache`) for

* the **settings** of a call (``LoginCache.settings``): resolved once per arguments,
  environment, profile file content and working directory, so a notebook cell that is run
  again costs microseconds;
* the **login** of a :class:`LoginKey` (``LoginCache.login``): a
  :class:`~sfjwt_ext.auth.credentials.Refresher`, made by one token request however many threads
  ask at once (the first refresh of a :meth:`~sfjwt_ext.auth.credentials.Refresher.before_login`:
  one single-flight for first logins and refreshes). Threads that wait for a first login share
  its outcome, the failure included (32 threads against a token endpoint that answers 503 make
  one caller's retries, not 32);
  a failed login is never kept;
* the **session** of a login (``LoginCache.session``): clients of one login share one
  :class:`~sfjwt_ext.auth.transport.RefreshingSession` (and its connection pool) while one of them
  is alive; the cache holds it weakly.

What a key is made of is decided here, in the key makers (:func:`login_key`,
:func:`key_source_id`, :func:`settings_key`), and nowhere else. A :class:`LoginKey` is the
:class:`LoginIdentity` a token belongs to (user, Consumer Key, token URL, audience, key) plus
the transport its token requests are made with (``verify``, proxies, timeout and the
environment's proxies / CA bundle): a login made with ``verify=False`` is never reused by a
client that asked for ``verify="/path/ca.pem"``, and every refresh goes out the way its
client asked.

Bounded: at most ``max_logins`` logins (:data:`MAX_LOGINS`, 64) and ``max_settings``
resolved settings (:data:`MAX_SETTINGS`, 64), least recently used first out. An evicted
login's token client is closed (its idle TLS connection goes); a client still using that
login keeps working (its next refresh opens a new connection).

Fork-aware: the lock, the first logins in flight and the shared sessions live in a
:class:`~sfjwt_ext._internal.fork.ProcessLocal`. A forked child gets a fresh lock and forgets the
parent's logins in flight (their threads do not exist in the child: it logs in itself) and
the parent's sessions; the logins it keeps (their tokens stay valid) first close the pooled
connections inherited from the parent, so the child's token requests open their own.

The token cache shared by processes (``connect_jwt(token_cache=...)``) is part of the login:
its folder is the third field of the :class:`LoginKey`, and the login's token source is a
:class:`~sfjwt_ext.sharing.diskcache.SharedTokenSource` wrapping the token client, so the first
login and every refresh read the entry, and log in under its lock only when it holds
nothing newer. :meth:`LoginCache.disk_store` keeps one store per folder (so each problem is
warned about once per process). ``login(key, make_client, token=...)`` starts a login from a
token in hand (an unpickled client's): no token request.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import threading
import weakref
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from cryptography.hazmat.primitives.asymmetric import rsa

from .._internal.fork import ProcessLocal
from ..auth.credentials import LoginIdentity, Refresher, TokenSource
from ..auth.keys import key_fingerprint, read_key_file
from ..auth.target import LoginTarget
from ..auth.token_client import TimeoutType, TokenClient, TokenResponse
from ..auth.transport import RefreshingSession
from ..config import ENV, ENV_ALIASES, SECRETS, Settings, config_path, read_profile_file, resolve_settings
from ..errors import ConfigurationError, PrivateKeyError
from .diskcache import SharedTokenSource, TokenStore, default_folder

__all__ = ["LoginCache", "LoginKey", "default_cache", "login_key", "key_source_id", "cache_folder",
           "token_source", "MAX_LOGINS", "MAX_SETTINGS"]

#: Logins kept per process (least recently used out first; each holds one idle TLS connection).
MAX_LOGINS = 64
#: Resolved settings kept per process.
MAX_SETTINGS = 64

class LoginKey(NamedTuple):
    identity: LoginIdentity
    #: how its token requests are made: verify (True, False or an absolute CA bundle path), the
    #: proxies= given (sorted), repr(timeout) and what the environment adds (proxies, CA bundle)
    transport: Tuple[object, ...]
    #: the token cache folder its refreshes go through (absolute), None: no token cache
    token_cache: Optional[str] = None


SettingsKey = Tuple[object, ...]
#: A shared session: the login it serves and the retries setting of its clients.
SessionKey = Tuple[LoginKey, Optional[int]]

# Every variable resolve_settings reads, then those config_path() reads.
_CONFIG_ENV = ("SFJWT_CONFIG", "XDG_CONFIG_HOME", "HOME", "APPDATA")
_SETTINGS_ENV = (*ENV.values(), *(alias for aliases in ENV_ALIASES.values() for alias in aliases), *_CONFIG_ENV)
# What requests adds to a request made with verify=True when the environment is trusted.
_CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# The variables requests reads for the proxy of an https URL (token URLs are https). Keyed as
# they are: reading these six is cheap, requests.utils.get_environ_proxies walks the whole
# environment twice (half the cost of a cached connect_jwt).
_PROXY_ENV = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def login_key(
    settings: Settings, target: LoginTarget, key_id: str, *, verify: Union[bool, str],
    proxies: Optional[Mapping[str, str]], timeout: TimeoutType, token_cache: Optional[str] = None,
) -> LoginKey:
    """The cache key of a login: its identity, the transport of its token requests (with what
    this process's environment adds to them: its proxy variables, and its CA bundle variables
    when ``verify`` is True) and the token cache folder it shares tokens through."""
    identity = LoginIdentity(
        str(settings.username), str(settings.consumer_key), target.token_url, target.audience, key_id
    )
    if isinstance(verify, str):
        verify = os.path.abspath(os.path.expanduser(verify))
    names = _PROXY_ENV + _CA_BUNDLE_ENV if verify is True else _PROXY_ENV
    environment = tuple(sorted((name, os.environ[name]) for name in names if os.environ.get(name)))
    return LoginKey(identity, (verify, tuple(sorted((proxies or {}).items())), repr(timeout), environment), token_cache)


def key_source_id(settings: Settings) -> Optional[str]:
    """Identify the key by what the user gave, without parsing it.

    Parsing a PEM key costs ~50 ms (cryptography validates it); hashing its bytes costs
    microseconds, so a cached ``connect_jwt()`` skips the parse. The passphrase is part of
    the identity: a wrong one never rides on a cached session. ``None`` when the key file
    cannot be read (loading the key then reports why).
    """
    source: Union[str, bytes, rsa.RSAPrivateKey, None] = settings.private_key
    if isinstance(source, rsa.RSAPrivateKey):
        material = b"object\0" + key_fingerprint(source).encode("ascii")
    elif source:
        material = b"text\0" + _utf8(source)
    else:  # a key file (connect_jwt required a key)
        try:
            material = b"file\0" + read_key_file(settings.private_key_file or "")
        except PrivateKeyError:  # loading the key says what is wrong with the file
            return None
    material += b"\0pass\0" + hashlib.sha256(_utf8(settings.private_key_passphrase or b"")).digest()
    return hashlib.sha256(material).hexdigest()


def _utf8(text: Union[str, bytes]) -> bytes:
    """Key text or a passphrase as bytes (a lone surrogate of a badly decoded environment kept)."""
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)


@functools.lru_cache(maxsize=16)
def _config_path(config_environment: Tuple[Optional[str], ...]) -> str:
    """``config_path()`` for these values of ``_CONFIG_ENV`` (its only inputs): platformdirs
    costs more than the rest of a cached connect_jwt."""
    return str(config_path())


def settings_key(arguments: Mapping[str, Any]) -> Optional[SettingsKey]:
    """The memo key of ``resolve_settings(**arguments)``: the arguments, every environment
    variable settings reads, the profile file's content (two edits within the file system's
    timestamp granularity keep its stat) and the working directory (relative paths were
    checked against it). ``None``: not memoized (key text or a passphrase among the
    arguments is never kept; an unhashable argument is left to resolve_settings to refuse).
    """
    if any(arguments.get(name) is not None for name in SECRETS):
        return None
    environment = tuple(os.environ.get(name) for name in _SETTINGS_ENV)
    try:
        path = _config_path(environment[-len(_CONFIG_ENV):])
        profile: Optional[bytes] = hashlib.sha256(read_profile_file(path)).digest()
    except OSError:  # no profile file
        profile = None
    except ConfigurationError:  # a FIFO, a device, too big: not memoized, resolve_settings says so
        return None
    cwd: Optional[str] = None
    with contextlib.suppress(OSError):  # else the working directory was removed
        cwd = os.getcwd()
    key = (tuple(sorted(arguments.items())), environment, profile, cwd)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class _ProcessState:
    """What belongs to one process: the lock, first logins in flight (refreshers that have
    no token yet), shared sessions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: Dict[LoginKey, Refresher] = {}
        self.sessions: "weakref.WeakValueDictionary[SessionKey, RefreshingSession]" = weakref.WeakValueDictionary()


class LoginCache:
    """Logins, settings and shared sessions of one process (see the module docstring)."""

    def __init__(self) -> None:
        self.max_logins = MAX_LOGINS
        self.max_settings = MAX_SETTINGS
        self._logins: "collections.OrderedDict[LoginKey, Refresher]" = collections.OrderedDict()
        self._settings: "collections.OrderedDict[SettingsKey, Settings]" = collections.OrderedDict()
        self._disk_stores: Dict[str, TokenStore] = {}
        self._process: ProcessLocal[_ProcessState] = ProcessLocal(self._new_process)

    def _new_process(self) -> _ProcessState:
        # Runs in __init__, and in a forked child before any thread there sees the state.
        for refresher in list(self._logins.values()):
            refresher.token_client.close()  # drop the parent's pooled connections, unwritten
        return _ProcessState()

    def settings(self, arguments: Mapping[str, Any]) -> Settings:
        """``resolve_settings(**arguments)``, memoized by :func:`settings_key`. A memo whose CA
        bundle was deleted since is resolved again, which raises the error naming it. Threads
        asking for the same new settings at once resolve them once (under the lock)."""
        key = settings_key(arguments)
        if key is None:
            return resolve_settings(**arguments)
        with self._process.get().lock:
            settings = self._settings.get(key)
            if settings is None or (settings.ca_bundle and not os.path.exists(settings.ca_bundle)):
                settings = self._settings[key] = resolve_settings(**arguments)
                while len(self._settings) > self.max_settings:
                    self._settings.popitem(last=False)
            self._settings.move_to_end(key)
            return settings

    def login(
        self, key: LoginKey, make_client: Callable[[], TokenSource], token: Optional[TokenResponse] = None
    ) -> Tuple[Refresher, bool]:
        """``(refresher, reused)`` for ``key``: the cached login, or one first login for all
        threads asking at once: the first refresh of a :meth:`Refresher.before_login`
        (``make_client()`` is called by the thread that logs in; ``token``, when given, is its
        first token: an unpickled client's, no token request). Its waiters get its refresher,
        or raise its exception; an interrupt (``KeyboardInterrupt``) stays with its thread and
        a waiter logs in instead. A failed login is never kept."""
        state = self._process.get()
        with state.lock:
            if key in self._logins:
                self._logins.move_to_end(key)
                return self._logins[key], True
            pending = state.in_flight.setdefault(key, Refresher.before_login(make_client, token))
        try:
            made = pending.log_in()
        except Exception:
            self._settle(state, key, pending, keep=False)
            raise
        self._settle(state, key, pending, keep=True)
        return pending, not made

    def _settle(self, state: _ProcessState, key: LoginKey, pending: Refresher, *, keep: bool) -> None:
        """A first login is over: out of flight, and cached when it succeeded (the least
        recently used logins beyond ``max_logins`` are evicted, their token clients closed)."""
        with state.lock:
            if state.in_flight.get(key) is not pending:
                return  # settled by another of its threads
            del state.in_flight[key]
            if keep:
                self._logins[key] = pending
            evicted = [self._logins.popitem(last=False)[1] for _ in range(len(self._logins) - self.max_logins)]
        for old in evicted:
            old.token_client.close()

    def __len__(self) -> int:
        return len(self._logins)

    def disk_store(self, folder: str) -> TokenStore:
        """The one :class:`~sfjwt_ext.sharing.diskcache.TokenStore` of ``folder`` (absolute) in this
        process: what it warned about is warned once, whichever client hits it."""
        with self._process.get().lock:
            return self._disk_stores.setdefault(folder, TokenStore(folder))

    def disk_folders(self) -> List[str]:
        """The token cache folders used in this process."""
        with self._process.get().lock:
            return list(self._disk_stores)

    def session(
        self, key: SessionKey, refresher: Refresher, make: Callable[[], RefreshingSession]
    ) -> RefreshingSession:
        """The session shared by the live clients of ``refresher`` (made by ``make()``)."""
        state = self._process.get()
        with state.lock:
            shared = state.sessions.get(key)
            if shared is None or shared.refresher is not refresher:
                shared = state.sessions[key] = make()
            return shared

    def clear(self) -> None:
        """Forget every login, memoized settings and shared session (clients already made
        keep working; the forgotten logins' idle token connections are closed)."""
        state = self._process.get()
        with state.lock:
            logins = list(self._logins.values())
            self._logins.clear()
            self._settings.clear()
            state.sessions.clear()
        for refresher in logins:
            refresher.token_client.close()

    def __repr__(self) -> str:
        return (f"<LoginCache logins={len(self._logins)}/{self.max_logins} "
                f"settings={len(self._settings)}/{self.max_settings}>")


#: The cache ``connect_jwt()`` uses.
default_cache = LoginCache()


def cache_folder(setting: Union[bool, str, None]) -> Optional[str]:
    """The token cache folder of a ``token_cache`` setting (None: off)."""
    return str(default_folder()) if setting is True else setting or None


def token_source(
    *, username: str, consumer_key: str, key: rsa.RSAPrivateKey, target: LoginTarget,
    verify: Union[bool, str], proxies: Optional[Dict[str, str]], timeout: TimeoutType,
    folder: Optional[str], last: Optional[TokenResponse] = None,
) -> TokenSource:
    """The token client of a login; with a token cache ``folder``, wrapped in the
    :class:`~sfjwt_ext.sharing.diskcache.SharedTokenSource` that shares its tokens on disk."""
    options: Dict[str, Any] = {} if timeout is None else {"timeout": timeout}  # None: TokenClient's (10, 30)
    client = TokenClient(username=username, consumer_key=consumer_key, key=key, target=target, verify=verify,
                         proxies=proxies, **options)
    return client if folder is None else SharedTokenSource(client, default_cache.disk_store(folder), key, last=last)
