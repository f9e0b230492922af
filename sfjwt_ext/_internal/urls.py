"""URL and host helpers shared by every client module (the bottom of the dependency order:
it imports nothing of sfjwt_ext).

* :func:`host_of` is how a URL's host is shown in log lines and messages: ``host[:port]``,
  lower-case, never the user name, password, path or query.
* :func:`is_loopback` tells 127.0.0.1 / ``localhost`` / ``[::1]`` from other hosts.
* :func:`is_https_origin` checks an ``instance_url`` is ``https://host[:port]`` and nothing else.
* :func:`origin_of` / :func:`https_origin_of` compare URLs by (scheme, host, port): where a token may go.
* :func:`instance_of` is simple-salesforce's ``sf_instance`` of a URL (host, port when not 443).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Optional, Tuple, Union
from urllib.parse import urlsplit

__all__ = [
    "HOST_RE", "Origin", "host_of", "https_origin_of", "instance_of", "is_https_origin", "is_loopback", "origin_of",
    "path_of",
]

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
    address = _ip(name)
    return name in _LOOPBACK_NAMES or (address is not None and address.is_loopback)


HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*$")


def is_https_origin(url: str) -> bool:
    """``https://host[:port]`` (a trailing ``/`` allowed), nothing else."""
    if len(url) > 300:  # a host name is at most 253 characters
        return False
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""  # an empty host matches neither
    return (
        parts.scheme.lower() == "https"
        and (HOST_RE.match(host) is not None or _ip(host) is not None)
        and not (parts.username or parts.password or parts.query or parts.fragment)
        and parts.path in ("", "/")
        and (port is None or 0 < port < 65536)
    )


def _ip(host: str) -> Union[ipaddress.IPv4Address, ipaddress.IPv6Address, None]:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


Origin = Tuple[str, str, int]


def origin_of(url: str) -> Optional[Origin]:
    try:
        parts = urlsplit(url)  # the scheme and hostname lower-cased
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    return parts.scheme, parts.hostname, port if port is not None else (443 if parts.scheme == "https" else 80)


def https_origin_of(url: str) -> Optional[Origin]:
    """simple-salesforce forces https on the instance URL: so do we."""
    origin = origin_of(url)
    if origin is None:
        return None
    scheme, host, port = origin
    return "https", host, 443 if (scheme, port) == ("http", 80) else port


def path_of(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def instance_of(instance_url: str) -> str:
    """What simple-salesforce keeps as ``sf_instance``: host, plus the port when not 443."""
    parts = urlsplit(instance_url)
    instance = parts.hostname or ""
    if parts.port not in (None, 443):
        instance += f":{parts.port}"
    return instance
