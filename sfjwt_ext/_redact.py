"""Keep secrets out of log lines: access tokens, JWTs (assertions) and PEM private keys.

* :func:`redact` masks every secret found in a string.
* :func:`mask_token` shows one access token as ``00D…abcd``.
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

__all__ = ["RedactingFilter", "redact", "mask_token", "get_logger", "PACKAGE_LOGGER"]

PACKAGE_LOGGER = "sfjwt_ext"

# A Salesforce access token / session id: the 15- or 18-character org id, '!', then the
# opaque part. '!' may appear URL-encoded as %21.
_TOKEN_RE = re.compile(r"00D[A-Za-z0-9]{12,15}(?:!|%21)[A-Za-z0-9._\-]+")
# A JWT (JWS compact form): base64url header '.' payload '.' signature; headers and claims
# are JSON objects, so both start with 'eyJ'.
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]*\.eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*")
# A PEM private key block (PKCS#1, PKCS#8, encrypted, EC ...), also with literal "\n"
# sequences or truncated before its END line.
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)

JWT_MASK = "<JWT redacted>"
PEM_MASK = "<private key redacted>"


def mask_token(token: Any) -> str:
    """``00D…abcd``: the first three and the last four characters of an access token.

    Anything too short to show safely becomes ``…``; None becomes ``None``.
    """
    if token is None:
        return "None"
    text = str(token)
    if len(text) < 16:
        return "…"
    return f"{text[:3]}…{text[-4:]}"


def redact(text: Any) -> str:
    """``text`` with access tokens, JWTs and PEM private keys masked."""
    if not isinstance(text, str):
        text = str(text)
    if "PRIVATE KEY" in text:
        text = _PEM_RE.sub(PEM_MASK, text)
    if "eyJ" in text:
        text = _JWT_RE.sub(JWT_MASK, text)
    if "00D" in text:
        text = _TOKEN_RE.sub(lambda m: mask_token(m.group(0)), text)
    return text


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


def _attach(logger: logging.Logger) -> logging.Logger:
    if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


def get_logger(name: str = PACKAGE_LOGGER) -> logging.Logger:
    """The logger ``name`` (made a child of ``sfjwt_ext`` when it is not already in that
    tree, e.g. ``"exchange"`` -> ``sfjwt_ext.exchange``) with one :class:`RedactingFilter`
    attached (idempotent)."""
    if name != PACKAGE_LOGGER and not name.startswith(PACKAGE_LOGGER + "."):
        name = f"{PACKAGE_LOGGER}.{name}"
    return _attach(logging.getLogger(name))


get_logger(PACKAGE_LOGGER)
