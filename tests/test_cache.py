"""sfjwt_ext.sharing.registry: one login per key and transport, shared outcomes, bounds, a store plugs in."""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Dict, List, Optional

import pytest

from sfjwt_ext.auth import credentials
from sfjwt_ext.auth.credentials import log_in
from sfjwt_ext.sharing.registry import LoginCache, default_cache, login_key
from sfjwt_ext.client import connect_jwt
from sfjwt_ext.errors import TokenEndpointUnavailable
from sfjwt_ext.auth.target import resolve_login
from sfjwt_ext.auth.token_client import TokenClient, TokenResponse
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.config import resolve_settings

SOQL = "SELECT Id FROM Account"
NOW = {"Retry-After": "0"}  # injected 503s are retried at once
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # does not trust the local org's CA


def _kwargs(org: Any, **changes: Any) -> Dict[str, Any]:
    kwargs = org.credentials.connect_kwargs()
    kwargs.update(changes)
    return kwargs


def _insecure(org: Any, **changes: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning
        return connect_jwt(**_kwargs(org, verify=False, **changes))


def _threads_inside(code: Any, excluding: Any) -> int:
    """Threads whose stack runs ``code`` but not ``excluding`` (the one logging in)."""
    count = 0
    for frame in sys._current_frames().values():
        codes = set()
        walk: Any = frame
        while walk is not None:
            codes.add(walk.f_code)
            walk = walk.f_back
        if code in codes and excluding not in codes:
            count += 1
    return count


def _poll(condition: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------
# item 1: a cached login never changes how a client talks to Salesforce
# ---------------------------------------------------------------------------------------
def test_a_login_without_tls_checks_is_not_reused_by_a_client_that_checks(salesforce_org: Any) -> None:
    org = salesforce_org
    _insecure(org)
    assert org.token_requests == 1
    # The system bundle does not trust the org: the login must be made, and fail, with it.
    with pytest.raises(TokenEndpointUnavailable, match="verify="):
        connect_jwt(**_kwargs(org, verify=SYSTEM_BUNDLE))


def test_each_client_logs_in_and_refreshes_with_its_own_verify(salesforce_org: Any) -> None:
    org = salesforce_org
    unchecked = _insecure(org)
    checked = connect_jwt(**_kwargs(org, verify=org.ca_file))
    assert org.token_requests == 2  # its own login
    assert checked.refresher is not unchecked.refresher
    assert checked.refresher.token_client.verify == org.ca_file
    assert unchecked.refresher.token_client.verify is False
    org.expire_all_sessions()
    assert checked.query(SOQL)["done"]
    assert org.token_requests == 3
    assert (checked.refresh_count, unchecked.refresh_count) == (1, 0)
    # the same transport again: the same login
    assert connect_jwt(**_kwargs(org, verify=org.ca_file)).refresher is checked.refresher
    assert org.token_requests == 3


def test_the_key_holds_everything_that_changes_a_token_request(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = salesforce_org.credentials
    settings = resolve_settings(username=creds.username, consumer_key=creds.consumer_key,
                                private_key_file=creds.private_key_file, login_url=creds.login_url)
    target = resolve_login(login_url=creds.login_url)

    def key(**transport: Any) -> Any:
        arguments: Dict[str, Any] = {"verify": True, "proxies": None, "timeout": None}
        arguments.update(transport)
        return login_key(settings, target, "key-id", **arguments)

    base = key()
    assert key() == base and key(proxies={}) == base
    assert key(verify=False) != base
    assert key(verify=creds.ca_file) != key(verify=False)
    assert key(proxies={"https": "http://proxy.example:3128"}) != base
    assert key(timeout=5) != base and key(timeout=(3, 20)) != key(timeout=5)
    assert key().identity == key(verify=False).identity  # one identity, several transports
    # what the environment adds to a request: a CA bundle (verify=True) and proxies
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", creds.ca_file)
    assert key() != base
    assert key(verify=creds.ca_file) == login_key(settings, target, "key-id", verify=creds.ca_file,
                                                  proxies=None, timeout=None)


def test_an_environment_proxy_is_part_of_the_key(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = salesforce_org.credentials
    settings = resolve_settings(username=creds.username, consumer_key=creds.consumer_key,
                                private_key_file=creds.private_key_file)
    target = resolve_login(login_url="https://acme.my.salesforce.com")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    before = login_key(settings, target, "k", verify=False, proxies=None, timeout=None)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    after = login_key(settings, target, "k", verify=False, proxies=None, timeout=None)
    assert after != before and after.identity == before.identity


# ---------------------------------------------------------------------------------------
# item 6: threads waiting for a first login share its outcome
# ---------------------------------------------------------------------------------------
class _HeldLogin:
    """credentials.log_in (the first token of a login), holding it until released."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()

    def __call__(self, client: Any, token: Optional[TokenResponse] = None) -> Any:
        self.asked.set()
        assert self.release.wait(20)
        return log_in(client, token)


def test_threads_waiting_for_a_first_login_share_its_failure(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    org = salesforce_org
    org.inject_fault("token", status=503, count=200, body="down", headers=NOW)
    held = _HeldLogin()
    monkeypatch.setattr(credentials, "log_in", held)
    errors: List[BaseException] = []

    def connect() -> None:
        try:
            connect_jwt(**_kwargs(org))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(32)]
    for thread in threads:
        thread.start()
    try:
        assert held.asked.wait(10)
        _poll(lambda: _threads_inside(LoginCache.login.__code__, _HeldLogin.__call__.__code__) == 31,
              "31 threads waiting for the first login")
    finally:
        held.release.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 32 and all(isinstance(e, TokenEndpointUnavailable) for e in errors)
    assert len({id(e) for e in errors}) == 1  # the first caller's exception
    assert org.token_requests == 3  # one caller's three attempts (96 before)
    # failures are not cached: the next caller logs in
    org.clear_faults()
    monkeypatch.setattr(credentials, "log_in", log_in)
    assert connect_jwt(**_kwargs(org)).query(SOQL)["done"]
    assert org.token_requests == 4


def test_threads_connecting_at_once_make_one_login(salesforce_org: Any) -> None:
    org = salesforce_org
    clients: List[Any] = []
    threads = [threading.Thread(target=lambda: clients.append(connect_jwt(**_kwargs(org)))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(clients) == 16 and org.token_requests == 1
    assert len({id(c.refresher) for c in clients}) == 1
    assert len({id(c.session) for c in clients}) == 1


def test_an_interrupted_first_login_is_made_by_a_waiter(salesforce_org: Any) -> None:
    org = salesforce_org
    creds = org.credentials
    key = load_private_key(private_key_file=creds.private_key_file)
    target = resolve_login(login_url=creds.login_url)
    cache = LoginCache()
    settings = resolve_settings(username=creds.username, consumer_key=creds.consumer_key,
                                private_key_file=creds.private_key_file)
    cache_key = login_key(settings, target, "k", verify=creds.ca_file, proxies=None, timeout=None)
    entered, go = threading.Event(), threading.Event()
    calls: List[int] = []

    def make_client() -> TokenClient:
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert go.wait(10)
            raise KeyboardInterrupt  # belongs to this thread only
        return TokenClient(username=creds.username, consumer_key=creds.consumer_key, key=key,
                           target=target, verify=creds.ca_file)

    outcomes: Dict[str, Any] = {}

    def first() -> None:
        try:
            cache.login(cache_key, make_client)
        except KeyboardInterrupt:
            outcomes["first"] = "interrupted"

    def waiter() -> None:
        outcomes["waiter"] = cache.login(cache_key, make_client)

    leader = threading.Thread(target=first)
    leader.start()
    assert entered.wait(10)
    follower = threading.Thread(target=waiter)
    follower.start()
    _poll(lambda: _threads_inside(LoginCache.login.__code__, make_client.__code__) == 1,
          "the waiter")
    go.set()
    leader.join(10)
    follower.join(10)
    assert outcomes["first"] == "interrupted"
    refresher, reused = outcomes["waiter"]
    assert reused is False and refresher.token.access_token
    assert org.token_requests == 1 and len(cache) == 1


# ---------------------------------------------------------------------------------------
# item 7: bounded memory and sockets
# ---------------------------------------------------------------------------------------
def test_the_cache_is_bounded_and_closes_the_logins_it_evicts(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    org = salesforce_org
    monkeypatch.setattr(default_cache, "max_logins", 4)
    monkeypatch.setattr(default_cache, "max_settings", 4)
    users = [f"tenant{i}@example.com" for i in range(40)]
    for user in users:
        assert org.add_user(user)
    gc.collect()
    fds_before = _fds()
    # 8 clients that outlive their logins (no API call yet: no instance connection) ...
    kept = [connect_jwt(**_kwargs(org, username=user)) for user in users[:8]]
    # ... and 32 that query and are dropped
    for user in users[8:]:
        sf = connect_jwt(**_kwargs(org, username=user))
        assert sf.query(SOQL)["done"]
        del sf
    gc.collect()
    assert len(default_cache) == 4 and len(default_cache._settings) == 4
    # The 4 cached logins keep one token connection each (2 fds with the org's end of it);
    # the evicted ones were closed although their clients live, the dropped clients'
    # sessions are gone. Before: 40 logins, 160 fds.
    _poll(lambda: _fds() <= fds_before + 4 * 2 + 4, f"fds to settle (now {_fds()}, were {fds_before})")
    # a client whose login was evicted keeps working: its refresh reconnects
    requests_before = org.token_requests
    org.expire_all_sessions()
    assert kept[0].query(SOQL)["done"]
    assert org.token_requests == requests_before + 1 and kept[0].refresh_count == 1


def test_shared_sessions_do_not_outlive_their_clients(salesforce_org: Any) -> None:
    sf = connect_jwt(**_kwargs(salesforce_org))
    assert connect_jwt(**_kwargs(salesforce_org)).session is sf.session
    session = weakref.ref(sf.session)
    del sf
    gc.collect()
    assert session() is None
    assert len(default_cache) == 1  # the login stays


def test_clear_empties_logins_settings_and_sessions(salesforce_org: Any) -> None:
    first = connect_jwt(**_kwargs(salesforce_org))
    default_cache.clear()
    assert len(default_cache) == 0 and not default_cache._settings
    second = connect_jwt(**_kwargs(salesforce_org))
    assert second.refresher is not first.refresher and second.session is not first.session
    assert first.query(SOQL)["done"]  # a client made before keeps working


