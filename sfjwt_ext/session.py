"""The refreshing ``requests.Session`` and the single-flight token refresher.

Two objects, one concept each (the credentials / transport split of google-auth):

``Refresher``
    Knows the current token, how to get a new one (a :class:`~sfjwt_ext.exchange.TokenClient`,
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
"""
from __future__ import annotations

import collections
import logging
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Mapping, MutableMapping, Optional, Set, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
from requests.cookies import extract_cookies_to_jar
from requests.utils import rewind_body
from simple_salesforce.exceptions import SalesforceExpiredSession

if TYPE_CHECKING:  # pragma: no cover
    from .exchange import TokenClient, TokenResponse

__all__ = [
    "Refresher",
    "RefreshingSession",
    "RequestNotReplayable",
    "expiry_signal",
    "MAX_REFRESHES_PER_REQUEST",
]


def _make_logger(name: str) -> logging.Logger:
    try:  # the redacting logger of _redact.py when it exists
        from ._redact import get_logger  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - _redact.py without get_logger
        return logging.getLogger(name)
    try:
        return get_logger(name)  # type: ignore[no-any-return]
    except Exception:  # pragma: no cover
        return logging.getLogger(name)


logger = _make_logger("sfjwt_ext.session")


def _mask(token: Optional[str]) -> str:
    """``00D…abcd``: never log a whole token."""
    try:
        from ._redact import mask_token

        return str(mask_token(token))
    except Exception:  # pragma: no cover - fallback while _redact.py is missing
        if not token:
            return "<none>"
        return f"{token[:3]}…{token[-4:]}" if len(token) > 12 else "…"


#: A request is refreshed and resent at most this many times.
MAX_REFRESHES_PER_REQUEST = 1

#: How many tokens of older generations a refresher remembers (to swap them out).
_OLD_TOKENS_KEPT = 32

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


# ---------------------------------------------------------------------------------------
# expiry signals
# ---------------------------------------------------------------------------------------
_BULK1_EXPIRED = re.compile(rb"exceptionCode[\"'\s:>]*InvalidSessionId")
_SOAP_EXPIRED = re.compile(rb"faultcode>[^<]*INVALID_SESSION_ID")


def expiry_signal(response: requests.Response) -> Optional[str]:
    """Which API said "session expired" in ``response``: "rest", "bulk", "soap" or None.

    Only error statuses are looked at (their bodies are small), so a successful streamed
    download is never read here.
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
    if status == 401 and b"INVALID_SESSION_ID" in content:
        return "rest"
    if status == 400 and _BULK1_EXPIRED.search(content):
        return "bulk"
    if status == 500 and _SOAP_EXPIRED.search(content):
        return "soap"
    return None


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
    """

    def __init__(self, token_client: "TokenClient", token: "TokenResponse") -> None:
        self.token_client = token_client
        self.token: TokenResponse = token
        self.generation: int = 0
        self.refresh_count: int = 0
        self.logged_in_at: float = time.time()
        self.refreshed_at: Optional[float] = None
        self._lock = threading.Lock()
        self._old_tokens: Deque[str] = collections.deque(maxlen=_OLD_TOKENS_KEPT)
        self._instance_origins: Set[Origin] = set()
        self._remember_instance(token)
        self._last_success: float = time.monotonic()
        self._last_failure: Optional[Tuple[float, str, BaseException]] = None
        self._clients: "weakref.WeakSet[Any]" = weakref.WeakSet()

    # -- what the session asks ------------------------------------------------------------
    @property
    def access_token(self) -> str:
        return self.token.access_token

    def is_old_token(self, token: str) -> bool:
        """True when ``token`` is one this refresher handed out before the current one."""
        return token != self.token.access_token and token in self._old_tokens

    def old_tokens(self) -> List[str]:
        return list(self._old_tokens)

    def is_known_token(self, token: str) -> bool:
        return token == self.token.access_token or token in self._old_tokens

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
    def attach(self, client: Any) -> None:
        """Keep a weak reference to ``client``; it gets ``_sfjwt_token_changed(token)``."""
        with self._lock:
            self._clients.add(client)

    def clients(self) -> List[Any]:
        return list(self._clients)

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, seen_token: str) -> "TokenResponse":
        """Return a token newer than ``seen_token``, making at most one token request for
        all threads that ask at the same time."""
        waited_since = time.monotonic()
        with self._lock:
            current = self.token
            if current.access_token != seen_token:
                logger.debug(
                    "token %s already replaced by %s (generation %d)",
                    _mask(seen_token), _mask(current.access_token), self.generation,
                )
                return current
            if self._last_success > waited_since:
                # Salesforce gave the same token again while we were waiting: use it.
                return current
            failure = self._last_failure
            if failure is not None and failure[0] > waited_since and failure[1] == seen_token:
                raise failure[2]
            started = time.monotonic()
            logger.debug("refreshing session %s", _mask(seen_token))
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
                self._old_tokens.append(current.access_token)
            self.token = new
            self.generation += 1
            self.refresh_count += 1
            self.refreshed_at = time.time()
            self._last_success = time.monotonic()
            self._remember_instance(new)
            clients = list(self._clients)
        elapsed_ms = (time.monotonic() - started) * 1000.0
        logger.info(
            "refreshed the Salesforce session of %s at %s (org %s) in %.0f ms, refresh #%d",
            getattr(self.token_client, "username", "?"),
            _host_of(new.instance_url), getattr(new, "org_id", "?"), elapsed_ms, self.refresh_count,
        )
        for client in clients:
            try:
                client._sfjwt_token_changed(new)
            except Exception:  # a broken client must not break the refresh of the others
                logger.exception("could not hand the new token to %s", type(client).__name__)
        return new

    def _remember_instance(self, token: "TokenResponse") -> None:
        origin = _https_origin(token.instance_url)
        if origin is not None:
            self._instance_origins.add(origin)

    def __repr__(self) -> str:
        return (
            f"<Refresher {getattr(self.token_client, 'username', '?')} "
            f"token={_mask(self.token.access_token)} generation={self.generation} "
            f"refreshes={self.refresh_count}>"
        )


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:  # pragma: no cover
        return url


# ---------------------------------------------------------------------------------------
# RefreshingSession
# ---------------------------------------------------------------------------------------
_TOKEN_HEADERS = ("Authorization", "X-SFDC-Session")
_SESSION_ID_MARKERS = ("sessionId>", "sessionId&gt;")


def _header_token(name: str, value: Any) -> Optional[str]:
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


def _replace_in_body(body: Any, old: str, new: str) -> Any:
    if isinstance(body, bytes):
        return body.replace(old.encode("utf-8"), new.encode("utf-8"))
    if isinstance(body, bytearray):
        return bytes(body).replace(old.encode("utf-8"), new.encode("utf-8"))
    if isinstance(body, str):
        return body.replace(old, new)
    return body


def _body_contains(body: Any, token: str) -> bool:
    if isinstance(body, (bytes, bytearray)):
        return token.encode("utf-8") in body
    if isinstance(body, str):
        return token in body
    return False


def _looks_like_soap(body: Any) -> bool:
    if isinstance(body, (bytes, bytearray)):
        return any(marker.encode("ascii") in body for marker in _SESSION_ID_MARKERS)
    if isinstance(body, str):
        return any(marker in body for marker in _SESSION_ID_MARKERS)
    return False


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


class RefreshingSession(requests.Session):
    """A ``requests.Session`` that keeps a Salesforce session alive (see module docstring).

    Also:

    * ``timeout`` -- used for every request that is sent without one.
    * ``verify`` -- honoured even when ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` is set
      (plain requests lets those variables override ``Session.verify``); a ``verify=``
      passed with a single request still wins.
    * a redirect that leaves the instance host loses ``Authorization`` *and*
      ``X-SFDC-Session``.
    """

    def __init__(
        self,
        refresher: Refresher,
        *,
        verify: Union[bool, str] = True,
        proxies: Optional[Mapping[str, str]] = None,
        timeout: Any = None,
        base: Optional[requests.Session] = None,
    ) -> None:
        super().__init__()
        self.refresher = refresher
        self.timeout = timeout
        if base is not None:
            self._copy_from(base)
        else:
            # threads share one client: keep more than urllib3's default 10 connections
            self.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        self.verify = verify
        if proxies is not None:
            self.proxies = dict(proxies)

    def _copy_from(self, base: requests.Session) -> None:
        """Take over a caller's session: its mounted adapters (shared, with their pools and
        retries), headers, proxies, cookies, client certificate, auth, hooks, params and
        environment trust. Its ``verify`` is decided by the caller of the constructor."""
        self.adapters = collections.OrderedDict(base.adapters)
        self.headers = requests.structures.CaseInsensitiveDict(base.headers)
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
        proxies: Optional[MutableMapping[str, str]],
        stream: Optional[bool],
        verify: Optional[Union[bool, str]],
        cert: Any,
    ) -> Any:
        # requests replaces verify=None/True by REQUESTS_CA_BUNDLE; when the caller of
        # this request said nothing, the session's own verify (our CA bundle) is the answer.
        if verify is None:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    # -- sending ------------------------------------------------------------------------------
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return self._send(request, kwargs, 0)

    def _send(
        self, request: requests.PreparedRequest, kwargs: Dict[str, Any], refreshes: int
    ) -> requests.Response:
        sent_token = self._authorize(request)
        response = super().send(request, **dict(kwargs))
        if (
            sent_token is None
            or refreshes >= MAX_REFRESHES_PER_REQUEST
            or response.history  # redirects were followed: each hop handled its own answer
        ):
            return response
        signal = expiry_signal(response)
        if signal is None:
            return response
        logger.debug(
            "%s %s: session %s expired (%s signal, HTTP %d)",
            request.method, _host_of(request.url or ""), _mask(sent_token), signal,
            response.status_code,
        )
        replayable = body_is_replayable(request)
        # Consume and release the failed response before anything else goes out.
        response.close()
        token = self.refresher.refresh(sent_token)
        if not replayable:
            raise RequestNotReplayable(
                response.url, response.status_code, "", _content_for_error(response)
            )
        retry = self._copy_for_resend(request, response, sent_token, token.access_token)
        self._follow_instance(retry, token.instance_url)
        new_response = self._send(retry, kwargs, refreshes + 1)
        new_response.history = [*response.history, response, *new_response.history]
        return new_response

    def _wants_token(self, url: str) -> bool:
        return self.refresher.is_instance_url(url) or self.refresher.is_identity_url(url)

    def _authorize(self, request: requests.PreparedRequest) -> Optional[str]:
        """Put the current token on a request to our hosts; return the token it carries
        (None when the request does not carry one of ours: then it is left alone)."""
        url = request.url or ""
        if not self._wants_token(url):
            return None
        refresher = self.refresher
        current = refresher.access_token
        headers = request.headers
        sent: Optional[str] = None
        foreign = False
        for name in _TOKEN_HEADERS:
            if name not in headers:
                continue
            value = headers[name]
            token = _header_token(name, value)
            if token is None:
                foreign = True
                continue
            if token == current:
                sent = current
            elif refresher.is_old_token(token):
                if isinstance(value, bytes):
                    value = value.decode("latin-1")
                headers[name] = value.replace(token, current)
                sent = current
            else:
                foreign = True  # somebody else's token: not ours to touch
        if sent is None and not foreign and not any(name in headers for name in _TOKEN_HEADERS):
            headers["Authorization"] = "Bearer " + current
            sent = current
        body = request.body
        if _looks_like_soap(body):
            changed = False
            for old in refresher.old_tokens():
                if old != current and _body_contains(body, old):
                    body = _replace_in_body(body, old, current)
                    changed = True
            if changed:
                request.body = body
                request.prepare_content_length(body)
        return sent

    def _copy_for_resend(
        self,
        request: requests.PreparedRequest,
        failed: requests.Response,
        old: str,
        new: str,
    ) -> requests.PreparedRequest:
        retry = request.copy()
        # Cookies the failed answer set go along, as HTTPDigestAuth does.
        if failed.raw is not None:
            extract_cookies_to_jar(retry._cookies, request, failed.raw)  # type: ignore[attr-defined]
            if "Cookie" in retry.headers and len(retry._cookies):  # type: ignore[attr-defined]
                del retry.headers["Cookie"]
            retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        for name in _TOKEN_HEADERS:
            value = retry.headers.get(name)
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(value, str) and old in value:
                retry.headers[name] = value.replace(old, new)
        if isinstance(retry.body, (bytes, bytearray, str)):
            if old != new and _body_contains(retry.body, old):
                retry.body = _replace_in_body(retry.body, old, new)
                retry.prepare_content_length(retry.body)
        elif retry.body is not None:
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
        logger.info("resending to the new instance %s", _host_of(instance_url))

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


def _content_for_error(response: requests.Response) -> Any:
    try:
        return response.json()
    except Exception:
        try:
            return response.text
        except Exception:  # pragma: no cover
            return b""
