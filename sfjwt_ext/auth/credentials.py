"""The credentials of one login: the current token, how to get a new one, and the one
single-flight that gets it.

``Refresher`` knows the current token, its token source (a
:class:`~sfjwt_ext.auth.token_client.TokenClient`, or a cache that wraps one the same way) and
which tokens it handed out before. ``refresh(seen_token)`` is single-flight: one lock, one
token request however many threads call it at once; a thread that failed with an older token
than the current one gets the current one without a token request. A first login is a refresh
from no token: a refresher made by :meth:`Refresher.before_login` has none; its first refresh
(:meth:`Refresher.log_in`) makes the token client and logs in, once for all threads, its
failure shared with its waiters. Clients that share the refresher (``SalesforceJWT``) hear of
a new token through weak references. After ``MAX_REFUSED_TOKENS`` freshly issued tokens in a
row were refused by the API, it stops asking until one is accepted or
``REFUSED_RETRY_AFTER`` seconds passed (:class:`~sfjwt_ext.errors.SessionRefusedError`).
"""
from __future__ import annotations

import hashlib
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Protocol, Set, Tuple

from cryptography.hazmat.primitives.asymmetric import rsa

import requests

from .._internal.fork import ProcessLocal
from .._internal.redact import MaskedToken, get_logger, mask_consumer_key, mask_token
from .._internal.urls import Origin, host_of, https_origin_of, origin_of
from ..errors import SessionRefusedError
from .keys import key_fingerprint
from .signals import content_for_error, expiry_signal, salesforce_message
from .token_client import TokenResponse

__all__ = [
    "LoginIdentity", "Refresher", "log_in", "NO_TOKEN", "token_digest", "TokenListener", "TokenSource",
    "MAX_REFUSED_TOKENS", "REFUSED_RETRY_AFTER",
]

logger = get_logger("sfjwt_ext.session")


class TokenSource(Protocol):
    """Where a login's tokens come from: ``fetch()`` a new token, ``close()`` its idle
    connections (the login cache does, on eviction and fork), and whose they are
    (``username``, for logs). A :class:`~sfjwt_ext.auth.token_client.TokenClient`, or a source
    that wraps one the same way (the token cache's
    :class:`~sfjwt_ext.sharing.diskcache.SharedTokenSource`, an unpickled client's key loader)."""

    @property
    def username(self) -> str: ...

    def fetch(self) -> TokenResponse: ...

    def close(self) -> None:
        """Close idle connections (the source stays usable)."""


class TokenListener(Protocol):
    """A client told about a new token (``SalesforceJWT``)."""

    def _sfjwt_token_changed(self, token: TokenResponse) -> None: ...


#: After this many freshly issued tokens in a row were refused, no more token requests...
MAX_REFUSED_TOKENS = 2


#: ...until one is accepted, or this many seconds have passed (then one more try).
REFUSED_RETRY_AFTER = 300.0


#: The token of a refresher that has not logged in yet (:meth:`Refresher.before_login`).
NO_TOKEN = TokenResponse(access_token="", instance_url="", issued_at=0.0)


class _NoClient:
    """The token source of a refresher before its first login (which makes the real one)."""

    username = "?"

    def fetch(self) -> TokenResponse:
        raise RuntimeError("not logged in: call Refresher.log_in() first")

    def close(self) -> None:
        """Nothing to close."""


@dataclass
class _Refusals:
    """The API's refusals of freshly issued tokens (see :class:`Refresher`)."""

    generation: int = -1  # the generation whose token was last refused
    count: int = 0
    since: float = 0.0
    words: Dict[str, str] = field(default_factory=dict)  # API ("rest", "bulk", "soap") -> its last wording
    last: Tuple[str, int, str, Any] = ("", 0, "", None)  # url, status, message, content


def token_digest(token: str) -> bytes:
    """Old tokens are remembered by their SHA-256 only: no old secret stays in memory."""
    return hashlib.sha256(token.encode("utf-8")).digest()


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
        self._make_client: Optional[Callable[[], TokenSource]] = None  # before the first login (before_login)
        self._first_token: Optional[TokenResponse] = None  # and its token, when it is known already
        self._logged_in_by: Optional[threading.Thread] = None  # the thread that made the first login
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
        self._unproven: Optional[str] = token.access_token  # refused sessions (see the class docstring)
        self._refused = _Refusals()

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
        return token != self.token.access_token and token_digest(token) in self._old_tokens

    def is_instance_url(self, url: str) -> bool:
        origin = origin_of(url)
        return origin is not None and origin in self._instance_origins

    def is_identity_url(self, url: str) -> bool:
        base = self.token.id.split("?", 1)[0]
        return bool(base) and (url == base or url.startswith((base + "?", base + "/")))

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
                self._unproven, self._refused = None, _Refusals()

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
        message, refused = salesforce_message(answer), self._refused
        api = expiry_signal(answer) or "rest"
        said_before = refused.words.get(api)
        if said_before is not None and said_before != message:
            refused.count, refused.generation = 0, -1
        refused.words[api] = message
        refused.last = (answer.url or "", answer.status_code, message, content_for_error(answer))
        if refused.generation != self.generation:
            refused.generation, refused.since = self.generation, time.monotonic()
            refused.count += 1

    def refusal_error(self) -> SessionRefusedError:
        return SessionRefusedError(*self._refused.last)

    # -- first login ----------------------------------------------------------------------
    @classmethod
    def before_login(
        cls, make_client: Callable[[], TokenSource], token: Optional[TokenResponse] = None
    ) -> "Refresher":
        """A refresher with no token yet: :meth:`log_in` makes its token client with
        ``make_client()`` and logs in (``token``: the first token, given by an unpickled
        client: no token request)."""
        refresher = cls(_NoClient(), NO_TOKEN)
        refresher._make_client, refresher._first_token = make_client, token
        return refresher

    def log_in(self) -> bool:
        """The first login: a refresh from no token, single-flight like every refresh.
        True for the thread that made it; its waiters get False, or raise its exception.
        An interrupt (``KeyboardInterrupt``) stays with its thread: a waiter logs in."""
        if self._make_client is None:
            return False
        self.refresh(NO_TOKEN.access_token)
        return self._logged_in_by is threading.current_thread()

    def _fetch(self) -> TokenResponse:
        """A new token (under the lock); a first login makes the token client first."""
        make_client = self._make_client
        if make_client is None:
            return self.token_client.fetch()
        client = make_client()
        token = log_in(client, self._first_token)  # closes the client when it fails
        self.token_client, self._make_client, self._first_token = client, None, None
        self.logged_in_at, self._logged_in_by = time.time(), threading.current_thread()
        return token

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, seen_token: str, *, answer: Optional[requests.Response] = None) -> TokenResponse:
        """Return a token newer than ``seen_token``, making at most one token request for
        all threads that ask at the same time. ``answer``: the response that said the
        session expired (quoted when the session is refused).

        Only errors of the exchange are shared with the waiters: an interrupt
        (KeyboardInterrupt, SystemExit) belongs to the thread that received it, and the next
        waiter simply tries the refresh itself."""
        seen_token = MaskedToken(seen_token)  # this frame shows it masked
        waited_since = time.monotonic()
        with self._guard():
            current = self.token
            if current.access_token != seen_token or self._last_success > waited_since:
                # another thread refreshed (Salesforce may have given the same token again)
                return current
            self._refuse_early(seen_token, waited_since, answer)
            started = time.monotonic()
            logger.debug("refreshing session %s", mask_token(seen_token))
            try:
                new = self._fetch()
            except Exception as exc:  # shared with the waiters; an interrupt is not (see above)
                self._last_failure = (time.monotonic(), seen_token, exc)
                elapsed_ms = (time.monotonic() - started) * 1000.0
                logger.warning("session refresh failed after %.0f ms: %s", elapsed_ms, type(exc).__name__)
                raise
            self._take(current, new)
            clients = list(self._clients)
        elapsed_ms = (time.monotonic() - started) * 1000.0
        if current is NO_TOKEN:  # token_client.py logs the login at INFO; this is the step.
            logger.debug("logged in %s (org %s) in %.0f ms", self.token_client.username, new.org_id or "?", elapsed_ms)
            return new
        logger.info(
            "refreshed the Salesforce session of %s at %s (org %s) in %.0f ms, refresh #%d",
            self.token_client.username, host_of(new.instance_url), new.org_id, elapsed_ms, self.refresh_count,
        )
        for client in clients:
            try:
                client._sfjwt_token_changed(new)
            except Exception:  # a broken client must not break the refresh of the others
                logger.exception("could not hand the new token to %s", type(client).__name__)
        return new

    def _refuse_early(self, seen_token: str, waited_since: float, answer: Optional[requests.Response]) -> None:
        """Raise instead of a token request (under the lock): the failure of the refresh
        this caller waited for (or of a first login), or :class:`SessionRefusedError` when
        fresh tokens were refused ``MAX_REFUSED_TOKENS`` times in a row (``answer``, the
        expiry of a token just issued, is counted first)."""
        failure = self._last_failure
        if failure is not None and failure[1] == seen_token and (
                failure[0] > waited_since or self.token is NO_TOKEN):
            raise failure[2]  # a failed first login is over for everybody who has it
        if answer is not None and seen_token == self._unproven:
            self._note_refusal(answer)
            if (self._refused.count >= MAX_REFUSED_TOKENS
                    and time.monotonic() - self._refused.since < REFUSED_RETRY_AFTER):
                raise self.refusal_error()

    def _take(self, current: TokenResponse, new: TokenResponse) -> None:
        """Make ``new`` the current token (under the lock); a first login is no refresh."""
        self._last_failure = None
        if current is not NO_TOKEN:
            if new.access_token != current.access_token:
                self._old_tokens.add(token_digest(current.access_token))
            self.generation += 1
            self.refresh_count += 1
        self._unproven = new.access_token  # (Salesforce may give the same one again)
        self.token = new
        self._last_success = time.monotonic()
        self._remember_instance(new)

    def _remember_instance(self, token: TokenResponse) -> None:
        origin = https_origin_of(token.instance_url)
        if origin is not None:
            self._instance_origins.add(origin)

    def __repr__(self) -> str:
        return (
            f"<Refresher {self.token_client.username} "
            f"token={mask_token(self.token.access_token)} generation={self.generation} "
            f"refreshes={self.refresh_count}>"
        )


@dataclass(frozen=True)
class LoginIdentity:
    """Whose token: the same identity gets the same session from Salesforce. ``key_id``
    names the key, never its material: :func:`~sfjwt_ext.auth.keys.key_fingerprint` (the
    on-disk cache, :meth:`for_key`) or what the user gave, hashed (the per-process cache)."""

    username: str
    consumer_key: str
    token_url: str
    audience: str
    key_id: str

    @classmethod
    def for_key(
        cls, *, username: str, consumer_key: str, token_url: str, audience: str, key: rsa.RSAPrivateKey
    ) -> "LoginIdentity":
        return cls(username, consumer_key, token_url, audience, key_fingerprint(key))

    def __repr__(self) -> str:
        return (
            f"LoginIdentity(username={self.username!r}, consumer_key={mask_consumer_key(self.consumer_key)!r}, "
            f"token_url={self.token_url!r}, audience={self.audience!r}, key_id={self.key_id[:19]!r})"
        )


def log_in(client: TokenSource, token: Optional[TokenResponse] = None) -> TokenResponse:
    """The first token of a login: ``token`` when given, else one ``client.fetch()``. A
    failed login closes the client."""
    if token is not None:
        return token
    try:
        return client.fetch()
    except BaseException:
        client.close()
        raise
