"""The refreshing ``requests.Session`` and the single-flight token refresher.

Two objects, one concept each (the credentials / transport split of google-auth):

``Refresher``
    Knows the current token, how to get a new one (a :class:`~sfjwt_ext.auth.token_client.TokenClient`,
    which owns its own plain ``requests.Session``), and which tokens it handed out before.
    ``refresh(seen_token)`` is single-flight: one lock, one token request however many
    threads call it at once. A thread that failed with an older token than the current one
    gets the current one without a token request. Clients (``SalesforceJWT``) that share the
    refresher are told about a new token through weak references.

``RefreshingSession``
    Decides *when* to refresh. On every request to the instance host (and to the identity
    URL) it puts the current token on the request -- replacing a token of an older
    generation wherever it is: ``Authorization: Bearer``, ``X-SFDC-Session`` and a SOAP
    ``<sessionId>`` in the body -- so handlers created before a refresh (``sf.bulk``,
    ``sf.bulk2``, ``sf.mdapi``) keep working. After sending it looks for the expiry signal
    of each API:

    * REST, Apex REST, Tooling, Bulk 2.0: HTTP 401 with ``errorCode`` ``INVALID_SESSION_ID``
    * Bulk 1.0: HTTP 400 with ``exceptionCode`` ``InvalidSessionId`` (XML or JSON)
    * SOAP / Metadata: HTTP 500 fault ``INVALID_SESSION_ID``

    and on one it refreshes and resends a copy of the same prepared request, once (the
    number of refreshes is an argument of the private send, never state on the session, so
    threads do not share it). If the second answer is an expiry too, it is returned as is and
    simple-salesforce raises its usual ``SalesforceExpiredSession``.

    A SOAP request (``/services/Soap/<api>/<version>``, e.g. ``sf.mdapi``) below API 68.0
    that would carry a JWT-format access token raises
    :class:`~sfjwt_ext.errors.SoapJwtTokenError` before it is sent: Salesforce would refuse
    it with what looks like an expired session, and a refresh would only bring another JWT.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
import weakref
from collections import OrderedDict
from typing import (
    Any, Dict, Iterator, List, Mapping, Optional, Protocol, Set, Tuple, Union,
)
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import rewind_body
from simple_salesforce.exceptions import SalesforceExpiredSession
from urllib3.exceptions import NewConnectionError

from .._internal.fork import ProcessLocal
from .._internal.redact import MaskedToken, excerpt, get_logger, looks_like_jwt, mask_token, redact
from .._internal.urls import host_of
from ..errors import SOAP_JWT_MIN_VERSION, ConfigurationError, SessionRefusedError, SoapJwtTokenError
from .token_client import TimeoutType, TokenResponse, backoff_delays


class TokenSource(Protocol):
    """What a :class:`Refresher` needs of its token client: ``fetch()`` a new token, and
    ``close()`` its idle connections (the login cache does, on eviction and fork) (the
    :class:`~sfjwt_ext.auth.token_client.TokenClient`, or a cache that wraps one the same way)."""

    def fetch(self) -> TokenResponse: ...

    def close(self) -> None:
        """Close idle connections (the source stays usable)."""


class TokenListener(Protocol):
    """A client told about a new token (``SalesforceJWT``)."""

    def _sfjwt_token_changed(self, token: TokenResponse) -> None: ...

__all__ = [
    "Refresher",
    "RefreshingSession",
    "RequestNotReplayable",
    "expiry_signal",
    "MAX_REFRESHES_PER_REQUEST",
    "DEFAULT_API_TIMEOUT",
    "DEFAULT_RETRIES",
]

logger = get_logger("sfjwt_ext.session")

#: A request is refreshed and resent at most this many times.
MAX_REFRESHES_PER_REQUEST = 1

#: (connect, read) seconds for an API call made without ``timeout=``: Salesforce answers or
#: times out a SOQL query within about 120 s, so the read timeout leaves room for it.
DEFAULT_API_TIMEOUT: Tuple[float, float] = (10.0, 130.0)

#: Retries of an idempotent request (GET, HEAD) on a connection error or 502/503/504:
#: 2 retries = at most 3 attempts.
DEFAULT_RETRIES = 2

#: The first delay between attempts, doubled each time (at most ``MAX_BACKOFF``, 8 s), of
#: which up to ``RETRY_JITTER`` (20 %) is taken off at random.
RETRY_FIRST_DELAY = 0.5
RETRY_JITTER = 0.2

#: After this many freshly issued tokens in a row were refused, no more token requests...
MAX_REFUSED_TOKENS = 2
#: ...until one is accepted, or this many seconds have passed (then one more try).
REFUSED_RETRY_AFTER = 300.0

_IDEMPOTENT = frozenset({"GET", "HEAD"})
_RETRY_STATUSES = frozenset({502, 503, 504})

Origin = Tuple[str, str, int]


def _origin(url: str) -> Optional[Origin]:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    if not host or scheme not in ("http", "https"):
        return None
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, host, port


def _https_origin(url: str) -> Optional[Origin]:
    """simple-salesforce forces https on the instance URL: so do we."""
    origin = _origin(url)
    if origin is None:
        return None
    scheme, host, port = origin
    if scheme == "http":
        port = 443 if port == 80 else port
    return "https", host, port


def _path_of(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def _digest(token: str) -> bytes:
    """Old tokens are remembered by their SHA-256 only: no old secret stays in memory."""
    return hashlib.sha256(token.encode("utf-8")).digest()


# ---------------------------------------------------------------------------------------
# expiry signals
# ---------------------------------------------------------------------------------------
_BULK1_EXPIRED = re.compile(rb"exceptionCode[\"'\s:>]*InvalidSessionId")
_SOAP_EXPIRED = re.compile(rb"faultcode>[^<]*INVALID_SESSION_ID")
_BULK1_PATH = "/services/async/"
_SOAP_PATH = "/services/Soap/"


# /services/Soap/{u,c,m,T,s...}/<version>[/...]: the API version of a SOAP endpoint
_SOAP_VERSION = re.compile(r"^/services/Soap/[A-Za-z]+/([0-9]{1,3})(?:\.([0-9]{1,2}))?(?:/|$)")
_SOAP_JWT_MIN = tuple(int(part) for part in SOAP_JWT_MIN_VERSION.split("."))


def refuse_jwt_below_soap_minimum(url: str, token: TokenResponse, sent: str) -> None:
    """Raise :class:`~sfjwt_ext.errors.SoapJwtTokenError` when ``url`` is a SOAP endpoint
    of an API version below 68.0 and the token it would carry (``sent``, which is
    ``token``'s access token or another of ours) is JWT-format: Salesforce would refuse it
    with what looks like an expired session, and a refresh would bring another JWT."""
    if _SOAP_PATH not in url:  # every REST call passes here: the cheap test first
        return
    sent = MaskedToken(sent)  # a traceback's locals show it masked
    match = _SOAP_VERSION.match(_path_of(url))
    if match is None:
        return
    version = (int(match.group(1)), int(match.group(2) or 0))
    if version >= _SOAP_JWT_MIN:
        return
    jwt = token.is_jwt if sent == token.access_token else looks_like_jwt(sent)
    if jwt:
        shown = f"{version[0]}.{version[1]}"
        raise SoapJwtTokenError(url.split("?", 1)[0], shown)


def expiry_signal(response: requests.Response) -> Optional[str]:
    """Which API said "session expired" in ``response``: "rest", "bulk", "soap" or None.

    Each API's signal counts only on that API's URLs: Bulk 1.0's ``InvalidSessionId`` (HTTP
    400) on ``/services/async/``, a SOAP fault ``INVALID_SESSION_ID`` (HTTP 500) on
    ``/services/Soap/``; HTTP 401 ``INVALID_SESSION_ID`` anywhere (REST, Apex REST,
    Tooling, Bulk 2.0, identity). Only error statuses are looked at (their bodies are
    small), so a successful streamed download is never read here.
    """
    status = response.status_code
    if status not in (400, 401, 500):
        return None
    try:
        content = response.content
    except Exception:  # content already consumed by a streaming caller, broken connection
        return None
    if not content:
        return None
    if status == 401:
        return "rest" if b"INVALID_SESSION_ID" in content else None
    path = _path_of(response.url or "")
    if status == 400 and _BULK1_PATH in path and _BULK1_EXPIRED.search(content):
        return "bulk"
    if status == 500 and _SOAP_PATH in path and _SOAP_EXPIRED.search(content):
        return "soap"
    return None


_MESSAGE_PATTERNS = (
    re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    re.compile(r'"exceptionMessage"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    re.compile(r"<(?:\w+:)?exceptionMessage>([^<]*)<"),
    re.compile(r"<faultstring>([^<]*)<"),
)


def _salesforce_message(response: requests.Response) -> str:
    """Salesforce's own words in an error answer (REST ``message``, Bulk
    ``exceptionMessage``, SOAP ``faultstring``), at most 300 characters, cut first and
    then masked (an answer that quotes a token or a JWT shows it masked)."""
    try:
        text = response.content.decode("utf-8", "replace")
    except Exception:
        return ""
    for pattern in _MESSAGE_PATTERNS:
        match = pattern.search(text)
        if match:
            return excerpt(match.group(1), 300)
    return excerpt(text, 300)


class RequestNotReplayable(SalesforceExpiredSession):
    """The session had expired and was refreshed, but the request was not sent again.

    Its body was a stream (a generator, an iterator or a file object that cannot be
    rewound), which was used up by the first attempt. Repeat the call: the client already
    holds the new token.
    """

    message = (
        "The session had expired for {url}; sfjwt_ext logged in again, but the request body "
        "is a stream that was already consumed and cannot be sent a second time. Repeat the "
        "call (the client now holds a fresh session). Response content: {content}"
    )


# ---------------------------------------------------------------------------------------
# Refresher
# ---------------------------------------------------------------------------------------
class Refresher:
    """Holds the current token of one (user, app, login host, key) and refreshes it once
    for everybody.

    ``refresh(seen_token)``: the caller passes the token its failed request carried. Under
    the lock, if the current token differs from it, or a refresh finished while the caller
    was waiting for the lock, the current token is returned without a token request.
    Otherwise one token request is made. Waiters also share a *failure*: when the refresh
    they waited for raised, they raise the same error instead of hammering a token endpoint
    that is down.

    A token is *unproven* from the moment it is fetched until an API call with it succeeds
    (``accepted``). When unproven tokens are refused ``MAX_REFUSED_TOKENS`` times in a row,
    ``refresh`` raises :class:`~sfjwt_ext.errors.SessionRefusedError` instead of logging in
    again, until a token is accepted or ``REFUSED_RETRY_AFTER`` seconds have passed.

    The lock lives in a :class:`~sfjwt_ext._internal.fork.ProcessLocal`: a forked child gets a new
    one, and forgets a refresh that was in flight in a thread of its parent.
    """

    def __init__(self, token_client: TokenSource, token: TokenResponse) -> None:
        self.token_client = token_client
        self.token: TokenResponse = token
        self.generation: int = 0
        self.refresh_count: int = 0
        self.logged_in_at: float = time.time()
        self._lock: ProcessLocal[threading.Lock] = ProcessLocal(threading.Lock)
        self._old_tokens: Set[bytes] = set()  # SHA-256 of every token handed out before
        self._instance_origins: Set[Origin] = set()
        self._remember_instance(token)
        self._last_success: float = time.monotonic()
        self._last_failure: Optional[Tuple[float, str, Exception]] = None
        self._clients: "weakref.WeakSet[TokenListener]" = weakref.WeakSet()
        # refused sessions (see the class docstring)
        self._unproven: Optional[str] = token.access_token
        self._refused_generation: int = -1  # the generation whose token was last refused
        self._refusals: int = 0
        self._refusal_words: Dict[str, str] = {}  # API ("rest", "bulk", "soap") -> its last wording
        self._refused_since: float = 0.0
        self._refusal: Tuple[str, int, str, Any] = ("", 0, "", None)  # url, status, message, content

    def _guard(self) -> threading.Lock:
        if self._lock.forked():
            self._last_failure = None  # the parent's refresh never finishes in this process
        return self._lock.get()

    # -- what the session asks ------------------------------------------------------------
    @property
    def access_token(self) -> str:
        return self.token.access_token

    def is_old_token(self, token: str) -> bool:
        """True when ``token`` is one this refresher handed out before the current one
        (however many refreshes ago)."""
        return token != self.token.access_token and _digest(token) in self._old_tokens

    def is_instance_url(self, url: str) -> bool:
        origin = _origin(url)
        return origin is not None and origin in self._instance_origins

    def is_identity_url(self, url: str) -> bool:
        identity = getattr(self.token, "id", None) or ""
        if not identity:
            return False
        base = identity.split("?", 1)[0]
        return url == base or url.startswith(base + "?") or url.startswith(base + "/")

    # -- clients --------------------------------------------------------------------------
    def attach(self, client: TokenListener) -> None:
        """Keep a weak reference to ``client``; it gets ``_sfjwt_token_changed(token)``."""
        with self._guard():
            self._clients.add(client)

    # -- refused sessions -----------------------------------------------------------------
    def accepted(self, token: str) -> None:
        """An API call with ``token`` succeeded: it is proven, refusals are forgotten."""
        if token != self._unproven:  # the common case: no lock
            return
        with self._guard():
            if token == self._unproven:
                self._unproven = None
                self._refused_generation = -1
                self._refusals = 0
                self._refusal_words.clear()

    def refused(self, token: str, answer: requests.Response) -> bool:
        """A just-issued ``token`` got the expiry signal; True when it is counted as refused
        (it is the current, still unproven token)."""
        with self._guard():
            if token != self.token.access_token or token != self._unproven:
                return False
            self._note_refusal(answer)
            return True

    def _note_refusal(self, answer: requests.Response) -> None:
        """Count the refusal of the current token (once per token request). An API that
        now words it otherwise than it did before (a refusal, then a real expiry) starts
        the count anew; another API's wording does not: each API words the same refusal
        its own way (REST "This session is not valid...", SOAP "INVALID_SESSION_ID: ..."),
        and a job alternating APIs would otherwise log in again on every call."""
        message = _salesforce_message(answer)
        api = expiry_signal(answer) or "rest"
        said_before = self._refusal_words.get(api)
        if said_before is not None and said_before != message:
            self._refusals, self._refused_generation = 0, -1
        self._refusal_words[api] = message
        self._refusal = (answer.url or "", answer.status_code, message, _content_for_error(answer))
        if self._refused_generation != self.generation:
            self._refused_generation = self.generation
            self._refusals += 1
            self._refused_since = time.monotonic()

    def refusal_error(self) -> SessionRefusedError:
        url, status, message, content = self._refusal
        return SessionRefusedError(url, status, message, content)

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, seen_token: str, *, answer: Optional[requests.Response] = None) -> TokenResponse:
        """Return a token newer than ``seen_token``, making at most one token request for
        all threads that ask at the same time. ``answer``: the response that said the
        session expired (quoted when the session is refused)."""
        seen_token = MaskedToken(seen_token)  # this frame shows it masked
        waited_since = time.monotonic()
        with self._guard():
            current = self.token
            if current.access_token != seen_token:
                logger.debug(
                    "token %s already replaced by %s (generation %d)",
                    mask_token(seen_token), mask_token(current.access_token), self.generation,
                )
                return current
            if self._last_success > waited_since:
                # Salesforce gave the same token again while we were waiting: use it.
                return current
            failure = self._last_failure
            if failure is not None and failure[0] > waited_since and failure[1] == seen_token:
                raise failure[2]
            if answer is not None and seen_token == self._unproven:
                # a token just issued, refused at once: count it; stop after a few
                self._note_refusal(answer)
                if (self._refusals >= MAX_REFUSED_TOKENS
                        and time.monotonic() - self._refused_since < REFUSED_RETRY_AFTER):
                    raise self.refusal_error()
            started = time.monotonic()
            logger.debug("refreshing session %s", mask_token(seen_token))
            try:
                new = self.token_client.fetch()
            except Exception as exc:
                # Only errors of the exchange are shared with the waiters: an interrupt
                # (KeyboardInterrupt, SystemExit) belongs to the thread that received it, and
                # the next waiter simply tries the refresh itself.
                self._last_failure = (time.monotonic(), seen_token, exc)
                logger.warning(
                    "session refresh failed after %.0f ms: %s",
                    (time.monotonic() - started) * 1000.0, type(exc).__name__,
                )
                raise
            self._last_failure = None
            if new.access_token != current.access_token:
                self._old_tokens.add(_digest(current.access_token))
            self._unproven = new.access_token  # (Salesforce may give the same one again)
            self.token = new
            self.generation += 1
            self.refresh_count += 1
            self._last_success = time.monotonic()
            self._remember_instance(new)
            clients = list(self._clients)
        elapsed_ms = (time.monotonic() - started) * 1000.0
        logger.info(
            "refreshed the Salesforce session of %s at %s (org %s) in %.0f ms, refresh #%d",
            getattr(self.token_client, "username", "?"),
            host_of(new.instance_url), getattr(new, "org_id", "?"), elapsed_ms, self.refresh_count,
        )
        for client in clients:
            try:
                client._sfjwt_token_changed(new)
            except Exception:  # a broken client must not break the refresh of the others
                logger.exception("could not hand the new token to %s", type(client).__name__)
        return new

    def _remember_instance(self, token: TokenResponse) -> None:
        origin = _https_origin(token.instance_url)
        if origin is not None:
            self._instance_origins.add(origin)

    def __repr__(self) -> str:
        return (
            f"<Refresher {getattr(self.token_client, 'username', '?')} "
            f"token={mask_token(self.token.access_token)} generation={self.generation} "
            f"refreshes={self.refresh_count}>"
        )


# ---------------------------------------------------------------------------------------
# which token goes on a request
# ---------------------------------------------------------------------------------------
_TOKEN_HEADERS = ("Authorization", "X-SFDC-Session")
# a SOAP <sessionId> (also XML-escaped inside another envelope)
_SOAP_SESSION_ID = re.compile(rb"(sessionId(?:>|&gt;)\s*)([^<&\s]+)")


def _header_token(name: str, value: Union[str, bytes]) -> Optional[str]:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    value = value.strip()
    if name.lower() == "authorization":
        scheme, _, rest = value.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and rest.strip():
            return rest.strip()
        return None
    # X-SFDC-Session: the bare token (some tools prefix "Bearer ")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return value or None


def _swap_body_tokens(body: Union[bytes, bytearray, str], refresher: Refresher, current: str) -> Union[bytes, str]:
    """``body`` with every old token of ``refresher`` in a SOAP ``<sessionId>`` replaced by
    ``current`` (``body`` itself when there is none)."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    new = current.encode("utf-8")

    def swap(match: "re.Match[bytes]") -> bytes:
        if refresher.is_old_token(match.group(2).decode("utf-8", "replace")):
            return match.group(1) + new
        return match.group(0)

    swapped = _SOAP_SESSION_ID.sub(swap, raw)
    if swapped == raw:
        return body if not isinstance(body, bytearray) else raw
    return swapped.decode("utf-8") if isinstance(body, str) else swapped


def put_token(request: requests.PreparedRequest, refresher: Refresher) -> Optional[str]:
    """The one place that decides which token goes on a request to our hosts.

    Our token of an older generation, wherever it is (``Authorization``,
    ``X-SFDC-Session``, a SOAP ``<sessionId>``), becomes the current one; a request that
    carries no token gets ``Authorization: Bearer <current>``; somebody else's token is
    left alone. Returns the token the request now carries, or None when it carries none of
    ours (then an expiry answer is not ours to handle)."""
    current = refresher.access_token
    headers = request.headers
    sent: Optional[str] = None
    has_token_header = False
    for name in _TOKEN_HEADERS:
        if name not in headers:
            continue
        has_token_header = True
        value = headers[name]
        token = _header_token(name, value)
        if token is None:
            continue
        if token == current:
            sent = current
        elif refresher.is_old_token(token):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            headers[name] = text.replace(token, current)
            sent = current
    if not has_token_header:
        headers["Authorization"] = "Bearer " + current
        sent = current
    body = request.body
    if isinstance(body, (bytes, bytearray)) and b"sessionId" in body or isinstance(body, str) and "sessionId" in body:
        swapped = _swap_body_tokens(body, refresher, current)
        if swapped is not body:
            request.body = swapped
            request.prepare_content_length(swapped)
    return MaskedToken(sent) if sent is not None else None  # masked in the caller's frame


def body_is_replayable(request: requests.PreparedRequest) -> bool:
    """Whether the prepared request's body can be sent a second time.

    ``bytes``/``str``/no body: yes. A file object: only when requests recorded its start
    position (``_body_position``, as for ``HTTPDigestAuth``) and it can ``seek``. A
    generator, an iterator or any other iterable: no.
    """
    body = request.body
    if body is None or isinstance(body, (bytes, bytearray, str)):
        return True
    if hasattr(body, "read"):
        position = getattr(request, "_body_position", None)
        return isinstance(position, int) and callable(getattr(body, "seek", None))
    return False


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """The connection failed before the request left (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)


def _adapter_has_own_retries(adapter: requests.adapters.BaseAdapter) -> bool:
    """A caller's own adapter decides retries itself: anything but requests' default
    ``HTTPAdapter()`` (a subclass, other pool settings, its own ``max_retries``)."""
    if type(adapter) is not requests.adapters.HTTPAdapter:
        return True
    retries = adapter.max_retries
    return (
        retries.total != 0 or retries.read is not False
        or getattr(adapter, "_pool_maxsize", None) != requests.adapters.DEFAULT_POOLSIZE
        or getattr(adapter, "_pool_connections", None) != requests.adapters.DEFAULT_POOLSIZE
    )


# ---------------------------------------------------------------------------------------
# RefreshingSession
# ---------------------------------------------------------------------------------------
class RefreshingSession(requests.Session):
    """A ``requests.Session`` that keeps a Salesforce session alive (see module docstring).

    Also:

    * ``timeout`` -- used for every request that is sent without one; ``None`` means
      :data:`DEFAULT_API_TIMEOUT` (an API call never waits forever).
    * ``retries`` -- GET and HEAD are sent again after a connection error or a 502/503/504,
      up to ``retries`` times with :func:`~sfjwt_ext.auth.token_client.backoff_delays`; any request whose connection
      failed before it was sent, too. A request that may have reached Salesforce (a POST
      whose connection dropped) is never resent; ``REQUEST_LIMIT_EXCEEDED`` is not retried.
      ``retries=0``, or the caller's own adapter (``base=`` with a custom adapter or one
      with ``max_retries``), turns it off.
    * ``verify`` -- honoured even when ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` is set
      (plain requests lets those variables override ``Session.verify``); a ``verify=``
      passed with a single request still wins.
    * a redirect that leaves the instance host loses ``Authorization`` *and*
      ``X-SFDC-Session``.
    * after ``os.fork()`` the child drops the pooled connections it inherited (closed
      without a byte written on them) and opens its own.
    """

    def __init__(
        self,
        refresher: Refresher,
        *,
        verify: Union[bool, str] = True,
        proxies: Optional[Mapping[str, str]] = None,
        timeout: TimeoutType = None,
        base: Optional[requests.Session] = None,
        retries: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.refresher = refresher
        self.timeout = DEFAULT_API_TIMEOUT if timeout is None else timeout
        self.retries = _check_retries(retries)
        self._process: ProcessLocal[object] = ProcessLocal(object)
        self._own_adapter: Optional[requests.adapters.HTTPAdapter] = None
        if base is not None:
            self._copy_from(base)
        else:
            # threads share one client: keep more than urllib3's default 10 connections
            self._own_adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
            self.mount("https://", self._own_adapter)
        self.verify = verify
        if proxies is not None:
            self.proxies = dict(proxies)

    def _copy_from(self, base: requests.Session) -> None:
        """Take over a caller's session: its mounted adapters (shared, with their pools and
        retries), headers, proxies, cookies, client certificate, auth, hooks, params and
        environment trust. Its ``verify`` is decided by the caller of the constructor."""
        self.adapters = OrderedDict(base.adapters)  # what requests.Session keeps them in
        self.headers = CaseInsensitiveDict(base.headers)
        self.proxies = dict(base.proxies or {})
        self.cookies = base.cookies.copy() if hasattr(base.cookies, "copy") else base.cookies
        self.cert = base.cert
        self.auth = base.auth
        self.params = dict(base.params or {})  # type: ignore[arg-type]  # a mapping on any real session
        self.hooks = {event: list(hooks) for event, hooks in (base.hooks or {}).items()}
        self.trust_env = base.trust_env
        self.max_redirects = base.max_redirects
        self.stream = base.stream

    # -- settings ---------------------------------------------------------------------------
    def merge_environment_settings(  # type: ignore[override]
        self,
        url: str,
        proxies: Optional[Dict[str, str]],
        stream: Optional[bool],
        verify: Optional[Union[bool, str]],
        cert: Any,
    ) -> Any:
        # requests replaces verify=None/True by REQUESTS_CA_BUNDLE; when the caller of
        # this request said nothing, the session's own verify (our CA bundle) is the answer.
        if verify is None:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    # -- fork ---------------------------------------------------------------------------------
    def _drop_inherited_connections(self) -> None:
        """In a forked child: forget the parent's pooled sockets. ``PoolManager.clear()``
        closes them; closing a socket writes nothing (no TLS close_notify), so the parent's
        connections stay intact."""
        for adapter in self.adapters.values():
            managers = [getattr(adapter, "poolmanager", None)]
            managers.extend((getattr(adapter, "proxy_manager", None) or {}).values())
            for manager in managers:
                if manager is not None:
                    manager.clear()
        logger.debug("forked child: dropped the connections inherited from the parent")

    # -- sending ------------------------------------------------------------------------------
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self._process.forked():
            self._drop_inherited_connections()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return self._send(request, kwargs, 0)

    def _send(
        self, request: requests.PreparedRequest, kwargs: Dict[str, Any], refreshes: int
    ) -> requests.Response:
        url = request.url or ""
        sent_token = put_token(request, self.refresher) if self._wants_token(url) else None
        if sent_token is not None:
            refuse_jwt_below_soap_minimum(url, self.refresher.token, sent_token)
        response = self._send_with_retries(request, kwargs)
        if sent_token is None or response.history:
            # not ours, or redirects were followed: each hop handled its own answer
            return response
        signal = expiry_signal(response)
        if signal is None:
            if response.status_code < 400:
                self.refresher.accepted(sent_token)
            return response
        logger.debug(
            "%s %s: session %s expired (%s signal, HTTP %d)",
            request.method, host_of(url), mask_token(sent_token), signal, response.status_code,
        )
        if refreshes >= MAX_REFRESHES_PER_REQUEST:
            if self.refresher.refused(sent_token, response):
                response.close()
                raise self.refresher.refusal_error()
            return response
        replayable = body_is_replayable(request)
        # Consume and release the failed response before anything else goes out.
        response.close()
        token = self.refresher.refresh(sent_token, answer=response)
        if not replayable:
            raise RequestNotReplayable(
                response.url, response.status_code, "", _content_for_error(response)
            )
        retry = self._copy_for_resend(request, response)
        self._follow_instance(retry, token.instance_url)
        new_response = self._send(retry, kwargs, refreshes + 1)
        new_response.history = [*response.history, response, *new_response.history]
        return new_response

    def _retry_delays(self, request: requests.PreparedRequest) -> Iterator[float]:
        adapter = self.get_adapter(request.url or "")
        if self.retries <= 0 or (adapter is not self._own_adapter and _adapter_has_own_retries(adapter)):
            return iter(())
        return itertools.islice(backoff_delays(RETRY_FIRST_DELAY, jitter=RETRY_JITTER), self.retries)

    def _send_with_retries(self, request: requests.PreparedRequest, kwargs: Dict[str, Any]) -> requests.Response:
        """Send; again after a blip when that cannot do a request twice (see class doc)."""
        delays = self._retry_delays(request)
        idempotent = (request.method or "GET").upper() in _IDEMPOTENT
        while True:
            try:
                response = super().send(request, **kwargs)
            except requests.exceptions.SSLError:
                raise  # a certificate problem does not go away by itself
            except requests.exceptions.ConnectionError as exc:
                if not (idempotent or (_never_sent(exc) and body_is_replayable(request))):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
                logger.info("%s %s: %s; retrying in %.1f s", request.method,
                            host_of(request.url or ""), type(exc).__name__, delay)
                if request.body is not None and not isinstance(request.body, (bytes, bytearray, str)):
                    rewind_body(request)
                time.sleep(delay)
                continue
            if idempotent and response.status_code in _RETRY_STATUSES and not _limit_exceeded(response):
                delay = next(delays, None)
                if delay is None:
                    return response
                logger.info("%s %s: HTTP %d; retrying in %.1f s", request.method,
                            host_of(request.url or ""), response.status_code, delay)
                response.close()
                time.sleep(delay)
                continue
            return response

    def _wants_token(self, url: str) -> bool:
        return self.refresher.is_instance_url(url) or self.refresher.is_identity_url(url)

    def _copy_for_resend(self, request: requests.PreparedRequest, failed: requests.Response) -> requests.PreparedRequest:
        """A copy of ``request`` to send again (``put_token`` gives it the new token)."""
        retry = request.copy()
        # Cookies the failed answer set go along, as HTTPDigestAuth does.
        jar = retry._cookies
        if failed.raw is not None and jar is not None:
            extract_cookies_to_jar(jar, request, failed.raw)
            if "Cookie" in retry.headers and len(jar):
                del retry.headers["Cookie"]
            retry.prepare_cookies(jar)
        if retry.body is not None and not isinstance(retry.body, (bytes, bytearray, str)):
            rewind_body(retry)
        return retry

    def _follow_instance(self, request: requests.PreparedRequest, instance_url: str) -> None:
        """A refresh that answered with another ``instance_url`` (an org migration): the
        resend goes to the new instance, as the client's URLs do from now on."""
        url = request.url or ""
        if not self.refresher.is_instance_url(url) or self.refresher.is_identity_url(url):
            return
        new_origin = _https_origin(instance_url)
        if new_origin is None or _https_origin(url) == new_origin:
            return
        parts = urlsplit(url)
        request.url = urlunsplit((parts.scheme, urlsplit(instance_url).netloc, parts.path, parts.query, parts.fragment))
        logger.info("resending to the new instance %s", host_of(instance_url))

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """requests drops ``Authorization`` when a redirect changes host; we also drop
        ``X-SFDC-Session``, and both whenever a redirect leaves our hosts."""
        original_url = response.request.url or ""
        super().rebuild_auth(prepared_request, response)
        new_url = prepared_request.url or ""
        ours_before = self._wants_token(original_url)
        leaves = self.should_strip_auth(original_url, new_url) or (
            ours_before and not self._wants_token(new_url)
        )
        if leaves:
            for name in _TOKEN_HEADERS:
                if name in prepared_request.headers:
                    del prepared_request.headers[name]

    def __repr__(self) -> str:
        return f"<RefreshingSession {self.refresher!r}>"


def _check_retries(retries: Optional[int]) -> int:
    if retries is None:
        return DEFAULT_RETRIES
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigurationError(
            f"retries= must be a whole number from 0 to 10 (0: never resend), not {retries!r}"
        )
    return retries


def _limit_exceeded(response: requests.Response) -> bool:
    try:
        return b"REQUEST_LIMIT_EXCEEDED" in response.content
    except Exception:
        return False


def _content_for_error(response: requests.Response) -> Any:
    """The answer's content for an exception (its repr shows it): parsed JSON when it is
    JSON, else text, with tokens, JWTs and PEM keys masked (the masks keep JSON valid)."""
    try:
        text = redact(response.content.decode("utf-8", "replace"))
    except Exception:  # pragma: no cover - content already consumed
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text
