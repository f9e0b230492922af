"""The exception tree of sfjwt-ext, with the fix for each error Salesforce returns.

Every exception says what went wrong *and* what to change where (which argument, which
``SF_*`` environment variable, which Salesforce Setup screen). Nothing secret (key,
passphrase, assertion, access token) is ever put into a message: bodies quoted from the
token endpoint go through :func:`sfjwt_ext._internal.redact.excerpt` first (cut, then masked).

:class:`AuthenticationError` is also simple-salesforce's
:class:`~simple_salesforce.exceptions.SalesforceAuthenticationFailed`, so code that already
catches that keeps working.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Tuple, Type, Union

from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from ._internal.redact import excerpt
from ._internal.urls import host_of

__all__ = [
    "SfJwtError", "ConfigurationError", "PrivateKeyError", "KeyFilePermissionWarning", "AuthenticationError",
    "ConsumerNotApprovedError", "AppAccessError", "InvalidClientIdError", "AppNotInstalledError",
    "AudienceInvalidError", "InvalidAssertionError", "AssertionExpiredError", "InactiveUserError", "UnknownUserError",
    "LoginRestrictedError", "LoginRateExceededError", "UnsupportedGrantTypeError", "TokenEndpointUnavailable",
    "SessionRefusedError", "RequestNotReplayable", "SoapJwtTokenError", "error_for", "unexpected_response",
]

#: How many characters of an unexpected response body go into a message.
BODY_EXCERPT_CHARS = 200
#: ... of the last cause of a TokenEndpointUnavailable, and of Salesforce's description.
CAUSE_EXCERPT_CHARS = 300
DESCRIPTION_EXCERPT_CHARS = 1000


class SfJwtError(Exception):
    """Base class of every error raised by sfjwt-ext."""


class ConfigurationError(SfJwtError, ValueError):
    """A setting is missing, contradictory or malformed; the message names the argument
    and the ``SF_*`` environment variable to change."""


class PrivateKeyError(SfJwtError):
    """The private key could not be used; the message says what was found and what to do.
    It never contains key material."""


class KeyFilePermissionWarning(UserWarning):
    """A private key or profile file is readable by group or others (``chmod 600`` it)."""


class AuthenticationError(SfJwtError, SalesforceAuthenticationFailed):
    """Salesforce's token endpoint refused the JWT login.

    Attributes: ``error`` and ``description`` (Salesforce's ``error`` /
    ``error_description``), ``status`` (the real HTTP status, or None), ``login_url``,
    ``username`` and ``hint`` (what to change, and where).
    """

    #: the fix; formatted with ``username``, ``login_url`` and ``host``
    default_hint = (
        "look up the detailed reason in the org: Setup > Users > {username} > Login History, "
        "and check the app: Setup > External Client App Manager > the app (an existing "
        "Connected App: Setup > App Manager); the error code and description above come from "
        "Salesforce"
    )

    error: str
    description: str
    status: Optional[int]  # type: ignore[assignment]  # the real HTTP status; None before any answer
    login_url: str
    username: str
    hint: str

    def __init__(
        self, error: str, description: str = "", *, status: Optional[int] = None, login_url: str = "",
        username: str = "", hint: Optional[str] = None,
    ) -> None:
        self.error = "" if error is None else str(error)
        self.description = "" if description is None else str(description)
        self.login_url = login_url or ""
        self.username = username or ""
        self.hint = hint if hint is not None else self.default_hint.format(
            username=self.username or "the user",
            login_url=self.login_url or "the login host",
            host=host_of(self.login_url) if self.login_url else "the login host",
        )
        who = self.username or "(no username)"
        where = self.login_url or "(no login URL)"
        said = self.description.rstrip(".") if self.description else "(no description)"
        http = f" (HTTP {status})" if status not in (None, 400) else ""
        message = f"Salesforce refused the JWT login of {who} at {where}{http}: {self.error}: {said}. Fix: {self.hint}"
        SalesforceAuthenticationFailed.__init__(self, self.error, message)
        # SalesforceAuthenticationFailed sets status=401 and url='authentication_endpoint':
        # keep the real ones.
        self.status = status
        self.url = self.login_url or self.url
        self.args = (message,)

    __str__ = Exception.__str__  # the message in args, not SalesforceAuthenticationFailed's code + message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error={self.error!r}, description={self.description!r}, "
            f"status={self.status!r}, login_url={self.login_url!r}, username={self.username!r})"
        )

    def __reduce__(self) -> Tuple[Any, ...]:
        state: Dict[str, Any] = {"status": self.status, "login_url": self.login_url, "username": self.username}
        return functools.partial(type(self), hint=self.hint, **state), (self.error, self.description)


_CONNECTED_APP_POLICIES = (
    "An existing Connected App works the same way (Setup > App Manager > the app > Manage > "
    "Edit Policies / Manage Profiles / Manage Permission Sets)."
)

_WRONG_HOST = (
    "Also check the login host: a sandbox user must log in at test.salesforce.com "
    "(domain='test') or at the sandbox's My Domain, not at login.salesforce.com, and a "
    "production user the other way round; GovCloud orgs need their own My Domain host "
    "(login_url=)."
)


class ConsumerNotApprovedError(AuthenticationError):
    """invalid_grant / user hasn't approved this consumer."""

    default_hint = (
        "in Setup > External Client App Manager, open the app > Policies tab > Edit Policies: "
        "under OAuth Policies set Permitted Users = \"Admin approved users are "
        "pre-authorized\" and select {username}'s profile (Profiles) or a permission set "
        "{username} has (Permission Sets), then save. " + _CONNECTED_APP_POLICIES + " Changes "
        "can take up to ~10 minutes to apply. " + _WRONG_HOST
    )


class AppAccessError(AuthenticationError):
    """invalid_app_access / user is not admin approved to access this app."""

    default_hint = (
        "assign {username}'s profile or a permission set {username} has to the app: Setup > "
        "External Client App Manager > the app > Policies tab > Edit Policies > Profiles / "
        "Permission Sets (with Permitted Users \"Admin approved users are pre-authorized\"). "
        + _CONNECTED_APP_POLICIES
    )


class InvalidClientIdError(AuthenticationError):
    """invalid_client_id / client identifier invalid."""

    default_hint = (
        "check the consumer key (consumer_key= / SF_CONSUMER_KEY / --consumer-key): copy it "
        "from Setup > External Client App Manager > the app > Settings tab > OAuth Settings > "
        "Consumer Key and Secret (an existing Connected App: Setup > App Manager > the app > "
        "View > Manage Consumer Details). A new or changed app takes up to ~10 minutes to "
        "apply: wait and try again (sfjwt check). The app must belong to the org behind {host}."
    )


class AppNotInstalledError(InvalidClientIdError):
    """External client app is not installed in this org (an :class:`InvalidClientIdError`:
    the consumer key names no app of this org)."""

    default_hint = (
        "no app with this consumer key is installed in the org behind {host}: either this is "
        "the wrong org (check login_url= / SF_LOGIN_URL / domain= and consumer_key= / "
        "SF_CONSUMER_KEY), or the org is a sandbox that was refreshed (a refresh replaces "
        "its apps with production's). Deploy or install the External Client App in this org "
        "(Setup > External Client App Manager > New External Client App, or a Metadata API "
        "deploy), or run `sfjwt setup --target-org <this org>`, which creates it and writes "
        "the profile; a new app takes up to ~10 minutes to apply"
    )


class AudienceInvalidError(AuthenticationError):
    """invalid_grant / audience is invalid."""

    default_hint = (
        "the aud claim must be https://login.salesforce.com (production, Developer Edition), "
        "https://test.salesforce.com (sandbox) or an Experience Cloud site URL, never the My "
        "Domain URL: remove audience= / SF_AUDIENCE or set it to one of those (the My Domain "
        "host can stay in login_url= / SF_LOGIN_URL)"
    )


class InvalidAssertionError(AuthenticationError):
    """invalid_grant / invalid assertion."""

    default_hint = (
        "the signature does not match the certificate uploaded to the app, or the claims are "
        "malformed: upload the .crt that matches your private key (Setup > External Client "
        "App Manager > the app > Settings tab > OAuth Settings > Edit > Flow Enablement: "
        "Enable JWT Bearer Flow, Upload Files; an existing Connected App: Setup > App Manager "
        "> the app > Edit > 'Use digital signatures'), check that consumer_key= / "
        "SF_CONSUMER_KEY is this app's and that the key file is the right one (sfjwt check "
        "--cert FILE compares them)"
    )


class AssertionExpiredError(AuthenticationError):
    """invalid_grant / expired authorization code or assertion expired."""

    default_hint = (
        "the assertion's exp claim is already in the past for Salesforce: check this machine's "
        "clock and time zone (synchronise it with NTP)"
    )


class InactiveUserError(AuthenticationError):
    """invalid_grant / inactive user or inactive_org."""

    default_hint = (
        "{username} is deactivated or frozen, or the org is locked, closed or expired: "
        "reactivate the user under Setup > Users (or log in as an active user), and check the "
        "org's status"
    )


class UnknownUserError(AuthenticationError):
    """invalid_grant / invalid user."""

    default_hint = (
        "no user named {username} exists in the org behind {host}: check username= / "
        "SF_USERNAME / --username (the full username; sandbox usernames usually end in "
        ".<sandbox name>). " + _WRONG_HOST
    )


class LoginRestrictedError(AuthenticationError):
    """invalid_grant / IP restricted or invalid login hours."""

    default_hint = (
        "the login comes from outside {username}'s allowed IP addresses or Login Hours. JWT "
        "bearer logins always enforce IP restrictions (an app's IP Relaxation policy does not "
        "apply to them): add this machine's public IP address to Setup > Profiles > "
        "{username}'s profile > Login IP Ranges (and check Login Hours there), and check the "
        "org's Setup > Network Access (trusted IP ranges)"
    )


class LoginRateExceededError(AuthenticationError):
    """rate_limit_exceeded / LOGIN_RATE_EXCEEDED."""

    default_hint = (
        "too many logins for {username} (Salesforce allows 3,600 per user per hour): reuse "
        "the token instead of logging in again (connect once per process; connect_jwt caches "
        "by default) and wait before trying again: retrying now makes it worse"
    )


class UnsupportedGrantTypeError(AuthenticationError):
    """unsupported_grant_type."""

    default_hint = (
        "the server at {host} did not accept the JWT bearer grant: check that login_url= / "
        "domain= point at a Salesforce login host and that no proxy rewrites the request "
        "body. The app must have OAuth and the JWT bearer flow enabled (External Client App: "
        "Enable OAuth, Flow Enablement > Enable JWT Bearer Flow; an existing Connected App: "
        "Enable OAuth Settings, 'Use digital signatures')"
    )


class TokenEndpointUnavailable(SfJwtError):
    """The token endpoint could not be reached or kept failing (5xx, 429, timeouts,
    connection errors) through every attempt. ``last_cause`` is the last exception or a
    short description of the last response; ``attempts`` how many requests were made."""

    def __init__(
        self, login_url: str, attempts: int, last_cause: Union[BaseException, str, None] = None, *,
        hint: Optional[str] = None,
    ) -> None:
        self.login_url = login_url
        self.attempts = attempts
        self.last_cause = last_cause
        self.hint = hint if hint is not None else (
            "Salesforce or the network was unavailable: try again later; check "
            "https://status.salesforce.com, the proxies (HTTPS_PROXY / proxies=) and the login "
            "host (domain= / login_url=)"
        )
        cause = excerpt(str(last_cause), CAUSE_EXCERPT_CHARS) if last_cause is not None else "unknown"
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"The token endpoint at {login_url} failed after {attempts} {plural} (last: {cause}). "
                         f"Fix: {self.hint}")

    def __reduce__(self) -> Tuple[Any, ...]:  # the cause as text: an exception object may not pickle
        return functools.partial(type(self), hint=self.hint), (self.login_url, self.attempts, str(self.last_cause))


# description fragments (lower-case) -> class, checked in order, for error=invalid_grant
_GRANT_DESCRIPTIONS: Tuple[Tuple[Tuple[str, ...], Type[AuthenticationError]], ...] = (
    (("approved this consumer", "approve this consumer", "not approved"), ConsumerNotApprovedError),
    (("audience",), AudienceInvalidError),
    (("login_rate_exceeded", "number of logins exceeded", "rate limit"), LoginRateExceededError),
    (("expired",), AssertionExpiredError),
    (("inactive",), InactiveUserError),
    (("ip restricted", "login hours", "restricted"), LoginRestrictedError),
    (("assertion", "signature"), InvalidAssertionError),
    (("invalid user", "unknown user", "user"), UnknownUserError),
)

_ERROR_CODES: Dict[str, Type[AuthenticationError]] = {
    "invalid_app_access": AppAccessError,
    "invalid_client_id": InvalidClientIdError,
    "rate_limit_exceeded": LoginRateExceededError,
    "login_rate_exceeded": LoginRateExceededError,
    "unsupported_grant_type": UnsupportedGrantTypeError,
    "inactive_user": InactiveUserError,
    "inactive_org": InactiveUserError,
}


def _class_for(error: str, description: str) -> Type[AuthenticationError]:
    code = (error or "").strip().lower()
    text = (description or "").strip().lower()
    if "not installed in this org" in text or code == "oauth_ec_app_not_found":
        return AppNotInstalledError  # whatever the code: Salesforce's words decide
    if code in _ERROR_CODES:
        return _ERROR_CODES[code]
    if "login_rate_exceeded" in text:
        return LoginRateExceededError
    if code == "invalid_client" and "client identifier" in text:
        return InvalidClientIdError
    if code == "invalid_grant":
        for fragments, cls in _GRANT_DESCRIPTIONS:
            if any(fragment in text for fragment in fragments):
                return cls
    return AuthenticationError


def error_for(
    error: str, description: str, *, status: Optional[int] = None, login_url: str = "", username: str = ""
) -> AuthenticationError:
    """The :class:`AuthenticationError` subclass for Salesforce's ``error`` /
    ``error_description`` (description matched case-insensitively); unknown codes give the
    base class with a generic hint."""
    cls = _class_for(error, description)
    shown = excerpt(description or "", DESCRIPTION_EXCERPT_CHARS)
    return cls(error or "unknown_error", shown, status=status, login_url=login_url, username=username)


def unexpected_response(
    status: Optional[int], body: Union[bytes, str, None], *, login_url: str = "", username: str = "",
    reason: str = "", content_type: str = "", show_body: bool = True,
) -> AuthenticationError:
    """An ``unexpected_response`` :class:`AuthenticationError` for a token endpoint answer
    that is not Salesforce's JSON (a proxy's HTML page, JSON without ``access_token`` ...).
    Shows the status and the start of the body (cut, then secrets masked); with
    ``show_body=False`` (JSON that may hold a token in an odd place) no body at all."""
    shown = excerpt(b"" if body is None or not show_body else body, BODY_EXCERPT_CHARS)  # cut, then masked
    what = reason or "the answer is not Salesforce's token JSON"
    ctype = f", Content-Type {content_type}" if content_type else ""
    said = f"body starts: {shown!r}" if shown else "empty body"
    description = f"HTTP {status}{ctype}, {what}; " + (said if show_body else "body not shown (it may hold a token)")
    hint = (
        "the login host did not answer like Salesforce's token endpoint: check domain= / "
        "login_url= (SF_DOMAIN / SF_LOGIN_URL) and any proxy (proxies=, HTTPS_PROXY) or "
        "captive portal between this machine and Salesforce"
    )
    return AuthenticationError(
        "unexpected_response", description, status=status, login_url=login_url, username=username, hint=hint
    )


class SessionRefusedError(SfJwtError, SalesforceExpiredSession):
    """Salesforce refused a session it had just issued: the JWT login works, the API call
    does not (API access off for the profile, no ``api`` OAuth scope, a session locked to
    another IP). sfjwt-ext stops logging in again for this client, so the refusals cannot
    use up the user's logins per hour. ``salesforce_message`` is Salesforce's own text.

    It is a :class:`~simple_salesforce.exceptions.SalesforceExpiredSession`, so code that
    already catches that keeps working.
    """

    #: simple-salesforce's template, which SalesforceError puts in ``args`` (so in the repr)
    message = (
        "Salesforce refused a valid, freshly issued session for {url}: {content}"
    )

    def __init__(self, url: str, status: int, salesforce_message: str, content: Any = None) -> None:
        super().__init__(url, status, "", content)
        self.salesforce_message = salesforce_message

    def __reduce__(self) -> Tuple[Any, ...]:  # args hold simple-salesforce's four, not ours
        return type(self), (self.url, self.status, self.salesforce_message, self.content)

    def __str__(self) -> str:
        quoted = self.salesforce_message or "(no message)"
        return (
            f"Salesforce refused a valid, freshly issued session (HTTP {self.status} for "
            f"{self.url}): {quoted!r}. The JWT login works, but this user's sessions may not "
            "call the API. Check in Setup: the user's profile or a permission set has "
            "'API Enabled'; the app's OAuth Scopes include 'Manage user data via APIs (api)' "
            "(Setup > External Client App Manager > the app > Settings tab > OAuth Settings; "
            "an existing Connected App: Selected OAuth Scopes); Session Settings' 'Lock "
            "sessions to the IP address from which they originated' (and the profile's Login "
            "IP Ranges) allow this machine. sfjwt_ext stopped logging in again for this client to protect the "
            "user's login limit; it tries again once the session is accepted or after 5 minutes."
        )


#: The first API version whose SOAP APIs (SOAP API, Metadata API, Tooling SOAP) accept a
#: JWT-format access token (Winter '27).
SOAP_JWT_MIN_VERSION = "68.0"
JWT_TOKEN_SETTING = "Issue JSON Web Token (JWT)-based access tokens for named users"


class SoapJwtTokenError(SfJwtError):
    """A SOAP call (``sf.mdapi``, any ``/services/Soap/`` URL) below API 68.0 with a
    JWT-format access token: Salesforce would refuse it, and the refusal looks like an
    expired session. Raised before anything is sent and without a login. ``url`` is the
    request's URL without its query, ``version`` the API version in it."""

    def __init__(self, url: str, version: str) -> None:
        super().__init__(url, version)
        self.url = url
        self.version = version

    def __str__(self) -> str:
        return (
            f"Not sent: SOAP request to {self.url} (API {self.version}) with a JWT-format access "
            f"token. The app issues JSON Web Token access tokens (its setting "
            f"\"{JWT_TOKEN_SETTING}\", metadata isNamedUserJwtEnabled), and Salesforce's SOAP "
            f"and Metadata APIs accept those only from API {SOAP_JWT_MIN_VERSION}. Fix: connect "
            f"with version='{SOAP_JWT_MIN_VERSION}' or later (connect_jwt(version="
            f"'{SOAP_JWT_MIN_VERSION}'), SF_API_VERSION={SOAP_JWT_MIN_VERSION}), or turn that "
            "setting off (Setup > External Client App Manager > the app > Settings tab > OAuth "
            "Settings; an existing Connected App: Setup > App Manager > the app > Edit) and log "
            "in again. REST and Bulk API 2.0 calls accept the token at any version."
        )


class RequestNotReplayable(SfJwtError, SalesforceExpiredSession):
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

    def __reduce__(self) -> Tuple[Any, ...]:  # SalesforceError's args hold its message, not its four
        return type(self), (self.url, self.status, self.resource_name, self.content)
