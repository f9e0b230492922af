"""The refreshing ``requests.Session``: it decides *when* to refresh (the credentials /
transport split of google-auth; the token and its single-flight are :mod:`.credentials`).

``RefreshingSession``
    Decides *when* to refresh. On every request to the instance host (and to the identity
    URL) it puts the current token on the request -- replacing a token of an older
    generation wherever it is: ``Authorization: Bearer``, ``X-SFDC-Session`` and a SOAP
    ``<sessionId>`` in the body -- so handlers created before a refresh (``sf.bulk``,
    ``sf.bulk2``, ``sf.mdapi``) keep working. After sending it looks for the expiry signal
    of each API (:mod:`.signals`), and on one it refreshes and resends a copy of the same prepared request, once (the
    number of refreshes is an argument of the private send, never state on the session, so
    threads do not share it). If the second answer is an expiry too, it is returned as is and
    simple-salesforce raises its usual ``SalesforceExpiredSession``.

    A SOAP request (``/services/Soap/<api>/<version>``, e.g. ``sf.mdapi``) below API 68.0
    that would carry a JWT-format access token raises
    :class:`~sfjwt_ext.errors.SoapJwtTokenError` before it is sent: Salesforce would refuse
    it with what looks like an expired session, and a refresh would only bring another JWT.
"""
from __future__ import annotations

import itertools
import re
import time
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
from requests.cookies import extract_cookies_to_jar
from requests.utils import rewind_body
from urllib3.exceptions import NewConnectionError

from .._internal.fork import ProcessLocal
from .._internal.redact import MaskedToken, get_logger, mask_token
from .._internal.backoff import backoff_delays, retry_after
from .._internal.urls import host_of, https_origin_of
from ..errors import ConfigurationError, RequestNotReplayable
from .credentials import Refresher
from .signals import content_for_error, expiry_signal, refuse_jwt_below_soap_minimum
from .token_client import TimeoutType


__all__ = [
    "RefreshingSession", "put_token", "body_is_replayable", "MAX_REFRESHES_PER_REQUEST", "DEFAULT_API_TIMEOUT",
    "DEFAULT_RETRIES", "MAX_RETRY_AFTER",
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

#: A 502/503/504 whose ``Retry-After`` (seconds or an HTTP date) asks for a longer wait than
#: this is returned at once instead of retried: a huge value must not hang a job.
MAX_RETRY_AFTER = 30.0


_IDEMPOTENT = frozenset({"GET", "HEAD"})
_RETRY_STATUSES = frozenset({502, 503, 504})

_TOKEN_HEADERS = ("Authorization", "X-SFDC-Session")
# a SOAP <sessionId> (also XML-escaped inside another envelope)
_SOAP_SESSION_ID = re.compile(rb"(sessionId(?:>|&gt;)\s*)([^<&\s]+)")


def _header_token(name: str, text: str) -> Optional[str]:
    """The token in an ``Authorization: Bearer|OAuth <token>`` or an ``X-SFDC-Session`` header
    (the bare token; some tools prefix ``Bearer``), or None."""
    value = text.strip()
    scheme, _, rest = value.partition(" ")
    if name.lower() == "authorization":
        return rest.strip() or None if scheme.lower() in ("bearer", "oauth") else None
    return (rest.strip() if scheme.lower() == "bearer" and rest else value) or None


def _swap_body_tokens(request: requests.PreparedRequest, refresher: Refresher, current: str) -> None:
    """Every old token of ``refresher`` in a SOAP ``<sessionId>`` of the body becomes ``current``."""
    body = request.body
    if isinstance(body, str) and "sessionId" in body:
        raw = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray)) and b"sessionId" in body:
        raw = bytes(body)
    else:
        return
    new = current.encode("utf-8")

    def swap(match: "re.Match[bytes]") -> bytes:
        old = refresher.is_old_token(match.group(2).decode("utf-8", "replace"))
        return match.group(1) + new if old else match.group(0)

    swapped = _SOAP_SESSION_ID.sub(swap, raw)
    if swapped != raw:
        request.body = swapped.decode("utf-8") if isinstance(body, str) else swapped
        request.prepare_content_length(request.body)


def put_token(request: requests.PreparedRequest, refresher: Refresher) -> Optional[str]:
    """The one place that decides which token goes on a request to our hosts.

    Our token of an older generation, wherever it is (``Authorization``,
    ``X-SFDC-Session``, a SOAP ``<sessionId>``), becomes the current one; a request that
    carries no token gets ``Authorization: Bearer <current>``; somebody else's token is
    left alone. Returns the token the request now carries, or None when it carries none of
    ours (then an expiry answer is not ours to handle)."""
    current = refresher.access_token
    headers = request.headers
    present = [name for name in _TOKEN_HEADERS if name in headers]
    sent: Optional[str] = None
    if not present:
        headers["Authorization"] = "Bearer " + current
        sent = current
    for name in present:
        value = headers[name]
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        token = _header_token(name, text)
        if token is not None and token != current and refresher.is_old_token(token):
            headers[name] = text.replace(token, current)
            token = current
        if token == current:
            sent = current
    _swap_body_tokens(request, refresher, current)
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
    return isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError)


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


def _retry_wait(
    request: requests.PreparedRequest, outcome: Union[requests.Response, requests.exceptions.ConnectionError],
    delays: Iterator[float],
) -> Optional[float]:
    """Seconds to wait before sending ``request`` again after ``outcome``, or None: not again.

    A connection error (not a certificate problem: that does not go away by itself) on a
    GET/HEAD, or on any request whose connection failed before it was sent. A 502/503/504
    on a GET/HEAD, unless it is REQUEST_LIMIT_EXCEEDED; its ``Retry-After`` replaces the
    backoff's delay, and one over ``MAX_RETRY_AFTER`` is not waited for."""
    idempotent = (request.method or "GET").upper() in _IDEMPOTENT
    what, asked = type(outcome).__name__, None
    if isinstance(outcome, requests.Response):
        if not idempotent or outcome.status_code not in _RETRY_STATUSES or _limit_exceeded(outcome):
            return None
        what, asked = f"HTTP {outcome.status_code}", retry_after(outcome.headers.get("Retry-After"))
    elif isinstance(outcome, requests.exceptions.SSLError) or not (
            idempotent or (_never_sent(outcome) and body_is_replayable(request))):
        return None
    host = host_of(request.url or "")
    if asked is not None and asked > MAX_RETRY_AFTER:
        logger.info("%s %s: %s with Retry-After %.0f s (over %.0f s): not retrying",
                    request.method, host, what, asked, MAX_RETRY_AFTER)
        return None
    delay = next(delays, None)
    if delay is not None:
        delay = delay if asked is None else asked
        logger.info("%s %s: %s; retrying in %.1f s", request.method, host, what, delay)
    return delay


def _rewind(request: requests.PreparedRequest) -> None:
    """Put a file body back at its start before the request is sent again."""
    if request.body is not None and not isinstance(request.body, (bytes, bytearray, str)):
        rewind_body(request)


class RefreshingSession(requests.Session):
    """A ``requests.Session`` that keeps a Salesforce session alive (see module docstring).

    Also:

    * ``timeout`` -- used for every request that is sent without one; ``None`` means
      :data:`DEFAULT_API_TIMEOUT` (an API call never waits forever).
    * ``retries`` -- GET and HEAD are sent again after a connection error or a 502/503/504
      (after its ``Retry-After`` when it has one, up to ``MAX_RETRY_AFTER``), up to
      ``retries`` times with :func:`~sfjwt_ext._internal.backoff.backoff_delays`; any request
      whose connection failed before it was sent, too. A request that may have reached
      Salesforce (a POST whose connection dropped) is never resent; ``REQUEST_LIMIT_EXCEEDED``
      is not retried. ``retries=0``, or the caller's own adapter (``base=`` with a custom
      adapter or one with ``max_retries``), turns it off.
    * ``base`` -- a caller's session whose adapters (shared, with their pools and retries),
      headers, proxies, cookies, client certificate, auth, hooks, params and environment
      trust are taken over (copied); its ``verify`` is decided by the caller of the constructor.
    * ``verify`` -- honoured even when ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` is set
      (plain requests lets those variables override ``Session.verify``); a ``verify=``
      passed with a single request still wins.
    * a redirect that leaves the instance host loses ``Authorization`` *and*
      ``X-SFDC-Session``.
    * after ``os.fork()`` the child drops the pooled connections it inherited (closed
      without a byte written on them) and opens its own.
    """

    def __init__(
        self, refresher: Refresher, *, verify: Union[bool, str] = True, proxies: Optional[Mapping[str, str]] = None,
        timeout: TimeoutType = None, base: Optional[requests.Session] = None, retries: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.refresher = refresher
        self.timeout = DEFAULT_API_TIMEOUT if timeout is None else timeout
        self.retries = _check_retries(retries)
        self._process: ProcessLocal[object] = ProcessLocal(object)
        self._own_adapter: Optional[requests.adapters.HTTPAdapter] = None
        if base is not None:
            for name in requests.Session.__attrs__:  # what a Session is made of (requests pickles these)
                value = getattr(base, name)
                setattr(self, name, value.copy() if hasattr(value, "copy") else value)
            self.hooks = {event: list(hooks) for event, hooks in base.hooks.items()}
        else:  # threads share one client: keep more than urllib3's default 10 connections
            self._own_adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
            self.mount("https://", self._own_adapter)
        self.verify = verify
        if proxies is not None:
            self.proxies = dict(proxies)

    def merge_environment_settings(
        self, url: str, proxies: Optional[Dict[str, str]], stream: Optional[bool], verify: Optional[Union[bool, str]],
        cert: Any,
    ) -> Any:
        """requests replaces verify=None/True by REQUESTS_CA_BUNDLE; when the caller of this
        request said nothing, the session's own verify (our CA bundle) is the answer."""
        if verify is None:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with the session's timeout unless the request has one. A forked child first
        forgets its parent's pooled sockets: closing one writes nothing on it (no TLS
        close_notify), so the parent's connections stay intact."""
        if self._process.forked():
            self.close()
            logger.debug("forked child: dropped the connections inherited from the parent")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return self._send(request, kwargs, 0)

    def _send(self, request: requests.PreparedRequest, kwargs: Dict[str, Any], refreshes: int) -> requests.Response:
        url = request.url or ""
        sent_token = put_token(request, self.refresher) if self._wants_token(url) else None
        if sent_token is not None:
            refuse_jwt_below_soap_minimum(url, self.refresher.token, sent_token)
        response = self._send_with_retries(request, kwargs)
        if sent_token is None or response.history:  # not ours, or redirects: each hop handled its answer
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
        response.close()  # consumed and released before anything else goes out
        token = self.refresher.refresh(sent_token, answer=response)
        if not body_is_replayable(request):
            raise RequestNotReplayable(response.url, response.status_code, "", content_for_error(response))
        retry = self._copy_for_resend(request, response, token.instance_url)
        new_response = self._send(retry, kwargs, refreshes + 1)
        new_response.history = [*response.history, response, *new_response.history]
        return new_response

    def _retry_delays(self, request: requests.PreparedRequest) -> Iterator[float]:
        adapter = self.get_adapter(request.url or "")
        if self.retries <= 0 or (adapter is not self._own_adapter and _adapter_has_own_retries(adapter)):
            return iter(())
        return itertools.islice(backoff_delays(RETRY_FIRST_DELAY, jitter=RETRY_JITTER), self.retries)

    def _send_with_retries(self, request: requests.PreparedRequest, kwargs: Dict[str, Any]) -> requests.Response:
        """Send; again after a blip when that cannot do a request twice (:func:`_retry_wait`)."""
        delays = self._retry_delays(request)
        while True:
            try:
                response = super().send(request, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                wait = _retry_wait(request, exc, delays)
                if wait is None:
                    raise
            else:
                if response.status_code not in _RETRY_STATUSES:  # nearly every answer
                    return response
                wait = _retry_wait(request, response, delays)
                if wait is None:
                    return response
                response.close()
            _rewind(request)
            time.sleep(wait)

    def _wants_token(self, url: str) -> bool:
        return self.refresher.is_instance_url(url) or self.refresher.is_identity_url(url)

    def _copy_for_resend(
        self, request: requests.PreparedRequest, failed: requests.Response, instance_url: str
    ) -> requests.PreparedRequest:
        """A copy of ``request`` to send again (``put_token`` gives it the new token), with
        the cookies the failed answer set (as ``HTTPDigestAuth`` does). A refresh that
        answered with another ``instance_url`` (an org migration) sends it to the new
        instance, as the client's URLs do from now on."""
        retry = request.copy()
        jar = retry._cookies
        if failed.raw is not None and jar is not None:
            extract_cookies_to_jar(jar, request, failed.raw)
            if "Cookie" in retry.headers and len(jar):
                del retry.headers["Cookie"]
            retry.prepare_cookies(jar)
        _rewind(retry)
        url = retry.url or ""
        new_origin = https_origin_of(instance_url)
        if (self.refresher.is_instance_url(url) and not self.refresher.is_identity_url(url)
                and new_origin is not None and https_origin_of(url) != new_origin):
            retry.url = urlunsplit(urlsplit(url)._replace(netloc=urlsplit(instance_url).netloc))
            logger.info("resending to the new instance %s", host_of(instance_url))
        return retry

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """requests drops ``Authorization`` when a redirect changes host; we also drop
        ``X-SFDC-Session``, and both whenever a redirect leaves our hosts."""
        original_url = response.request.url or ""
        super().rebuild_auth(prepared_request, response)
        new_url = prepared_request.url or ""
        if self.should_strip_auth(original_url, new_url) or (
                self._wants_token(original_url) and not self._wants_token(new_url)):
            for name in _TOKEN_HEADERS:
                if name in prepared_request.headers:
                    del prepared_request.headers[name]

    def __repr__(self) -> str:
        return f"<RefreshingSession {self.refresher!r}>"


def _check_retries(retries: Optional[int]) -> int:
    if retries is None:
        return DEFAULT_RETRIES
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigurationError(f"retries= must be a whole number from 0 to 10 (0: never resend), not {retries!r}")
    return retries


def _limit_exceeded(response: requests.Response) -> bool:
    try:
        return b"REQUEST_LIMIT_EXCEEDED" in response.content
    except Exception:
        return False


