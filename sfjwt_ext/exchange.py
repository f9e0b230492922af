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
* Transient failures (5xx, 429, timeouts, dropped connections) are retried, up to
  ``max_attempts`` requests in all, with exponential backoff and full jitter, inside a total
  time budget. Every ``invalid_*`` answer and the login rate limit fail at once.
* A TLS certificate that cannot be verified is not retried: it raises
  :class:`~sfjwt_ext.errors.TokenEndpointUnavailable` (``attempts=1``, ``last_cause`` the
  ``requests.exceptions.SSLError``) whose hint names ``verify=`` / ``SF_CA_BUNDLE``.
"""
from __future__ import annotations

import ipaddress
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from ._redact import get_logger, mask_token, redact
from .assertion import build_claims, sign_assertion
from .errors import (
    AudienceInvalidError,
    AuthenticationError,
    ConfigurationError,
    PrivateKeyError,
    TokenEndpointUnavailable,
    error_for,
    unexpected_response,
)

__all__ = [
    "LoginTarget",
    "TokenResponse",
    "TokenClient",
    "resolve_login",
    "LOGIN_AUDIENCE",
    "TEST_AUDIENCE",
    "TOKEN_PATH",
    "GRANT_TYPE",
]

log = get_logger("sfjwt_ext.exchange")

LOGIN_AUDIENCE = "https://login.salesforce.com"
TEST_AUDIENCE = "https://test.salesforce.com"
TOKEN_PATH = "/services/oauth2/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_DOMAIN = "login"

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*$")


# ---------------------------------------------------------------------------------------
# resolve_login
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoginTarget:
    """Where the token POST goes (``token_url``) and the ``aud`` claim to sign.

    ``host_kind`` is ``"login"``, ``"test"``, ``"my_domain"``, ``"sandbox_my_domain"`` or
    ``"other"``; ``audience_derived`` is False when the caller chose ``audience``.
    """

    token_url: str
    audience: str
    host_kind: str
    audience_derived: bool = True

    @property
    def login_url(self) -> str:
        """``scheme://host[:port]`` of the token endpoint."""
        if self.token_url.endswith(TOKEN_PATH):
            return self.token_url[: -len(TOKEN_PATH)]
        parts = urlsplit(self.token_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        return (urlsplit(self.token_url).hostname or "").lower()


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_kind(host: str) -> str:
    host = host.lower()
    if host == "login.salesforce.com":
        return "login"
    if host == "test.salesforce.com":
        return "test"
    if host.endswith(".my.salesforce.com"):
        first = host.split(".", 1)[0]
        if host.endswith(".sandbox.my.salesforce.com") or "--" in first:
            return "sandbox_my_domain"
        return "my_domain"
    return "other"


def _derived_audience(kind: str, origin: str) -> str:
    if kind in ("login", "my_domain"):
        return LOGIN_AUDIENCE
    if kind in ("test", "sandbox_my_domain"):
        return TEST_AUDIENCE
    return origin


def _suggest_domain(host: str) -> str:
    """The shortest ``domain=`` value for ``host`` (for error messages)."""
    host = host.lower()
    if host in ("login.salesforce.com", "test.salesforce.com"):
        return host.split(".", 1)[0]
    if host.endswith(".my.salesforce.com") and not host.endswith(".sandbox.my.salesforce.com"):
        return host[: -len(".salesforce.com")]
    return host


def _parse_url(value: str, argument: str) -> Tuple[str, str, str]:
    """(scheme, host, origin) of a login URL; refuses paths, queries and bad schemes."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{argument}={value!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not host:
        raise ConfigurationError(
            f"{argument}={value!r} has no host name: use e.g. {argument}='https://acme.my.salesforce.com'"
        )
    if parts.username or parts.password:
        raise ConfigurationError(f"{argument}=... must not contain a user name or password")
    netloc_host = f"[{host}]" if ":" in host else host
    origin = f"{scheme}://{netloc_host}" + (f":{port}" if port is not None else "")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{argument}={value!r} has a path ({parts.path or '?' + parts.query!s}): give only the "
            f"scheme and host, e.g. {argument}={origin!r} (the token path "
            f"{TOKEN_PATH} is added for you)"
        )
    if scheme == "https":
        pass
    elif scheme == "http" and _is_loopback(host):
        pass
    elif scheme == "http":
        raise ConfigurationError(
            f"{argument}={value!r} uses plain http: the token exchange needs https:// "
            f"(http is allowed only for 127.0.0.1, localhost and [::1]); use "
            f"{argument}={'https://' + netloc_host + (f':{port}' if port else '')!r}"
        )
    else:
        raise ConfigurationError(
            f"{argument}={value!r}: only https:// URLs are supported (http:// only for "
            f"127.0.0.1, localhost and [::1])"
        )
    return scheme, host.lower(), origin


def _target_from_url(value: str, argument: str) -> Tuple[str, str, str]:
    """(kind, origin, token_url) for a URL-shaped value."""
    scheme, host, origin = _parse_url(value, argument)
    kind = _host_kind(host) if scheme == "https" else "other"
    if kind != "other" and urlsplit(value).port not in (None, 443):
        kind = "other"
    return kind, origin, origin + TOKEN_PATH


def _target_from_domain(domain: str) -> Tuple[str, str, str]:
    value = domain.strip()
    if not value:
        raise ConfigurationError(
            "domain='' is empty: use domain='login' (production), domain='test' (sandbox) or "
            "your My Domain, e.g. domain='acme.my' (SF_DOMAIN)"
        )
    if "://" in value:
        return _target_from_url(value, "domain")
    if "/" in value:
        host_part, _, rest = value.partition("/")
        suggestion = _suggest_domain(host_part) if host_part else "login"
        what = "a trailing slash" if rest.strip("/") == "" else f"a path ('/{rest}')"
        raise ConfigurationError(
            f"domain={domain!r} has {what}: use domain={suggestion!r} (a host name only; "
            f"SF_DOMAIN likewise)"
        )
    host, sep, port = value.partition(":")
    if sep and not port.isdigit():
        raise ConfigurationError(f"domain={domain!r} is not a host name: use e.g. domain='acme.my'")
    if "." not in host or host.lower().endswith(".my"):
        host = host + ".salesforce.com"
    if not _HOST_RE.match(host):
        raise ConfigurationError(
            f"domain={domain!r} is not a valid host name: use 'login', 'test', 'acme.my', a full "
            f"host name such as 'acme.my.salesforce.com', or login_url='https://...'"
        )
    return _target_from_url(f"https://{host}" + (f":{port}" if sep else ""), "domain")


def resolve_login(
    domain: Optional[str] = None,
    login_url: Optional[str] = None,
    audience: Optional[str] = None,
) -> LoginTarget:
    """The token URL and ``aud`` for ``domain`` / ``login_url`` / ``audience`` (see the
    module docstring). Raises :class:`ConfigurationError` naming the bad value."""
    if login_url is not None and str(login_url).strip():
        value = str(login_url).strip()
        if "://" not in value:
            raise ConfigurationError(
                f"login_url={login_url!r} has no scheme: use login_url='https://{value.rstrip('/')}' "
                f"(SF_LOGIN_URL), or pass the host as domain="
            )
        kind, origin, token_url = _target_from_url(value, "login_url")
    else:
        kind, origin, token_url = _target_from_domain(DEFAULT_DOMAIN if domain is None else str(domain))
    if audience is not None and str(audience).strip():
        aud = str(audience).strip()
        if "://" not in aud:
            raise ConfigurationError(
                f"audience={audience!r} must be a URL such as 'https://login.salesforce.com', "
                f"'https://test.salesforce.com' or an Experience Cloud site URL (SF_AUDIENCE)"
            )
        return LoginTarget(token_url=token_url, audience=aud, host_kind=kind, audience_derived=False)
    return LoginTarget(
        token_url=token_url,
        audience=_derived_audience(kind, origin),
        host_kind=kind,
        audience_derived=True,
    )


# ---------------------------------------------------------------------------------------
# TokenResponse
# ---------------------------------------------------------------------------------------
_ID_RE = re.compile(r"/id/([A-Za-z0-9]{15,18})/([A-Za-z0-9]{15,18})/?$")


@dataclass(frozen=True)
class TokenResponse:
    """A successful token answer. ``repr`` masks the access token; ``org_id`` and
    ``user_id`` come from the identity URL ``id`` (``.../id/<orgId>/<userId>``)."""

    access_token: str
    instance_url: str
    id: str = ""
    scope: str = ""
    token_type: str = "Bearer"
    issued_at: float = field(default_factory=time.time)
    org_id: str = ""
    user_id: str = ""

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
            f"org_id={self.org_id!r}, user_id={self.user_id!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, issued_at: Optional[float] = None) -> "TokenResponse":
        """From the token endpoint's JSON (which must contain access_token and instance_url)."""
        return cls(
            access_token=str(data["access_token"]),
            instance_url=str(data["instance_url"]).rstrip("/"),
            id=str(data.get("id") or ""),
            scope=str(data.get("scope") or ""),
            token_type=str(data.get("token_type") or "Bearer"),
            issued_at=time.time() if issued_at is None else issued_at,
        )


# ---------------------------------------------------------------------------------------
# TokenClient
# ---------------------------------------------------------------------------------------
TimeoutType = Union[None, float, Tuple[Optional[float], Optional[float]]]

_RATE_LIMIT_CODES = {"rate_limit_exceeded", "login_rate_exceeded"}
_RETRY_STATUSES = {408, 429}
_CERT_ERROR_MARKERS = ("certificate verify failed", "certificate_verify_failed", "hostname", "self signed", "self-signed", "unable to get local issuer")


def _is_cert_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _CERT_ERROR_MARKERS)


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class _Transient(Exception):
    """An attempt that may be retried (internal)."""

    def __init__(self, cause: Any, retry_after: Optional[float] = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


class TokenClient:
    """Signs an assertion and exchanges it for an access token.

    Owns a plain :class:`requests.Session` (never the refreshing one). ``verify`` (True,
    False or a CA bundle path) and ``proxies`` are passed on every request, so
    ``REQUESTS_CA_BUNDLE`` in the environment cannot override a private CA. ``timeout`` is
    ``(connect, read)`` seconds or one number; every request also ends within the total
    ``total_budget``. Up to ``max_attempts`` requests for transient failures, with
    exponential backoff (base ``backoff`` seconds) and full jitter. Thread-safe.
    """

    def __init__(
        self,
        *,
        username: str,
        consumer_key: str,
        key: rsa.RSAPrivateKey,
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
        if not isinstance(key, rsa.RSAPrivateKey):
            if isinstance(key, (str, bytes)):
                from .keys import load_private_key  # parse once, here

                key = load_private_key(private_key=key)
            else:
                raise PrivateKeyError(
                    f"TokenClient needs an RSA private key object, not {type(key).__name__}: "
                    "load it with sfjwt_ext.keys.load_private_key()"
                )
        if not isinstance(target, LoginTarget):
            raise ConfigurationError("target= must be a LoginTarget from sfjwt_ext.exchange.resolve_login()")
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
        self._audience_switched = False
        self._lock = threading.Lock()
        self._requests_made = 0
        self._session = requests.Session()
        self._session.verify = self.verify
        if self.proxies:
            self._session.proxies.update(self.proxies)
        self._session.headers.update({"Accept": "application/json"})

    # -- public ---------------------------------------------------------------------------
    @property
    def requests_made(self) -> int:
        """How many token POSTs this client has sent (for tests and diagnostics)."""
        with self._lock:
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
        return self._session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "TokenClient":
        return self

    def __exit__(self, *exc: Any) -> None:
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
        last_cause: Any = None
        audience_retry_used = False
        while True:
            if attempts >= self.max_attempts:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                last_cause = last_cause or f"total time budget of {self.total_budget:g} s exhausted"
                break
            attempts += 1
            audience = self._audience
            try:
                token = self._attempt(audience, remaining, attempts)
            except AudienceInvalidError as exc:
                other = self._other_audience(audience)
                if other is None or audience_retry_used:
                    raise
                audience_retry_used = True
                attempts -= 1  # the one extra try does not use up a retry
                log.warning(
                    "Salesforce refused aud=%s for %s at %s (audience is invalid); trying aud=%s "
                    "once. Set audience= (SF_AUDIENCE) to skip this extra login.",
                    audience, self.username, self.target.login_url, other,
                )
                with self._lock:
                    if self._audience == audience:
                        self._audience = other
                continue
            except _Transient as exc:
                last_cause = exc.cause
                if attempts >= self.max_attempts:
                    break
                delay = exc.retry_after
                if delay is None:
                    delay = random.uniform(0.0, self.backoff * (2 ** (attempts - 1)))
                remaining = deadline - time.monotonic()
                if delay >= remaining:
                    log.info(
                        "token endpoint %s: not retrying (wait %.2f s exceeds the remaining "
                        "budget of %.2f s)", self.target.login_url, delay, max(0.0, remaining),
                    )
                    break
                log.info(
                    "token endpoint %s failed (%s); retry %d/%d in %.2f s",
                    self.target.login_url, _describe(exc.cause), attempts + 1, self.max_attempts, delay,
                )
                if delay > 0:
                    time.sleep(delay)
                continue
            if audience != self.target.audience:
                log.warning(
                    "JWT login of %s succeeded with aud=%s (not %s): set audience=%r "
                    "(SF_AUDIENCE) to avoid the extra login",
                    self.username, audience, self.target.audience, audience,
                )
            log.info(
                "JWT login of %s at %s: org %s, instance %s, %.0f ms",
                self.username, self.target.login_url, token.org_id or "?", token.instance_url,
                (time.monotonic() - started) * 1000.0,
            )
            return token
        raise TokenEndpointUnavailable(self.target.login_url, attempts, last_cause)

    # -- internals -----------------------------------------------------------------------
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

    def _attempt(self, audience: str, remaining: float, attempt: int) -> TokenResponse:
        claims = build_claims(
            consumer_key=self.consumer_key,
            username=self.username,
            audience=audience,
            lifetime=self.lifetime,
        )
        assertion = sign_assertion(self._key, claims)
        url = self.target.token_url
        log.debug("POST %s (attempt %d/%d, aud %s, user %s)", url, attempt, self.max_attempts, audience, self.username)
        with self._lock:
            self._requests_made += 1
        try:
            response = self._session.post(
                url,
                data={"grant_type": GRANT_TYPE, "assertion": assertion},
                timeout=self._request_timeout(remaining),
                verify=self.verify,
                proxies=self.proxies or None,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            if _is_cert_error(exc):
                raise TokenEndpointUnavailable(
                    self.target.login_url, attempt, _clean_exception(exc), hint=self._tls_hint()
                ) from None
            raise _Transient(_clean_exception(exc)) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise _Transient(_clean_exception(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise TokenEndpointUnavailable(self.target.login_url, attempt, _clean_exception(exc)) from None
        try:
            return self._handle(response)
        finally:
            response.close()

    def _handle(self, response: requests.Response) -> TokenResponse:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        try:
            body = response.content
        except requests.exceptions.RequestException as exc:
            raise _Transient(_clean_exception(exc)) from None
        log.debug("token endpoint %s answered HTTP %d (%d bytes)", self.target.login_url, status, len(body))
        data: Any = None
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            data = None
        error_code = ""
        if isinstance(data, dict) and data.get("error"):
            error_code = str(data.get("error") or "")
        elif isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("errorCode"):
            # REST-style [{"errorCode","message"}] (e.g. LOGIN_RATE_EXCEEDED from a gateway)
            data = {"error": data[0].get("errorCode"), "error_description": data[0].get("message", "")}
            error_code = str(data["error"])

        if status == 200:
            if not isinstance(data, dict):
                raise self._unexpected(status, body, content_type, "not JSON")
            missing = [name for name in ("access_token", "instance_url") if not data.get(name)]
            if missing:
                raise self._unexpected(
                    status, body, content_type, f"JSON without {' and '.join(missing)}"
                )
            try:
                return TokenResponse.from_json(data)
            except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
                raise self._unexpected(status, body, content_type, f"unusable JSON ({exc})") from None

        description = str(data.get("error_description") or "") if isinstance(data, dict) else ""
        permanent = error_code and (
            error_code.lower().startswith("invalid_")
            or error_code.lower() in _RATE_LIMIT_CODES
            or "login_rate_exceeded" in description.lower()
            or error_code.lower() == "unsupported_grant_type"
        )
        transient_status = status in _RETRY_STATUSES or status >= 500
        if permanent or (error_code and not transient_status):
            raise error_for(
                error_code,
                description,
                status=status,
                login_url=self.target.login_url,
                username=self.username,
            )
        if transient_status:
            excerpt = " ".join(redact(body.decode("utf-8", "replace")).split())[:120]
            cause = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
            raise _Transient(cause, _retry_after(response.headers.get("Retry-After")))
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise self._unexpected(
                status, body, content_type, f"a redirect to {location or '(no Location)'}"
            )
        raise self._unexpected(status, body, content_type, "not Salesforce's error JSON")

    def _unexpected(self, status: int, body: bytes, content_type: str, reason: str) -> AuthenticationError:
        return unexpected_response(
            status,
            body,
            login_url=self.target.login_url,
            username=self.username,
            reason=reason,
            content_type=content_type.split(";", 1)[0].strip(),
        )

    def _tls_hint(self) -> str:
        if isinstance(self.verify, str):
            using = f"the CA bundle {self.verify!r} (verify= / SF_CA_BUNDLE)"
        else:
            import os

            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            using = f"REQUESTS_CA_BUNDLE={bundle!r}" if bundle else "the default CA bundle (certifi)"
        return (
            f"the TLS certificate of {self.target.login_url} could not be verified with {using}: "
            "if the server (or a TLS-inspecting proxy) uses a private CA, pass its PEM file as "
            "verify='/path/to/ca.pem' (SF_CA_BUNDLE, --ca-bundle); otherwise check the host name "
            "in domain= / login_url="
        )


def _describe(cause: Any) -> str:
    return redact(str(cause))[:200]


def _clean_exception(exc: BaseException) -> BaseException:
    """The exception without its traceback and without the prepared request (whose body
    holds the assertion), keeping the message and type."""
    exc.__traceback__ = None
    if isinstance(exc, requests.exceptions.RequestException):
        exc.request = None
        exc.response = None
    return exc
