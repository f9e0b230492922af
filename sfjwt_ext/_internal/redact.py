"""Keep secrets out of log lines: access tokens, JWTs (assertions) and PEM private keys.

* :func:`redact` masks every secret found in a string.
* :func:`excerpt` is the start of a long text (an error body) on one line, cut first and
  then masked, so its cost does not grow with the text.
* :func:`mask_token` shows one access token as ``00D…abcd`` (the one masker of a token; a
  JWT-format access token shows as ``eyJ…abcd``).
* :class:`MaskedToken` is a ``str`` (a token, or ``Bearer <token>``) whose ``repr`` is
  masked: what frames and header dicts hold, so ``capture_locals`` tracebacks never show it.
* :func:`looks_like_jwt` tells a JWT-format access token (``eyJ….eyJ….sig``) from an
  opaque ``00D…!…`` one.
* :class:`RedactingFilter` is a :class:`logging.Filter` that formats the record's message,
  masks it, and masks the exception text too.
* :func:`get_logger` returns a logger of the ``sfjwt_ext`` tree with a
  :class:`RedactingFilter` attached. A filter on a logger only sees records logged *to that
  logger*, not those propagated from its children, so every module logs through a logger
  obtained from :func:`get_logger` (the package logger ``sfjwt_ext`` gets one at import).
"""
from __future__ import annotations

import logging
import re
from typing import Any

__all__ = [
    "RedactingFilter", "redact", "excerpt", "mask_token", "MaskedToken", "looks_like_jwt",
    "get_logger", "PACKAGE_LOGGER",
]

PACKAGE_LOGGER = "sfjwt_ext"

# Every pattern runs in linear time: no quantifier can give back characters that another
# one then rescans (a 300 KB body of ``eyJ`` text would otherwise take ~30 s).
#
# A Salesforce access token / session id: the 15- or 18-character org id, '!', then the
# opaque part. '!' may appear URL-encoded as %21. (Bounded prefix: each start costs O(1).)
_TOKEN_RE = re.compile(r"00D[A-Za-z0-9]{12,15}(?:!|%21)[A-Za-z0-9._\-]+")
# A JWT (JWS compact form): base64url header '.' payload '.' signature; headers and claims
# are JSON objects, so both start with 'eyJ'. A match may begin only where a base64url run
# begins (the look-behind); group 1 is the run's text before its first 'eyJ' (kept), and
# ``(?=(X*))\N`` takes a run whole without giving any of it back (an atomic group, which
# Python < 3.11 lacks). So each run is scanned a bounded number of times.
_B64 = r"[A-Za-z0-9_\-]"
_JWT_RE = re.compile(
    rf"(?<!{_B64})(?=({_B64}*?)eyJ)\1"
    rf"eyJ(?=({_B64}*))\2\.eyJ(?=({_B64}*))\3\.(?=({_B64}*))\4"
)
# A PEM private key block (PKCS#1, PKCS#8, encrypted, EC ...), also with literal "\n"
# sequences or truncated before its END line. Only a block with a body is a secret: the
# BEGIN line followed (after spaces, newlines or literal "\n", also escaped twice) by key material (16 base64
# characters) or an encrypted PEM's headers; a BEGIN line quoted in our own hints ("pass
# '-----BEGIN PRIVATE KEY-----' or ...") is text, and stays.
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?=(?:\s|\\+[rn])*(?:[A-Za-z0-9+/]{16}|Proc-Type:))"
    r".*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# Characters a token or a JWT is made of: a cut inside a run of them may leave a piece of a
# secret that no pattern recognises any more.
# (Matched on the reversed text, from its start: linear.)
_SECRET_RUN_RE = re.compile(r"[A-Za-z0-9._\-!%]+")
#: How far past an excerpt's end :func:`excerpt` reads, so that a secret which starts
#: inside the excerpt is still seen whole (a PEM key is ~1.7-3.3 KB, a JWT under 2 KB).
_EXCERPT_MARGIN = 4096

JWT_MASK = "<JWT redacted>"
PEM_MASK = "<private key redacted>"


def mask_token(token: Any) -> str:
    """``00D…abcd``: the first three and the last four characters of an access token
    (``eyJ…abcd`` for a JWT-format one: still recognisable, never usable).

    Anything too short to show safely becomes ``…``; None becomes ``None``.
    """
    if token is None:
        return "None"
    text = str(token)
    if len(text) < 16:
        return "…"
    return f"{text[:3]}…{text[-4:]}"


class MaskedToken(str):
    """An access token (or ``"Bearer <token>"``) whose ``repr`` is masked (``'00D…abcd'``,
    ``'Bearer eyJ…abcd'``) while ``str()``, ``+`` and sending use the real value: what frames,
    ``sf.session_id`` and header dicts hold, so a traceback shown with its locals (Sentry,
    ``capture_locals=True``, ``pytest --showlocals``) never shows a token."""

    __slots__ = ()

    def __repr__(self) -> str:
        scheme, space, token = str.__str__(self).rpartition(" ")
        return repr(scheme + space + mask_token(token))


_JWT_TOKEN_RE = re.compile(rf"eyJ{_B64}*\.eyJ{_B64}*\.{_B64}+")


def looks_like_jwt(token: str) -> bool:
    """True when ``token`` is a JWS compact JWT: three base64url parts joined by ``.``, the
    header and the claims JSON objects (``eyJ``). An opaque Salesforce token
    (``00D…!…``) never is one."""
    return _JWT_TOKEN_RE.fullmatch(token) is not None


def redact(value: Any) -> str:
    """``value`` (``str()`` of it) with access tokens, JWTs and PEM private keys masked."""
    text: str = value if isinstance(value, str) else str(value)
    if "PRIVATE KEY" in text:
        text = _PEM_RE.sub(PEM_MASK, text)
    if "eyJ" in text:
        text = _JWT_RE.sub(lambda m: m.group(1) + JWT_MASK, text)
    if "00D" in text:
        text = _TOKEN_RE.sub(lambda m: mask_token(m.group(0)), text)
    return text


def excerpt(text: Any, limit: int) -> str:
    """The start of ``text`` on one line, secrets masked, at most ``limit`` characters
    (then ``…``). Cuts first, then masks: the cost depends on ``limit``, not on the size
    of ``text``. ``bytes`` are decoded as UTF-8 (bad bytes replaced).

    The cut is made ``_EXCERPT_MARGIN`` characters past ``limit``, and a run of token/JWT
    characters that the cut splits is dropped, so a secret that starts inside the excerpt
    is masked whole or not shown at all.
    """
    end = limit + _EXCERPT_MARGIN
    if isinstance(text, (bytes, bytearray)):  # enough bytes for end + 1 characters (of 4 bytes at most)
        text = bytes(text[: (end + 1) * 4]).decode("utf-8", "replace")
    text = text if isinstance(text, str) else str(text)
    head = text[:end]
    cut = len(text) > end
    if cut:  # the last run may be a piece of a secret: drop it
        tail = _SECRET_RUN_RE.match(head[::-1])
        if tail:
            head = head[: len(head) - tail.end()]
    line = " ".join(redact(head).split())
    if len(line) > limit or (cut and line):
        return line[:limit] + "…"
    return line if line or not cut else "…"


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, exception and stack text.

    The message is formatted first (``msg % args``), masked, and stored back in
    ``record.msg`` with ``record.args = ()``, so handlers and formatters never see the
    raw values. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can, masked
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def get_logger(name: str = PACKAGE_LOGGER) -> logging.Logger:
    """The logger ``name`` (made a child of ``sfjwt_ext`` when it is not already in that
    tree, e.g. ``"exchange"`` -> ``sfjwt_ext.auth.token_client``) with one :class:`RedactingFilter`
    attached (idempotent)."""
    if name != PACKAGE_LOGGER and not name.startswith(PACKAGE_LOGGER + "."):
        name = f"{PACKAGE_LOGGER}.{name}"
    logger = logging.getLogger(name)
    if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


get_logger(PACKAGE_LOGGER)


def mask_consumer_key(value: str) -> str:
    """A consumer key as logs and cache headers show it: ``3MVG9…WxYz``."""
    return f"{value[:5]}…{value[-4:]}" if len(value) > 12 else "…"
