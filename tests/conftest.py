"""Suite-wide guards.

- No network beyond loopback: any attempt to resolve or connect to another host fails the
  test loudly, so no code path can fall back to a real Salesforce host.
- ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` always point at something other than the local
  org's CA, as on the developers' machines: code that uses a private CA must cope.

Shared fixtures (a module's own ``org`` / ``sf`` overrides them):

- ``org``: the plugin's local org with three Accounts, "Acme 0" to "Acme 2".
- ``sf``: a client of ``org`` outside the login cache (``cache=False``) whose first query
  is done, so the session is in use.
- ``no_sf_settings``: no SF_* variable and no profile file of the machine's user (a module
  takes it with ``pytestmark = pytest.mark.usefixtures("no_sf_settings")``).
"""
from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any, Iterator

import pytest

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # unix sockets and the like
    host = host.strip("[]").lower()
    if host in _LOCAL_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlocked(OSError):
    pass


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise NetworkBlocked(f"tests may only reach 127.0.0.1, not {address[0]!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests may only resolve loopback names, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if not os.environ.get(name) and os.path.exists(system_bundle):
            os.environ[name] = system_bundle


@pytest.fixture(autouse=True)
def _no_cached_logins() -> Iterator[None]:
    """Every test starts and ends with an empty connect_jwt() cache: a login cached by one
    test must not answer another test's org."""
    from sfjwt_ext.client import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def no_sf_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in list(os.environ):
        if name.startswith("SF_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SFJWT_CONFIG", str(tmp_path / "no-such-config.ini"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.insert("Account", [{"Name": f"Acme {i}"} for i in range(3)])
    return salesforce_org


@pytest.fixture
def sf(org: Any) -> Any:
    from sfjwt_ext.client import connect_jwt

    client = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    client.query("SELECT Id FROM Account")  # the first token is accepted
    return client
