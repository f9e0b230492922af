"""The token exchange: where to log in (:func:`resolve_login`) and the token POST itself
(:class:`TokenClient`), with retries for transient failures and a specific exception for
every answer Salesforce gives.

Rules
-----
* ``domain`` follows simple-salesforce: ``'login'``, ``'test'``, ``'acme.my'`` (no dot, or
  ending in ``.my``) get ``.salesforce.com`` appended; a value with a scheme is a URL; any
  other value is a full host name. ``login_url`` (a URL) replaces ``domain``.
* ``aud`` is ``https://login.salesforce.com`` for login.salesforce.com and production My
  Domains, ``https://test.salesforce.com`` for test.salesforce.com and sandbox My Domains,
  and the login URL itself for any other host (an Experience Cloud site, the local org).
  ``audience`` replaces it.
* Only ``https://``, except plain ``http://`` to 127.0.0.1, localhost and [::1].
* Hosts that serve an org but do not log in (``acme.lightning.force.com``,
  ``acme.my.salesforce-setup.com``, ``acme--c.vf.force.com``, instance hosts such as
  ``na123.salesforce.com``) are refused with the ``domain=`` to use instead. A sandbox My
  Domain has ``--`` in its first label (``acme--uat``) or ``.sandbox.`` in its host; the
  ``xn--`` of a punycode label does not count.
* Transient failures (5xx, 408, 425, 429, timeouts, dropped connections) are retried, up
  to ``max_attempts`` requests in all, with exponential backoff and full jitter (capped at
  ``MAX_BACKOFF`` seconds, or the server's ``Retry-After``), inside a total time budget that
  holds whatever the answer's size (bodies are read up to ``MAX_BODY_BYTES`` and quoted cut
  first, then masked). Every ``invalid_*`` answer and the login rate limit fail at once.
* A 200 answer is a token only when ``access_token`` is a non-empty string and
  ``instance_url`` an https URL; anything else is ``unexpected_response``.
* Secrets stay out of stack frames: the assertion is made, sent and dropped inside one
  helper (:meth:`TokenClient._post`), and the sent request's body is cleared, so a traceback
  with ``capture_locals=True`` never shows it.
* Fork-aware: the HTTP pool and the lock of a :class:`TokenClient` are per process
  (:class:`~sfjwt_ext._internal.fork.ProcessLocal`): a forked child opens its own connections.
* A TLS certificate that cannot be verified is not retried: it raises
  :class:`~sfjwt_ext.errors.TokenEndpointUnavailable` (``attempts=1``, ``last_cause`` the
  ``requests.exceptions.SSLError``) whose hint names ``verify=`` / ``SF_CA_BUNDLE``.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .._internal.fork import ProcessLocal
from .._internal.redact import excerpt, get_logger, looks_like_jwt, mask_token
from .._internal.backoff import backoff_delays, retry_after
from .._internal.urls import is_https_origin
from .assertion import build_claims, sign_assertion
from .target import LOGIN_AUDIENCE, TEST_AUDIENCE, LoginTarget
from .keys import load_private_key
from ..errors import (
    AudienceInvalidError,
    AuthenticationError,
    ConfigurationError,
    PrivateKeyError,
    TokenEndpointUnavailable,
    error_for,
    unexpected_response,
)

__all__ = ["TokenResponse", "TokenClient", "GRANT_TYPE"]

log = get_logger("sfjwt_ext.exchange")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


# ---------------------------------------------------------------------------------------
# resolve_login
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# TokenResponse
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenResponse:
    """A successful token answer. ``repr`` masks the access token; ``org_id`` and
    ``user_id`` come from the identity URL ``id`` (``.../id/<orgId>/<userId>``), never from
    the token (a JWT-format token has no ``00D`` prefix). ``token_format`` is the answer's
    ``token_format`` (``"jwt"`` from an app that issues JWT-based access tokens), else "";
    :attr:`is_jwt` says whether the access token is a JWT (that, or its shape)."""

    access_token: str
    instance_url: str
    id: str = ""
    scope: str = ""
    token_type: str = "Bearer"
    issued_at: float = field(default_factory=time.time)
    org_id: str = ""
    user_id: str = ""
    token_format: str = ""

    @property
    def is_jwt(self) -> bool:
        """The access token is a JWT (``token_format: "jwt"``, or a JWT's shape when the
        answer did not say): SOAP below API 68.0 refuses it."""
        return self.token_format.lower() == "jwt" or looks_like_jwt(self.access_token)

    def __post_init__(self) -> None:
        if (not self.org_id or not self.user_id) and self.id:
            match = _ID_RE.search(self.id)
            if match:
                if not self.org_id:
                    object.__setattr__(self, "org_id", match.group(1))
                if not self.user_id:
                    object.__setattr__(self, "user_id", match.group(2))

    def __repr__(self) -> str:
        return (
            f"TokenResponse(access_token={mask_token(self.access_token)!r}, "
            f"instance_url={self.instance_url!r}, id={self.id!r}, scope={self.scope!r}, "
            f"token_type={self.token_type!r}, issued_at={self.issued_at!r}, "
            f"org_id={self.org_id!r}, user_id={self.user_id!r}, "
            f"token_format={self.token_format!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_json(cls, data: Mapping[str, object], *, issued_at: Optional[float] = None) -> "TokenResponse":
        """From the token endpoint's JSON. Raises ValueError (whose text never quotes a
        token) unless ``access_token`` is a non-empty string and ``instance_url`` an https
        URL; ``id``, ``scope`` and ``token_type`` are kept only when they are strings."""
        problem = _token_json_problem(data)
        if problem:
            raise ValueError(problem)

        def text(name: str, default: str = "") -> str:
            value = data.get(name)
            return value if isinstance(value, str) and value else default

        return cls(
            access_token=text("access_token"),
            instance_url=text("instance_url").rstrip("/"),
            id=text("id"),
            scope=text("scope"),
            token_type=text("token_type", "Bearer"),
            token_format=text("token_format"),
            issued_at=time.time() if issued_at is None else issued_at,
        )


def _json_kind(value: object) -> str:
    """What a JSON value is, without quoting it (it may be a token)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a blank string" if not value.strip() else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _token_json_problem(data: Mapping[str, object]) -> Optional[str]:
    """Why ``data`` is not a token answer (a text that quotes no value but a masked
    instance_url), or None when it is one."""
    missing = [name for name in ("access_token", "instance_url") if data.get(name) in (None, "")]
    if missing:
        return f"JSON without {' and '.join(missing)}"
    token, url = data.get("access_token"), data.get("instance_url")
    if not isinstance(token, str) or not token.strip():
        return f"access_token is {_json_kind(token)}, not a non-empty string"
    if not isinstance(url, str):
        return f"instance_url is {_json_kind(url)}, not an https URL"
    if not is_https_origin(url):
        return f"instance_url {excerpt(url, 120)!r} is not an https URL (https://host[:port])"
    return None


# ---------------------------------------------------------------------------------------
# TokenClient
# ---------------------------------------------------------------------------------------
TimeoutType = Union[None, float, Tuple[Optional[float], Optional[float]]]

#: How much of an answer is read: a token answer is under 2 KB, an error page a few KB.
MAX_BODY_BYTES = 64 * 1024

_RATE_LIMIT_CODES = {"rate_limit_exceeded", "login_rate_exceeded"}
_RETRY_STATUSES = {408, 425, 429}
_RETRY_ERRORS = (
    requests.exceptions.ConnectionError,  # refused, reset, dropped (and SSLError, see below)
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_CERT_ERROR_MARKERS = (
    "certificate verify failed", "certificate_verify_failed", "hostname", "self signed",
    "self-signed", "unable to get local issuer",
)


def _is_cert_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _CERT_ERROR_MARKERS)


def _can_retry(outcome: Union[requests.Response, BaseException]) -> bool:
    """Whether a failed attempt may be tried again: a 408/425/429/5xx answer (the caller
    has ruled out Salesforce's permanent error codes), a timeout, a dropped or refused
    connection, a TLS failure other than an unverifiable certificate."""
    if isinstance(outcome, requests.Response):
        return outcome.status_code in _RETRY_STATUSES or outcome.status_code >= 500
    if isinstance(outcome, requests.exceptions.SSLError):
        return not _is_cert_error(outcome)
    return isinstance(outcome, _RETRY_ERRORS)


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """At most ``MAX_BODY_BYTES`` of the (streamed) answer, read before ``deadline``."""
    chunks: List[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES or time.monotonic() > deadline:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


class _Transient(Exception):
    """An attempt that may be retried (internal); ``cause`` is a cleaned exception or a
    short, masked description of the answer."""

    def __init__(self, cause: Union[BaseException, str], retry_after: Optional[float] = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


class _Pool:
    """What a process must not share with a forked child: the plain session (its pooled
    TLS connections) of the token POSTs, and the lock of the client's counters."""

    def __init__(self, verify: Union[bool, str], proxies: Mapping[str, str]) -> None:
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.session.verify = verify
        if proxies:
            self.session.proxies.update(proxies)
        self.session.headers.update({"Accept": "application/json"})


class TokenClient:
    """Signs an assertion and exchanges it for an access token.

    Owns a plain :class:`requests.Session` (never the refreshing one), one per process
    (a forked child makes its own). ``verify`` (True, False or a CA bundle path) and
    ``proxies`` are passed on every request, so ``REQUESTS_CA_BUNDLE`` in the environment
    cannot override a private CA. ``timeout`` is ``(connect, read)`` seconds or one number;
    every request also ends within the total ``total_budget``. Up to ``max_attempts``
    requests for transient failures, with exponential backoff (base ``backoff`` seconds,
    at most ``MAX_BACKOFF``) and full jitter. Thread-safe. :meth:`close` closes the idle
    connections; a closed client still works (the next fetch opens a new connection).
    """

    def __init__(
        self,
        *,
        username: str,
        consumer_key: str,
        key: Union[rsa.RSAPrivateKey, str, bytes],
        target: LoginTarget,
        verify: Union[bool, str] = True,
        proxies: Optional[Mapping[str, str]] = None,
        timeout: TimeoutType = (10, 30),
        total_budget: float = 60.0,
        max_attempts: int = 3,
        backoff: float = 0.5,
        lifetime: int = 180,
    ) -> None:
        if not username:
            raise ConfigurationError("username= (SF_USERNAME) is required for the JWT login")
        if not consumer_key:
            raise ConfigurationError("consumer_key= (SF_CONSUMER_KEY) is required for the JWT login")
        if isinstance(key, (str, bytes)):
            key = _parse_key(key)  # parse once, here; no frame keeps the text
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PrivateKeyError(
                f"TokenClient needs an RSA private key object, not {type(key).__name__}: "
                "load it with sfjwt_ext.auth.keys.load_private_key()"
            )
        if not isinstance(target, LoginTarget):
            raise ConfigurationError("target= must be a LoginTarget from sfjwt_ext.auth.target.resolve_login()")
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts={max_attempts!r} must be at least 1")
        if total_budget <= 0:
            raise ConfigurationError(f"total_budget={total_budget!r} must be a positive number of seconds")
        self.username = username
        self.consumer_key = consumer_key
        self.target = target
        self.verify: Union[bool, str] = verify if verify is not None else True
        self.proxies: Dict[str, str] = dict(proxies or {})
        self.timeout = timeout
        self.total_budget = float(total_budget)
        self.max_attempts = int(max_attempts)
        self.backoff = float(backoff)
        self.lifetime = lifetime
        self._key = key
        self._audience = target.audience
        self._requests_made = 0
        self._pool: ProcessLocal[_Pool] = ProcessLocal(lambda: _Pool(self.verify, self.proxies))

    # -- public ---------------------------------------------------------------------------
    @property
    def requests_made(self) -> int:
        """How many token POSTs this client has sent (for tests and diagnostics)."""
        with self._pool.get().lock:
            return self._requests_made

    @property
    def audience(self) -> str:
        """The ``aud`` currently signed (it changes once if Salesforce refused the derived one)."""
        return self._audience

    @property
    def login_url(self) -> str:
        return self.target.login_url

    @property
    def session(self) -> requests.Session:
        """This process's plain session for the token POSTs."""
        return self._pool.get().session

    def close(self) -> None:
        """Close this process's idle connections (never a parent's: nothing is written on
        an inherited socket). The client stays usable: a later fetch reconnects."""
        pool = self._pool.peek()
        if pool is not None:
            pool.session.close()

    def __enter__(self) -> "TokenClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TokenClient(username={self.username!r}, token_url={self.target.token_url!r}, "
            f"audience={self._audience!r}, requests_made={self.requests_made})"
        )

    def fetch(self) -> TokenResponse:
        """Sign a fresh assertion, POST it and return the token; retries transient failures.

        Raises an :class:`AuthenticationError` subclass for Salesforce's refusals (at once,
        no retry) and :class:`TokenEndpointUnavailable` when every attempt failed.
        """
        started = time.monotonic()
        deadline = started + self.total_budget
        attempts = 0
        failure: Optional[_Transient] = None
        switched = False  # the one login/test audience switch of this fetch
        # no wait before the first attempt, then the backoff
        for delay in itertools.islice(itertools.chain((0.0,), backoff_delays(self.backoff)), self.max_attempts):
            if failure is not None and not self._wait(failure, delay, deadline, attempts):
                break
            if time.monotonic() >= deadline:
                break
            attempts += 1
            before = self._audience
            try:
                return self._logged(self._try(deadline, attempts, may_switch=not switched), started)
            except _Transient as exc:
                failure = exc
            finally:
                switched = switched or self._audience != before
        cause = failure.cause if failure else f"total time budget of {self.total_budget:g} s exhausted"
        raise TokenEndpointUnavailable(self.target.login_url, attempts, cause)

    # -- internals -----------------------------------------------------------------------
    def _wait(self, failure: _Transient, delay: float, deadline: float, attempts: int) -> bool:
        """Sleep before the next attempt (the server's Retry-After, else ``delay``); False
        when that wait would end past the budget."""
        wait = delay if failure.retry_after is None else failure.retry_after
        remaining = deadline - time.monotonic()
        if wait >= remaining:
            log.info(
                "token endpoint %s: not retrying (wait %.2f s exceeds the remaining budget of "
                "%.2f s)", self.target.login_url, wait, max(0.0, remaining),
            )
            return False
        log.info(
            "token endpoint %s failed (%s); retry %d/%d in %.2f s", self.target.login_url,
            excerpt(str(failure.cause), 200), attempts + 1, self.max_attempts, wait,
        )
        if wait > 0:
            time.sleep(wait)
        return True

    def _try(self, deadline: float, attempt: int, *, may_switch: bool) -> TokenResponse:
        """One attempt; when Salesforce refuses a derived login/test ``aud``, one more
        request with the other one right away (it does not count as a retry)."""
        audience = self._audience
        try:
            return self._attempt(audience, deadline, attempt)
        except AudienceInvalidError:
            other = self._other_audience(audience) if may_switch else None
            if other is None:
                raise
        log.warning(
            "Salesforce refused aud=%s for %s at %s (audience is invalid); trying aud=%s "
            "once. Set audience= (SF_AUDIENCE) to skip this extra login.",
            audience, self.username, self.target.login_url, other,
        )
        with self._pool.get().lock:
            if self._audience == audience:
                self._audience = other
        return self._attempt(other, deadline, attempt)

    def _logged(self, token: TokenResponse, started: float) -> TokenResponse:
        if self._audience != self.target.audience:
            log.warning(
                "JWT login of %s succeeded with aud=%s (not %s): set audience=%r "
                "(SF_AUDIENCE) to avoid the extra login",
                self.username, self._audience, self.target.audience, self._audience,
            )
        log.info(
            "JWT login of %s at %s: org %s, instance %s, %s token, %.0f ms",
            self.username, self.target.login_url, token.org_id or "?", token.instance_url,
            "JWT-format" if token.is_jwt else "opaque", (time.monotonic() - started) * 1000.0,
        )
        return token

    def _other_audience(self, audience: str) -> Optional[str]:
        if not self.target.audience_derived:
            return None
        if self.target.host_kind not in ("login", "test", "my_domain", "sandbox_my_domain"):
            return None
        if audience == LOGIN_AUDIENCE:
            return TEST_AUDIENCE
        if audience == TEST_AUDIENCE:
            return LOGIN_AUDIENCE
        return None

    def _request_timeout(self, remaining: float) -> Tuple[float, float]:
        timeout = self.timeout
        if timeout is None:
            connect = read = remaining
        elif isinstance(timeout, (int, float)):
            connect = read = float(timeout)
        else:
            connect_t, read_t = timeout
            connect = remaining if connect_t is None else float(connect_t)
            read = remaining if read_t is None else float(read_t)
        return (max(0.001, min(connect, remaining)), max(0.001, min(read, remaining)))

    def _attempt(self, audience: str, deadline: float, attempt: int) -> TokenResponse:
        log.debug(
            "POST %s (attempt %d/%d, aud %s, user %s)",
            self.target.token_url, attempt, self.max_attempts, audience, self.username,
        )
        with self._pool.get().lock:
            self._requests_made += 1
        try:
            response = self._post(audience, deadline)
        except requests.exceptions.RequestException as exc:
            raise self._failure(exc, attempt) from None
        try:
            return self._handle(response, _read_body(response, deadline))
        except requests.exceptions.RequestException as exc:
            raise self._failure(exc, attempt) from None
        finally:
            response.close()

    def _post(self, audience: str, deadline: float) -> requests.Response:
        """Sign an assertion for ``audience`` and POST it (streamed, no redirects). The
        assertion exists only in this frame's form, which is emptied before anything
        returns or raises, and the sent request's body is cleared: no frame, traceback or
        response keeps it."""
        claims = build_claims(
            consumer_key=self.consumer_key, username=self.username, audience=audience,
            lifetime=self.lifetime,
        )
        form = {"grant_type": GRANT_TYPE, "assertion": sign_assertion(self._key, claims)}
        try:
            response = self.session.post(
                self.target.token_url,
                data=form,
                timeout=self._request_timeout(deadline - time.monotonic()),
                verify=self.verify,
                proxies=self.proxies or None,
                allow_redirects=False,
                stream=True,
            )
        finally:
            form.clear()
        if response.request is not None:
            response.request.body = None
        return response

    def _failure(self, exc: requests.exceptions.RequestException, attempt: int) -> Exception:
        """The exception for a request that failed: :class:`_Transient` when it may be
        retried, else :class:`TokenEndpointUnavailable` (a TLS hint for certificates)."""
        if _can_retry(exc):
            return _Transient(_clean_exception(exc))
        hint = self._tls_hint() if isinstance(exc, requests.exceptions.SSLError) else None
        return TokenEndpointUnavailable(self.target.login_url, attempt, _clean_exception(exc), hint=hint)

    def _handle(self, response: requests.Response, body: Optional[bytes] = None) -> TokenResponse:
        """The token in ``response`` (its ``body`` as read; ``response.content`` if None),
        or the exception for it. The body leaves this frame before anything is raised."""
        outcome = self._judge(response, response.content if body is None else body)
        del body  # a refused answer's traceback must not show a 200 body (it may hold a token)
        if isinstance(outcome, TokenResponse):
            return outcome
        raise outcome

    def _judge(self, response: requests.Response, body: bytes) -> Union[TokenResponse, Exception]:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        log.debug("token endpoint %s answered HTTP %d (%d bytes)", self.target.login_url, status, len(body))
        data: object = None
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            data = None
        error_code = ""
        description = ""
        if isinstance(data, dict) and data.get("error"):
            error_code = str(data.get("error") or "")
            description = str(data.get("error_description") or "")
        elif isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("errorCode"):
            # REST-style [{"errorCode","message"}] (e.g. LOGIN_RATE_EXCEEDED from a gateway)
            error_code = str(data[0].get("errorCode"))
            description = str(data[0].get("message", ""))

        if status == 200:
            if not isinstance(data, dict):
                return self._unexpected(status, body, content_type, "not JSON")
            try:
                return TokenResponse.from_json(data)
            except ValueError as exc:  # the reason quotes no token; neither does the body
                return self._unexpected(status, None, content_type, str(exc))

        code = error_code.lower()
        permanent = bool(code) and (
            code.startswith("invalid_")
            or code in _RATE_LIMIT_CODES
            or "login_rate_exceeded" in description.lower()
            or code == "unsupported_grant_type"
        )
        if permanent or (error_code and not _can_retry(response)):
            return error_for(
                error_code, description, status=status, login_url=self.target.login_url,
                username=self.username,
            )
        if _can_retry(response):
            shown = excerpt(body, 120)  # cut first, then masked: linear in 120, not in the body
            cause = f"HTTP {status}" + (f": {shown}" if shown else "")
            return _Transient(cause, retry_after(response.headers.get("Retry-After")))
        if 300 <= status < 400:
            location = excerpt(response.headers.get("Location", ""), 200)
            return self._unexpected(status, body, content_type, f"a redirect to {location or '(no Location)'}")
        return self._unexpected(status, body, content_type, "not Salesforce's error JSON")

    def _unexpected(self, status: int, body: Optional[bytes], content_type: str, reason: str) -> AuthenticationError:
        return unexpected_response(
            status,
            body,
            login_url=self.target.login_url,
            username=self.username,
            reason=reason,
            content_type=content_type.split(";", 1)[0].strip(),
            show_body=body is not None,
        )

    def _tls_hint(self) -> str:
        if isinstance(self.verify, str):
            using = f"the CA bundle {self.verify!r} (verify= / SF_CA_BUNDLE)"
        else:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            using = f"REQUESTS_CA_BUNDLE={bundle!r}" if bundle else "the default CA bundle (certifi)"
        return (
            f"the TLS certificate of {self.target.login_url} could not be verified with {using}: "
            "if the server (or a TLS-inspecting proxy) uses a private CA, pass its PEM file as "
            "verify='/path/to/ca.pem' (SF_CA_BUNDLE, --ca-bundle); otherwise check the host name "
            "in domain= / login_url="
        )


def _parse_key(text: Union[str, bytes]) -> rsa.RSAPrivateKey:
    """Parse PEM text; on failure the text is gone from this frame before the error
    leaves it."""
    try:
        return load_private_key(private_key=text)
    except PrivateKeyError:
        del text
        raise


def _clean_exception(exc: BaseException) -> BaseException:
    """The exception without its traceback and without the prepared request (whose body
    held the assertion), keeping the message and type; likewise every exception it
    carries (its cause, context and arguments: urllib3's errors inside requests')."""
    seen: List[BaseException] = []
    todo: List[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is done for done in seen):
            continue
        seen.append(current)
        current.__traceback__ = None
        if isinstance(current, requests.exceptions.RequestException):
            current.request = None
            current.response = None
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return exc


_ID_RE = re.compile(r"/id/([A-Za-z0-9]{15,18})/([A-Za-z0-9]{15,18})/?$")
