"""What an API answer says about the session: the expiry signal of each API, the message and
the (masked) content of a refusal, and the SOAP calls a JWT-format token cannot make.

* REST, Apex REST, Tooling, Bulk 2.0: HTTP 401 with ``errorCode`` ``INVALID_SESSION_ID``
* Bulk 1.0: HTTP 400 with ``exceptionCode`` ``InvalidSessionId`` (XML or JSON)
* SOAP / Metadata: HTTP 500 fault ``INVALID_SESSION_ID``
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

import requests

from .._internal.redact import MaskedToken, excerpt, looks_like_jwt, redact
from .._internal.urls import path_of
from ..errors import SOAP_JWT_MIN_VERSION, SoapJwtTokenError
from .token_client import TokenResponse

__all__ = ["content_for_error", "expiry_signal", "refuse_jwt_below_soap_minimum", "salesforce_message"]


#: HTTP status -> (the API that says "session expired" with it, the path of that API's URLs, its
#: words): an API's signal counts only on that API's URLs; HTTP 401 on any URL.
_EXPIRY_SIGNALS = {
    401: ("rest", "", re.compile(rb"INVALID_SESSION_ID")),
    400: ("bulk", "/services/async/", re.compile(rb"exceptionCode[\"'\s:>]*InvalidSessionId")),
    500: ("soap", "/services/Soap/", re.compile(rb"faultcode>[^<]*INVALID_SESSION_ID")),
}


# /services/Soap/{u,c,m,T,s...}/<version>[/...]: the API version of a SOAP endpoint
_SOAP_VERSION = re.compile(r"^/services/Soap/[A-Za-z]+/([0-9]{1,3})(?:\.([0-9]{1,2}))?(?:/|$)")


_SOAP_JWT_MIN = tuple(int(part) for part in SOAP_JWT_MIN_VERSION.split("."))


def refuse_jwt_below_soap_minimum(url: str, token: TokenResponse, sent: str) -> None:
    """Raise :class:`~sfjwt_ext.errors.SoapJwtTokenError` when ``url`` is a SOAP endpoint
    of an API version below 68.0 and the token it would carry (``sent``, which is
    ``token``'s access token or another of ours) is JWT-format: Salesforce would refuse it
    with what looks like an expired session, and a refresh would bring another JWT."""
    if "/services/Soap/" not in url:  # every REST call passes here: the cheap test first
        return
    sent = MaskedToken(sent)  # a traceback's locals show it masked
    match = _SOAP_VERSION.match(path_of(url))
    version = (int(match.group(1)), int(match.group(2) or 0)) if match else _SOAP_JWT_MIN
    if version < _SOAP_JWT_MIN and (token.is_jwt if sent == token.access_token else looks_like_jwt(sent)):
        raise SoapJwtTokenError(url.split("?", 1)[0], f"{version[0]}.{version[1]}")


def expiry_signal(response: requests.Response) -> Optional[str]:
    """Which API said "session expired" in ``response``: "rest", "bulk", "soap" or None.

    Each API's signal counts only on that API's URLs: Bulk 1.0's ``InvalidSessionId`` (HTTP
    400) on ``/services/async/``, a SOAP fault ``INVALID_SESSION_ID`` (HTTP 500) on
    ``/services/Soap/``; HTTP 401 ``INVALID_SESSION_ID`` anywhere (REST, Apex REST,
    Tooling, Bulk 2.0, identity). Only error statuses are looked at (their bodies are
    small), so a successful streamed download is never read here.
    """
    if response.status_code not in _EXPIRY_SIGNALS:
        return None
    api, api_path, expired = _EXPIRY_SIGNALS[response.status_code]
    try:
        content = response.content
    except Exception:  # content already consumed by a streaming caller, broken connection
        return None
    return api if content and api_path in path_of(response.url or "") and expired.search(content) else None


def salesforce_message(response: requests.Response) -> str:
    """Salesforce's own words in an error answer (REST ``message``, Bulk
    ``exceptionMessage``, SOAP ``faultstring``), at most 300 characters, cut first and
    then masked (an answer that quotes a token or a JWT shows it masked)."""
    text = _body_text(response)
    if text is None:
        return ""
    match = next(filter(None, (pattern.search(text) for pattern in _MESSAGE_PATTERNS)), None)
    return excerpt(match.group(1) if match else text, 300)


def content_for_error(response: requests.Response) -> Any:
    """The answer's content for an exception (its repr shows it): parsed JSON when it is
    JSON, else text, with tokens, JWTs and PEM keys masked (the masks keep JSON valid)."""
    text = redact(_body_text(response) or "")
    try:
        return json.loads(text)
    except ValueError:  # not JSON (an unreadable answer: "")
        return text


def _body_text(response: requests.Response) -> Optional[str]:
    """The answer's body as text; None when it cannot be read (already consumed by a streaming caller)."""
    try:
        return response.content.decode("utf-8", "replace")
    except Exception:
        return None


_MESSAGE_PATTERNS = (
    re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    re.compile(r'"exceptionMessage"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    re.compile(r"<(?:\w+:)?exceptionMessage>([^<]*)<"),
    re.compile(r"<faultstring>([^<]*)<"),
)
