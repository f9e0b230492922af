"""URL and host helpers shared by every client module (the bottom of the dependency order:
it imports nothing of sfjwt_ext).

* :func:`host_of` is how a URL's host is shown in log lines and messages: ``host[:port]``,
  lower-case, never the user name, password, path or query.
* :func:`is_loopback` tells 127.0.0.1 / ``localhost`` / ``[::1]`` from other hosts.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["host_of", "is_loopback"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def host_of(url: str) -> str:
    """``host[:port]`` of ``url`` (a URL, or a bare ``host[:port]``), lower-case; IPv6 in
    brackets. A text that is not a URL comes back unchanged."""
    text = str(url)
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return text
    if not host:
        return text
    shown = f"[{host}]" if ":" in host else host
    return shown + (f":{port}" if port is not None else "")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``), with or
    without IPv6 brackets."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
