"""``connect_jwt()``: settings -> key -> token exchange -> refreshing session -> SalesforceJWT.

    from sfjwt_ext import connect_jwt
    sf = connect_jwt()                      # everything from SF_* variables / the profile
    sf.query_all("SELECT Id FROM Account")  # an ordinary simple_salesforce.Salesforce

Reuse: in one process, a second ``connect_jwt()`` for the same user, Connected App, token
URL, audience and key (SHA-256 of the key file's or text's bytes and the passphrase, so a
reuse costs no key parse), made with the same ``verify``, proxies and timeout, does not log
in again. It gets the live token and *shares* the first client's
:class:`~sfjwt_ext.auth.transport.Refresher`, so a refresh done by either client serves both. A
notebook cell that is run again therefore costs no login. A client with other transport
settings makes its own login, whose refreshes go out the way it asked. Threads connecting at
once for one login make one token request and share its outcome, a failure included.
``cache=False`` neither reads nor fills that cache; failed logins are never cached;
:func:`clear_cache` empties it. The cache (bounded, fork-aware) is
:data:`sfjwt_ext.sharing.registry.default_cache`.

Many processes: ``token_cache=True`` (or a folder, ``SF_TOKEN_CACHE``, the profile's
``token_cache``) shares the token through an encrypted folder
(:mod:`sfjwt_ext.sharing.diskcache`): the login and every refresh go through a
:class:`~sfjwt_ext.sharing.diskcache.SharedTokenSource`, so N processes make one token request per
expiry. A :class:`SalesforceJWT` pickles (:meth:`SalesforceJWT.__reduce__`): the pickle
carries the token and where the key comes from, never the key; unpickling makes no token
request, and the first refresh loads the key in that process.

Your own ``session=``: ``sf.session`` is always a :class:`~sfjwt_ext.auth.transport.RefreshingSession`
(that is what keeps every API, bulk and metadata included, alive). When you pass a
``requests.Session``, its mounted adapters (shared: same pools, same retry policy),
headers, proxies, cookies (copied), client certificate, auth, hooks and params are taken
over by the refreshing session; its ``verify`` is used unless ``verify=`` is given.
"""
from __future__ import annotations

import dataclasses
import functools
import html
import os
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.metadata import SfdcMetadataApi

from ._internal.redact import MaskedToken, get_logger, mask_token
from ._internal.urls import host_of, instance_of
from .sharing.registry import LoginKey, cache_folder, default_cache, key_source_id, login_key, token_source
from .errors import ConfigurationError
from .auth.target import LoginTarget, resolve_login
from .auth.token_client import TimeoutType, TokenResponse
from .auth.keys import Passphrase, PathLike, key_fingerprint, load_private_key
from .auth.credentials import Refresher, TokenSource
from .auth.signals import refuse_jwt_below_soap_minimum
from .auth.transport import RefreshingSession
from .config import ENV, Settings, check_timeout, check_verify, token_cache_value
from .sharing.diskcache import default_folder
from .sharing.pickling import ClientState, client_state, restore_client

if TYPE_CHECKING:  # pragma: no cover  (pandas and pyarrow are optional extras)
    import pandas
    import pyarrow

__all__ = ["connect_jwt", "SalesforceJWT", "clear_cache"]

logger = get_logger("sfjwt_ext.connect")

# Arguments of Salesforce() that connect_jwt decides itself.
_RESERVED = frozenset({"session_id", "instance", "instance_url", "password", "security_token",
                       "organizationId", "consumer_secret", "privatekey_file", "privatekey", "client_id"})


def clear_cache(disk: bool = False) -> None:
    """Forget every cached login of this process (clients already made keep working).

    ``disk=True`` also empties the token cache folders shared by processes: the default one
    (:func:`~sfjwt_ext.sharing.diskcache.default_folder`), the one ``SF_TOKEN_CACHE`` names when
    it is a path, and every folder this process used."""
    folders = default_cache.disk_folders() if disk else []
    default_cache.clear()
    if not disk:
        return
    folders.append(str(default_folder()))
    named = token_cache_value(os.environ.get(ENV["token_cache"], ""), ENV["token_cache"])  # a string never fails
    if isinstance(named, str):
        folders.append(named)
    for folder in dict.fromkeys(folders):
        default_cache.disk_store(folder).clear()


class SalesforceJWT(Salesforce):
    """A :class:`simple_salesforce.Salesforce` whose session never expires for you.

    Made by :func:`connect_jwt`. ``sf.session`` is a :class:`RefreshingSession`;
    ``sf.refresher`` the (possibly shared) :class:`Refresher`; ``sf.login_target`` where
    the token came from; ``sf.settings`` the resolved settings without secrets.
    """

    def __init__(
        self, *, refresher: Refresher, session: RefreshingSession, login_target: Optional[LoginTarget] = None,
        settings: Optional[Settings] = None, version: Optional[str] = None, username: Optional[str] = None,
        **salesforce_kwargs: Any,
    ) -> None:
        # Set before Salesforce.__init__: its __getattr__ turns unknown names into SFType.
        self.refresher = refresher
        self.login_target = login_target
        self.settings = settings
        self.username = username
        self._sfjwt_token_lock = threading.Lock()
        self._sfjwt_state: Optional[ClientState] = None  # what a pickle carries (connect_jwt sets it)
        token = refresher.token
        super().__init__(
            session_id=token.access_token, instance_url=token.instance_url, version=version or DEFAULT_API_VERSION,
            session=session, **salesforce_kwargs,
        )
        self.auth_type = "jwt-bearer"
        if login_target is not None:
            self.auth_site = login_target.login_url
        refresher.attach(self)
        # the current token (also one refreshed since the line above) and its header, as MaskedToken
        self._sfjwt_token_changed(refresher.token)

    # -- pickling -------------------------------------------------------------------------
    def __reduce__(self) -> Tuple[Callable[..., "SalesforceJWT"], Tuple[Any, ...]]:
        """A pickle carries the current token, the login target, the settings without
        secrets (the key *file path*, never key text or passphrase), verify / proxies /
        timeout / retries, the API version and the token cache setting: see
        :func:`restore_client` for what unpickling does."""
        state = self._sfjwt_state
        if state is None:
            raise TypeError(
                "only a SalesforceJWT made by connect_jwt() (or unpickled) can be pickled: "
                "it needs to know where its key comes from"
            )
        if any("@" in url for url in (state.proxies or {}).values()):
            raise ConfigurationError(
                "this client was made with proxies= (or a session's proxies) holding a proxy user "
                "name or password, and a pickle never carries a credential: leave them out of "
                "proxies= and set HTTPS_PROXY (http://user:password@host:port) in the environment "
                "of the processes that unpickle it; an unpickled client uses its own environment"
            )
        state = dataclasses.replace(state, token=self.refresher.token, version=str(self.sf_version))
        return restore_client, (_build_client, state)

    # -- names simple-salesforce would turn into SObject types ---------------------------
    def __getattr__(self, name: str) -> Any:
        # SObject API names never start with "_": so IPython's probes (_repr_*_,
        # _ipython_canary_method_should_not_exist_) and half-built objects get the
        # AttributeError they expect instead of an SFType.
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return super().__getattr__(name)

    @property
    def token(self) -> TokenResponse:
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
        copy, so the metadata path never changes ``sf.headers``. A JWT-format token below
        API 68.0 raises :class:`~sfjwt_ext.errors.SoapJwtTokenError` here already, before
        zeep builds an envelope (whose frames would hold the token).
        """
        refuse_jwt_below_soap_minimum(self.metadata_url, self.refresher.token, self.refresher.access_token)
        if self._mdapi is None:
            api = SfdcMetadataApi(
                session=self.session, session_id=self.session_id, instance=self.sf_instance,
                metadata_url=self.metadata_url, api_version=self.sf_version, headers=dict(self.headers),
            )
            _route_mdapi(api, self.session)
            self._mdapi = api
        return self._mdapi

    # -- refresh notifications --------------------------------------------------------------
    def _sfjwt_token_changed(self, token: TokenResponse) -> None:
        """Called by the refresher (under no lock) after every refresh.

        Two refreshes in quick succession notify from two threads in any order: the client
        always takes the refresher's *current* token (under its own lock), so a late
        notification of an older token cannot overwrite a newer one.
        """
        with self._sfjwt_token_lock:
            current = self.refresher.token
            self.session_id = MaskedToken(current.access_token)  # masked in frames' locals
            self.headers["Authorization"] = MaskedToken("Bearer " + current.access_token)
            instance = instance_of(current.instance_url)
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
    def query_df(self, soql: str, **kw: Any) -> "pandas.DataFrame":
        """``sfjwt_ext.data.dataframe.query_df(self, soql, **kw)`` (pandas imported only now)."""
        from .data.dataframe import query_df

        return query_df(self, soql, **kw)

    def query_arrow(self, soql: str, **kw: Any) -> "pyarrow.Table":
        """``sfjwt_ext.data.dataframe.query_arrow(self, soql, **kw)``: a ``pyarrow.Table``."""
        from .data.dataframe import query_arrow

        return query_arrow(self, soql, **kw)

    def query_to_parquet(self, soql: str, path: "str | os.PathLike[str]", **kw: Any) -> int:
        """``sfjwt_ext.data.dataframe.query_to_parquet(self, soql, path, **kw)``: rows written."""
        from .data.dataframe import query_to_parquet

        return query_to_parquet(self, soql, path, **kw)

    def _summary(self) -> Dict[str, object]:
        token = self.refresher.token
        logged_in = datetime.fromtimestamp(self.refresher.logged_in_at, tz=timezone.utc)
        return {
            "user": self.username or "?",
            "org": token.org_id or "?",
            "instance": f"https://{self.sf_instance}",
            "version": str(self.sf_version),
            "login host": host_of(self.login_target.token_url) if self.login_target is not None else "?",
            "logged in": logged_in.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "refreshes": self.refresher.refresh_count,
        }

    def __repr__(self) -> str:
        shown = (f"{name.replace(' ', '_')}={value!r}" for name, value in self._summary().items())
        return f"SalesforceJWT({', '.join(shown)})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<table><caption>SalesforceJWT</caption>{rows}</table>"


def _route_mdapi(api: SfdcMetadataApi, session: requests.Session) -> None:
    """Send the Metadata API client's SOAP calls through ``session`` and log its DEBUG
    envelopes (which hold ``<sessionId>``) masked, on ``sfjwt_ext.zeep``; zeep's own
    ``zeep.transports`` logger is left as it is.

    simple-salesforce (checked against 1.12.10) has no public hook for this: its zeep
    transport is ``SfdcMetadataApi._client.transport``, and zeep's ``Transport`` logs
    through its ``logger`` attribute. This is the one place that reaches into them."""
    transport = getattr(getattr(api, "_client", None), "transport", None)
    if transport is not None:
        transport.session = session
        transport.logger = get_logger("sfjwt_ext.zeep")


@functools.lru_cache(maxsize=None)
def _warn_insecure() -> None:
    """Once per process (``_warn_insecure.cache_clear()`` warns again)."""
    logger.warning(
        "verify=False: TLS certificates of Salesforce are NOT checked for this connection "
        "(anyone on the network path can read the session). Use verify=<CA bundle path> "
        "or SF_CA_BUNDLE instead."
    )


def _load_key(settings: Settings) -> rsa.RSAPrivateKey:
    return load_private_key(
        private_key=settings.private_key,
        private_key_file=settings.private_key_file,
        passphrase=settings.private_key_passphrase,
    )


def _tls_verify(
    verify: Optional[Union[bool, str]], session: Optional[requests.Session], settings: Settings
) -> Tuple[Union[bool, str], str]:
    """The ``verify`` of a client and where it came from: ``verify=``, else the caller's
    ``session.verify`` when changed, else ``SF_CA_BUNDLE`` (or the profile's ``ca_bundle``),
    else True; checked by :func:`~sfjwt_ext.config.check_verify` (whose message names where
    the value came from). ``False`` is warned about once per process."""
    value: object = verify
    named = "verify="
    if verify is None and session is not None and session.verify is not True:
        value, named = session.verify, "session.verify"
    elif verify is None:
        bundle = settings.sources.get("ca_bundle")
        named = "SF_CA_BUNDLE" if bundle is None or bundle.source == "environment" else f"ca_bundle in {bundle.source}"
        value = bundle.value if bundle else True
    # without a session of the caller's, requests reads REQUESTS_CA_BUNDLE (trust_env)
    checked = check_verify(value, named=named, trust_env=session is None or session.trust_env)
    if checked is False:
        _warn_insecure()
    return checked, named


def connect_jwt(
    username: Optional[str] = None, consumer_key: Optional[str] = None, *,
    private_key: Union[str, bytes, rsa.RSAPrivateKey, None] = None, private_key_file: Optional[PathLike] = None,
    private_key_passphrase: Passphrase = None,
    domain: Optional[str] = None, login_url: Optional[str] = None, audience: Optional[str] = None,
    version: Optional[str] = None,
    session: Optional[requests.Session] = None, proxies: Optional[Dict[str, str]] = None,
    verify: Optional[Union[bool, str]] = None, timeout: TimeoutType = None, retries: Optional[int] = None,
    cache: bool = True, profile: Optional[str] = None, token_cache: Union[bool, str, "os.PathLike[str]", None] = None,
    **salesforce_kwargs: Any,
) -> SalesforceJWT:
    """Log in with the OAuth 2.0 JWT bearer flow; return a :class:`SalesforceJWT`.

    Every argument left out comes from the environment (``SF_USERNAME``,
    ``SF_CONSUMER_KEY``, ``SF_PRIVATE_KEY_FILE`` ...) or the profile (``profile=`` /
    ``SF_PROFILE``). ``verify`` defaults to ``SF_CA_BUNDLE`` when set, else ``True``.
    ``timeout`` applies to the token POST and to every API call made without one (API
    calls default to ``sfjwt_ext.auth.transport.DEFAULT_API_TIMEOUT``, (10, 130) s). ``retries``:
    how often a GET/HEAD is sent again after a connection error or 502/503/504 (default 2,
    0: never).
    ``token_cache``: share the token with other processes through an encrypted cache
    folder (one token request per expiry for a whole machine): ``True`` (the user's cache
    folder, ``~/.cache/sfjwt``), a folder path, or ``False``; left out, ``SF_TOKEN_CACHE``
    (``1`` or a path) or the profile's ``token_cache`` decide, else it is off.
    Extra keyword arguments (``parse_float``, ``object_pairs_hook``) go to
    ``simple_salesforce.Salesforce``.

    The client pickles (multiprocessing, ProcessPoolExecutor, joblib): see
    :meth:`SalesforceJWT.__reduce__`.

    :param username: the Salesforce username to log in as (``SF_USERNAME``).
    :param consumer_key: the app's Consumer Key (``SF_CONSUMER_KEY`` or ``SF_CLIENT_ID``).
    :param private_key: the key itself: PEM text or bytes, or a cryptography RSA key object
        (``SF_PRIVATE_KEY``); never read from a profile.
    :param private_key_file: the path of the PEM key (``SF_PRIVATE_KEY_FILE``).
    :param private_key_passphrase: for an encrypted key (``SF_PRIVATE_KEY_PASSPHRASE``).
    :param domain: ``'login'`` (the default), ``'test'``, ``'acme.my'``,
        ``'acme.my.salesforce.com'`` or a URL (``SF_DOMAIN``).
    :param login_url: an explicit token host, e.g. ``https://acme.my.salesforce.com``
        (``SF_LOGIN_URL``).
    :param audience: an explicit ``aud`` claim (``SF_AUDIENCE``).
    :param version: the API version, e.g. ``'62.0'`` (``SF_API_VERSION``); else
        simple-salesforce's default.
    :param session: a :class:`requests.Session` whose adapters, headers, proxies and cookies
        the client's refreshing session takes over.
    :param proxies: as for simple-salesforce; used for the token request too.
    :param verify: ``True``, ``False`` or a CA bundle path (``SF_CA_BUNDLE``).
    :param timeout: seconds, or a ``(connect, read)`` pair, for the token request and every
        API call made without its own.
    :param retries: how often a GET/HEAD is resent after a blip (default 2; 0: never).
    :param cache: reuse this process's login for the same user, app, host and key.
    :param profile: a section of the config file (``SF_PROFILE``).
    :param token_cache: ``True``, a folder, or ``False``: share tokens between processes
        (``SF_TOKEN_CACHE``).
    :param salesforce_kwargs: passed on to :class:`simple_salesforce.Salesforce`.
    """
    reserved = sorted(_RESERVED.intersection(salesforce_kwargs))
    if reserved:
        raise TypeError(f"connect_jwt() decides {', '.join(reserved)} itself (from the JWT login); "
                        "remove that argument")
    started = time.monotonic()
    given = dict(
        username=username, consumer_key=consumer_key, private_key=private_key, private_key_file=private_key_file,
        private_key_passphrase=private_key_passphrase, domain=domain, login_url=login_url, audience=audience,
        version=version, profile=profile, token_cache=token_cache,
    ).items()
    settings = default_cache.settings({name: value for name, value in given if value is not None})
    # The key text and passphrase now live in ``settings`` only (masked in its repr): no
    # frame of connect_jwt keeps them for a traceback's locals.
    del given, private_key, private_key_passphrase
    settings.require()
    timeout = check_timeout(timeout)
    tls_verify, verify_named = _tls_verify(verify, session, settings)
    if proxies is None and session is not None and session.proxies:
        proxies = dict(session.proxies)
    target = resolve_login(domain=settings.domain, login_url=settings.login_url, audience=settings.audience)
    refresher, refreshing, cache_key = _log_in(
        settings, target, cache=cache, session=session, verify=tls_verify, proxies=proxies,
        timeout=timeout, retries=retries,
    )
    state = client_state(
        settings, target, cache_key, refresher.token, verify=tls_verify, verify_named=verify_named, proxies=proxies,
        timeout=timeout, retries=retries, salesforce_kwargs=salesforce_kwargs,
    )
    sf = _build_client(refresher, refreshing, state)
    logger.debug("connect_jwt done in %.0f ms", (time.monotonic() - started) * 1000.0)
    return sf


def _log_in(
    settings: Settings, target: LoginTarget, *, cache: bool, session: Optional[requests.Session],
    verify: Union[bool, str], proxies: Optional[Dict[str, str]], timeout: TimeoutType, retries: Optional[int],
) -> Tuple[Refresher, RefreshingSession, LoginKey]:
    """The login (this process's cached one, or a new one) and the session that uses it."""
    folder = cache_folder(settings.token_cache)
    key: Optional[rsa.RSAPrivateKey] = None
    key_id = key_source_id(settings)  # hashed, not parsed: a reused login costs no key parse
    if key_id is None:  # the key file could not be hashed: loading it says why, or gives its fingerprint
        key = _load_key(settings)
        key_id = key_fingerprint(key)
    cache_key = login_key(
        settings, target, key_id, verify=verify, proxies=proxies, timeout=timeout, token_cache=folder
    )

    def make_source() -> TokenSource:
        return token_source(
            username=settings.username or "", consumer_key=settings.consumer_key or "",
            key=key if key is not None else _load_key(settings), target=target,
            verify=verify, proxies=proxies, timeout=timeout, folder=folder,
        )

    new_session = functools.partial(
        RefreshingSession, verify=verify, proxies=proxies, timeout=timeout, base=session, retries=retries
    )
    if not cache:
        refresher = Refresher.before_login(make_source)
        refresher.log_in()
    else:
        refresher, reused = default_cache.login(cache_key, make_source)
        if reused:
            logger.info(
                "reusing the session of %s at %s (org %s, token %s)",
                settings.username, host_of(target.token_url), refresher.token.org_id or "?",
                mask_token(refresher.access_token),
            )
    # your own session= is never shared: its adapters, headers and cookies are yours
    if not cache or session is not None:
        return refresher, new_session(refresher), cache_key
    return refresher, default_cache.session((cache_key, retries), refresher, lambda: new_session(refresher)), cache_key


def _build_client(refresher: Refresher, session: RefreshingSession, state: ClientState) -> SalesforceJWT:
    """The client of a login: made by connect_jwt, and by unpickling (``restore_client``)."""
    sf = SalesforceJWT(
        refresher=refresher, session=session, login_target=state.target, settings=state.settings,
        version=state.version, username=state.username, **state.salesforce_kwargs,
    )
    if state.domain:
        sf.domain = state.domain
    sf._sfjwt_state = state
    return sf
