"""Pickling a client (multiprocessing, ProcessPoolExecutor, joblib): what a pickle carries and
how a worker process gets a client back.

A pickle carries :class:`ClientState`: the current access token and where everything else
comes from, never a credential (no key text, passphrase, JWT or proxy password, nothing of the
environment). :func:`restore_client` runs in the worker: the client is made on the pickled
token through :data:`~sfjwt_ext.sharing.registry.default_cache` (unpickled clients of one login
in a process share one refresher and one session), with no token request while the token is
valid; the first refresh loads the key in the worker (:func:`_worker_key`). This module knows
nothing of the client class: :func:`restore_client` is handed the function that builds one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, TypeVar, Union

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from ..auth.credentials import Refresher, TokenSource
from ..auth.keys import load_private_key
from ..auth.target import LoginTarget
from ..auth.token_client import TimeoutType, TokenResponse
from ..auth.transport import RefreshingSession
from ..config import ENV, Settings, check_verify, masked_settings
from ..errors import ConfigurationError, PrivateKeyError
from .registry import LoginKey, cache_folder, default_cache, login_key, token_source

__all__ = ["ClientState", "client_state", "restore_client"]

T = TypeVar("T")


@dataclass(frozen=True)
class ClientState:
    """What a pickled :class:`SalesforceJWT` carries: its access token, and no other
    credential (no key text, no passphrase, no JWT, no proxy password, nothing of the
    environment: the receiving process makes the login key with its own). The username,
    consumer key, domain, token cache setting and where the key came from are read from
    ``settings``."""

    token: TokenResponse
    key_id: str                           # the login key's (never the key's material)
    target: LoginTarget
    settings: Settings                    # masked: SECRETS read "(hidden)"
    key_file: Optional[str]               # the key's file (absolute), when it came from one
    verify: Union[bool, str]
    verify_named: str                     # where verify came from (verify=, SF_CA_BUNDLE ...)
    proxies: Optional[Dict[str, str]]
    timeout: TimeoutType
    retries: Optional[int]
    version: Optional[str]                # None: simple-salesforce's default
    salesforce_kwargs: Dict[str, Any]

    @property
    def username(self) -> str:
        return self.settings.username or ""

    @property
    def domain(self) -> Optional[str]:
        return self.settings.domain


def client_state(
    settings: Settings, target: LoginTarget, cache_key: LoginKey, token: TokenResponse, *,
    verify: Union[bool, str], verify_named: str, proxies: Optional[Dict[str, str]], timeout: TimeoutType,
    retries: Optional[int], salesforce_kwargs: Dict[str, Any],
) -> ClientState:
    """What a pickle of connect_jwt's client carries. connect_jwt required a key: the key
    came from its file (``key_file``, made absolute here) when there is no key text."""
    key_file = None if settings.private_key is not None else os.path.abspath(str(settings.private_key_file))
    return ClientState(
        token=token, key_id=cache_key.identity.key_id, target=target, settings=masked_settings(settings),
        key_file=key_file, verify=verify, verify_named=verify_named, proxies=dict(proxies) if proxies else None,
        timeout=timeout, retries=retries, version=settings.version, salesforce_kwargs=dict(salesforce_kwargs),
    )


def _named(settings: Settings, name: str) -> str:
    """Where setting ``name`` came from, as a message names it."""
    setting = settings.sources.get(name)
    source = setting.source if setting is not None else None
    return {"argument": f"{name}=", "environment": ENV[name]}.get(str(source), f"{name} in {source}")


def _environ(name: str) -> Optional[str]:
    return os.environ.get(ENV[name]) or None


def _worker_key(state: ClientState) -> rsa.RSAPrivateKey:
    """The key of an unpickled client, loaded in this process from the same source: the
    key file, else ``SF_PRIVATE_KEY`` / ``SF_PRIVATE_KEY_FILE`` here (passphrase from
    ``SF_PRIVATE_KEY_PASSPHRASE``). ConfigurationError names what to set when none works."""
    where = f"this client was unpickled in process {os.getpid()}"
    try:
        if state.key_file and os.path.exists(state.key_file):
            return load_private_key(private_key_file=state.key_file, passphrase=_environ("private_key_passphrase"))
        if (_environ("private_key") or "").strip():
            return load_private_key(private_key=_environ("private_key"), passphrase=_environ("private_key_passphrase"))
        if _environ("private_key_file"):
            return load_private_key(
                private_key_file=_environ("private_key_file"), passphrase=_environ("private_key_passphrase")
            )
    except PrivateKeyError as exc:
        passphrase = (
            f" The key's passphrase came from {_named(state.settings, 'private_key_passphrase')} where it was "
            "pickled; here it is read from SF_PRIVATE_KEY_PASSPHRASE only: set that on the workers."
            if state.settings.private_key_passphrase else ""
        )
        raise ConfigurationError(f"{where}, and its key cannot be loaded here: {exc}.{passphrase}") from None
    copy = f"make the key file {state.key_file!r} readable there, or " if state.key_file else ""
    raise ConfigurationError(
        f"{where}, which has no private key to log in again with (the key came from "
        f"{_named(state.settings, 'private_key_file' if state.key_file else 'private_key')}, which a pickle never "
        f"carries): {copy}set SF_PRIVATE_KEY_FILE (or SF_PRIVATE_KEY, the PEM text) in the workers' environment, "
        "and SF_PRIVATE_KEY_PASSPHRASE when the key is encrypted"
    )


class _UnpickledTokenSource:
    """The token source of an unpickled client: the key is loaded (:func:`_worker_key`)
    and the token client made at the first refresh, not at unpickling (a worker whose
    token is valid needs no key and makes no token request). Its refresher calls
    ``fetch()`` under its own lock: one at a time."""

    def __init__(self, state: ClientState, folder: Optional[str]) -> None:
        self.username = state.username
        self._state = state
        self._folder = folder
        self._source: Optional[TokenSource] = None

    def fetch(self) -> TokenResponse:
        if self._source is None:
            state = self._state
            self._source = token_source(
                username=state.username, consumer_key=state.settings.consumer_key or "", key=_worker_key(state),
                target=state.target, verify=state.verify, proxies=state.proxies,
                timeout=state.timeout, folder=self._folder, last=state.token,
            )
        return self._source.fetch()

    def close(self) -> None:
        if self._source is not None:
            self._source.close()

    def __repr__(self) -> str:
        return f"<unpickled token source of {self.username} (key {'loaded' if self._source else 'not loaded yet'})>"


class _UnpickledSession(RefreshingSession):
    """The session of unpickled clients: its first request checks ``verify`` in this
    process, as connect_jwt does before it logs in (a CA bundle missing here raises the
    same :class:`ConfigurationError`). Not at unpickling: a worker that dies unpickling
    its task hangs a ``multiprocessing.Pool``."""

    def __init__(self, refresher: Refresher, *, verify_named: str, **kwargs: Any) -> None:
        super().__init__(refresher, **kwargs)
        self._verify_named = verify_named
        self._verify_checked = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if not self._verify_checked:
            check_verify(self.verify, named=self._verify_named, trust_env=self.trust_env)
            self._verify_checked = True
        return super().send(request, **kwargs)


def restore_client(build: Callable[[Refresher, RefreshingSession, ClientState], T], state: ClientState) -> T:
    """Unpickle: ``build(refresher, session, state)`` on the pickled token, through
    :data:`default_cache` (unpickled clients of one login in a process share one refresher,
    and one session). No token request while the token is valid; the first refresh loads
    the key (:func:`_worker_key`) and goes through the token cache when the setting says so."""
    folder = cache_folder(state.settings.token_cache)
    cache_key = login_key(state.settings, state.target, state.key_id, verify=state.verify, proxies=state.proxies,
                          timeout=state.timeout, token_cache=folder)
    refresher, _reused = default_cache.login(cache_key, lambda: _UnpickledTokenSource(state, folder), token=state.token)

    def new_session() -> RefreshingSession:
        return _UnpickledSession(refresher, verify=state.verify, proxies=state.proxies, timeout=state.timeout,
                                 retries=state.retries, verify_named=state.verify_named)

    return build(refresher, default_cache.session((cache_key, state.retries), refresher, new_session), state)
