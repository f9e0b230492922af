"""The token POST (:class:`TokenClient`): sign an assertion, exchange it for a
:class:`TokenResponse`, retry transient failures, and raise a specific exception for every
answer Salesforce gives. Where to log in is :mod:`.target`'s :func:`resolve_login`.

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

import dataclasses
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .._internal.backoff import backoff_delays, retry_after
from .._internal.fork import ProcessLocal
from .._internal.redact import excerpt, get_logger, looks_like_jwt, mask_token
from .._internal.urls import is_https_origin
from ..errors import (
    AudienceInvalidError, AuthenticationError, ConfigurationError, PrivateKeyError, TokenEndpointUnavailable,
    error_for, unexpected_response,
)
from .assertion import build_claims, sign_assertion
from .target import LOGIN_AUDIENCE, TEST_AUDIENCE, LoginTarget

__all__ = ["TokenResponse", "TokenClient", "GRANT_TYPE"]

log = get_logger("sfjwt_ext.exchange")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_ID_RE = re.compile(r"/id/([A-Za-z0-9]{15,18})/([A-Za-z0-9]{15,18})/?$")


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
        match = _ID_RE.search(self.id)
        if match:
            object.__setattr__(self, "org_id", self.org_id or match.group(1))
            object.__setattr__(self, "user_id", self.user_id or match.group(2))

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["access_token"] = mask_token(self.access_token)
        return f"TokenResponse({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    __str__ = __repr__

    @classmethod
    def from_json(cls, data: Mapping[str, object], *, issued_at: Optional[float] = None) -> "TokenResponse":
        """From the token endpoint's JSON. Raises ValueError (whose text never quotes a
        token) unless ``access_token`` is a non-empty string and ``instance_url`` an https
        URL; ``id``, ``scope`` and ``token_type`` are kept only when they are strings."""
        problem = _token_json_problem(data)
        if problem:
            raise ValueError(problem)
        texts = {name: value for name in _TEXT_FIELDS if isinstance(value := data.get(name), str) and value}
        texts["instance_url"] = texts["instance_url"].rstrip("/")  # both are checked strings
        return cls(**texts, issued_at=time.time() if issued_at is None else issued_at)


#: The fields of a token answer kept when they are non-empty strings (else the default).
_TEXT_FIELDS = ("access_token", "instance_url", "id", "scope", "token_type", "token_format")


_JSON_KINDS = ((str, "a blank string"), (bool, "true/false"), ((int, float), "a number"), (list, "a list"),
               (dict, "an object"))


def _json_kind(value: object) -> str:
    """What a JSON value is, without quoting it (it may be a token). Only what
    :func:`_token_json_problem` refuses comes here: never null or "" (those are missing),
    never a string with text."""
    return next((name for types, name in _JSON_KINDS if isinstance(value, types)), type(value).__name__)


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


TimeoutType = Union[None, float, Tuple[Optional[float], Optional[float]]]

#: How much of an answer is read: a token answer is under 2 KB, an error page a few KB.
MAX_BODY_BYTES = 64 * 1024

_PERMANENT_CODES = {"rate_limit_exceeded", "login_rate_exceeded", "unsupported_grant_type"}
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


def _can_retry(outcome: Union[requests.Response, BaseException]) -> bool:
    """Whether a failed attempt may be tried again: a 408/425/429/5xx answer (the caller
    has ruled out Salesforce's permanent error codes), a timeout, a dropped or refused
    connection, a TLS failure other than an unverifiable certificate."""
    if isinstance(outcome, requests.Response):
        return outcome.status_code in _RETRY_STATUSES or outcome.status_code >= 500
    if isinstance(outcome, requests.exceptions.SSLError):
        return not any(marker in str(outcome).lower() for marker in _CERT_ERROR_MARKERS)
    return isinstance(outcome, _RETRY_ERRORS)


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """At most ``MAX_BODY_BYTES`` of the (streamed) answer, read before ``deadline``."""
    chunks: List[bytes] = []
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        if sum(map(len, chunks)) > MAX_BODY_BYTES or time.monotonic() > deadline:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _error_of(body: bytes) -> Tuple[object, str, str]:
    """The answer's JSON (None when it is not JSON), its error code and description: OAuth's
    ``{"error", "error_description"}``, or REST's ``[{"errorCode", "message"}]`` (e.g.
    LOGIN_RATE_EXCEEDED from a gateway)."""
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        return None, "", ""
    if isinstance(data, dict) and data.get("error"):
        return data, str(data.get("error")), str(data.get("error_description") or "")
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("errorCode"):
        return data, str(data[0].get("errorCode")), str(data[0].get("message", ""))
    return data, "", ""


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
        self.session.proxies.update(proxies)
        self.session.headers.update({"Accept": "application/json"})


class TokenClient:
    """Signs an assertion and exchanges it for an access token.

    Owns a plain :class:`requests.Session` (never the refreshing one), one per process
    (a forked child makes its own). ``key`` is an RSA key object
    (:func:`~sfjwt_ext.auth.keys.load_private_key`). ``verify`` (True, False or a CA bundle
    path) and ``proxies`` are passed on every request, so ``REQUESTS_CA_BUNDLE`` in the
    environment cannot override a private CA. ``timeout`` is ``(connect, read)`` seconds or
    one number; every request also ends within the total ``total_budget``. Up to
    ``max_attempts`` requests for transient failures, with exponential backoff (base
    ``backoff`` seconds, at most ``MAX_BACKOFF``) and full jitter. Thread-safe.
    :meth:`close` closes the idle connections; a closed client still works (the next fetch
    opens a new connection).
    """

    def __init__(
        self, *, username: str, consumer_key: str, key: rsa.RSAPrivateKey, target: LoginTarget,
        verify: Union[bool, str] = True, proxies: Optional[Mapping[str, str]] = None, timeout: TimeoutType = (10, 30),
        total_budget: float = 60.0, max_attempts: int = 3, backoff: float = 0.5, lifetime: int = 180,
    ) -> None:
        if not username:
            raise ConfigurationError("username= (SF_USERNAME) is required for the JWT login")
        if not consumer_key:
            raise ConfigurationError("consumer_key= (SF_CONSUMER_KEY) is required for the JWT login")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PrivateKeyError(
                f"TokenClient needs an RSA private key object, not {type(key).__name__}: "
                "load it with sfjwt_ext.auth.keys.load_private_key()"
            )
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts={max_attempts!r} must be at least 1")
        if total_budget <= 0:
            raise ConfigurationError(f"total_budget={total_budget!r} must be a positive number of seconds")
        self.username, self.consumer_key, self.target = username, consumer_key, target
        self.verify = verify
        self.proxies: Dict[str, str] = dict(proxies or {})
        self.timeout = timeout
        self.total_budget, self.max_attempts, self.backoff = float(total_budget), int(max_attempts), float(backoff)
        self.lifetime = lifetime
        self._key = key
        self._audience = target.audience  # changes once if Salesforce refused the derived one
        self._requests_made = 0
        self._pool: ProcessLocal[_Pool] = ProcessLocal(lambda: _Pool(self.verify, self.proxies))

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

    def __repr__(self) -> str:
        return (
            f"TokenClient(username={self.username!r}, token_url={self.target.token_url!r}, "
            f"audience={self._audience!r}, requests_made={self.requests_made})"
        )

    def fetch(self) -> TokenResponse:
        """Sign a fresh assertion, POST it and return the token; retries transient failures.
        When Salesforce refuses a derived login/test ``aud``, the other one is tried once,
        right away (that request is no retry).

        Raises an :class:`AuthenticationError` subclass for Salesforce's refusals (at once,
        no retry) and :class:`TokenEndpointUnavailable` when every attempt failed.
        """
        started = time.monotonic()
        deadline = started + self.total_budget
        delays = backoff_delays(self.backoff)
        attempts, failure, switched = 0, None, False
        while attempts < self.max_attempts:
            if (failure is not None and not self._wait(failure, next(delays), deadline, attempts)
                    or time.monotonic() >= deadline):
                break
            attempts += 1
            audience = self._audience
            try:
                return self._logged(self._attempt(audience, deadline, attempts), started)
            except _Transient as exc:
                failure = exc
            except AudienceInvalidError:
                if switched or not self._switch_audience(audience):
                    raise
                switched, attempts, failure = True, attempts - 1, None
        cause = failure.cause if failure else f"total time budget of {self.total_budget:g} s exhausted"
        raise TokenEndpointUnavailable(self.target.login_url, attempts, cause)

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
        time.sleep(wait)
        return True

    def _switch_audience(self, refused: str) -> bool:
        """After Salesforce refused ``refused``, a derived login/test ``aud``: sign the other
        one from now on. False when there is no other to try."""
        others = {LOGIN_AUDIENCE: TEST_AUDIENCE, TEST_AUDIENCE: LOGIN_AUDIENCE}
        kinds = ("login", "test", "my_domain", "sandbox_my_domain")
        if not self.target.audience_derived or self.target.host_kind not in kinds or refused not in others:
            return False
        log.warning(
            "Salesforce refused aud=%s for %s at %s (audience is invalid); trying aud=%s "
            "once. Set audience= (SF_AUDIENCE) to skip this extra login.",
            refused, self.username, self.target.login_url, others[refused],
        )
        with self._pool.get().lock:
            if self._audience == refused:
                self._audience = others[refused]
        return True

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

    def _attempt(self, audience: str, deadline: float, attempt: int) -> TokenResponse:
        """One POST and its answer: the token, or the exception for it (:class:`_Transient`
        when it may be retried)."""
        log.debug(
            "POST %s (attempt %d/%d, aud %s, user %s)",
            self.target.token_url, attempt, self.max_attempts, audience, self.username,
        )
        with self._pool.get().lock:
            self._requests_made += 1
        try:
            with self._post(audience, deadline) as response:
                return self._handle(response, _read_body(response, deadline))
        except requests.exceptions.RequestException as exc:
            raise self._failure(exc, attempt) from None

    def _post(self, audience: str, deadline: float) -> requests.Response:
        """Sign an assertion for ``audience`` and POST it (streamed, no redirects). The
        assertion exists only in this frame's form, which is emptied before anything
        returns or raises, and the sent request's body is cleared: no frame, traceback or
        response keeps it."""
        claims = build_claims(consumer_key=self.consumer_key, username=self.username, audience=audience,
                              lifetime=self.lifetime)
        form = {"grant_type": GRANT_TYPE, "assertion": sign_assertion(self._key, claims)}
        remaining = deadline - time.monotonic()
        pair = self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        connect, read = (max(0.001, min(remaining if t is None else float(t), remaining)) for t in pair)
        try:
            response = self.session.post(
                self.target.token_url, data=form, timeout=(connect, read), verify=self.verify,
                proxies=self.proxies or None, allow_redirects=False, stream=True,
            )
        finally:
            form.clear()
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
        log.debug("token endpoint %s answered HTTP %d (%d bytes)", self.target.login_url, status, len(body))
        data, error_code, description = _error_of(body)
        if status == 200:
            if not isinstance(data, dict):
                return self._unexpected(response, body, "not JSON")
            try:
                return TokenResponse.from_json(data)
            except ValueError as exc:  # the reason quotes no token; neither does the body
                return self._unexpected(response, None, str(exc))
        code = error_code.lower()
        retry = _can_retry(response) and not (
            code.startswith("invalid_") or code in _PERMANENT_CODES or "login_rate_exceeded" in description.lower()
        )
        if error_code and not retry:
            return error_for(
                error_code, description, status=status, login_url=self.target.login_url, username=self.username
            )
        if retry:
            shown = excerpt(body, 120)  # cut first, then masked: linear in 120, not in the body
            cause = f"HTTP {status}" + (f": {shown}" if shown else "")
            return _Transient(cause, retry_after(response.headers.get("Retry-After")))
        reason = "not Salesforce's error JSON"
        if 300 <= status < 400:
            reason = f"a redirect to {excerpt(response.headers.get('Location', ''), 200) or '(no Location)'}"
        return self._unexpected(response, body, reason)

    def _unexpected(self, response: requests.Response, body: Optional[bytes], reason: str) -> AuthenticationError:
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return unexpected_response(
            response.status_code, body, login_url=self.target.login_url, username=self.username,
            reason=reason, content_type=content_type, show_body=body is not None,
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
