"""Secrets do not sit in stack frames (issue 9, item 14).

Sentry's default and ``pytest --showlocals`` show the locals of every frame of a traceback
(``traceback.TracebackException(..., capture_locals=True)`` does the same). A login refused
*after* the token POST (invalid_grant) or a request that failed inside requests must leave
neither the signed JWT nor PEM text in any frame's locals, in the exception's chain, or in
the exception's ``last_cause``.
"""
from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import Any, List

import pytest
from _support import exception_chain

from sfjwt_ext import connect_jwt
from sfjwt_ext.errors import ConsumerNotApprovedError, SfJwtError, TokenEndpointUnavailable
from sfjwt_ext.auth.target import resolve_login
from sfjwt_ext.auth.token_client import TokenClient
from sfjwt_ext.auth.keys import load_private_key

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]*")


def _locals_text(exc: BaseException) -> str:
    """Everything capture_locals shows, plus the repr of every local of every frame of
    every exception reachable from ``exc`` (chain and last_cause), whatever is suppressed."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # this test's own frame
        tb = tb.tb_next
    shown = "".join(traceback.TracebackException(type(exc), exc, tb, capture_locals=True).format())
    parts = [shown]
    for current in exception_chain(exc):
        tb = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == __file__:
                tb = tb.tb_next
                continue
            for name, value in tb.tb_frame.f_locals.items():
                try:
                    parts.append(f"{tb.tb_frame.f_code.co_name}.{name}={value!r}")
                except Exception:  # noqa: BLE001 - a repr that fails shows nothing
                    pass
            tb = tb.tb_next
    return "\n".join(parts)


def _pem_lines(pem: str) -> List[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _assert_clean(exc: BaseException, pem: str) -> None:
    text = _locals_text(exc)
    assert not JWT_RE.search(text), JWT_RE.search(text)
    assert "PRIVATE KEY-----" not in text
    for line in _pem_lines(pem):
        assert line not in text


@pytest.fixture
def pem(salesforce_org: Any) -> str:
    return Path(salesforce_org.credentials.private_key_file).read_text()


def test_refused_fetch_keeps_no_jwt_in_frames(salesforce_org: Any, pem: str) -> None:
    org = salesforce_org
    org.add_user("unapproved@example.com", approved=False)
    client = TokenClient(username="unapproved@example.com", consumer_key=org.credentials.consumer_key,
                         key=load_private_key(private_key_file=org.credentials.private_key_file),
                         target=resolve_login(login_url=org.login_url), verify=org.ca_file)
    with pytest.raises(ConsumerNotApprovedError) as info:
        client.fetch()
    assert org.token_requests == 1  # the JWT was signed and sent
    _assert_clean(info.value, pem)


def test_dropped_connection_keeps_no_jwt_in_frames_or_causes(salesforce_org: Any, pem: str) -> None:
    org = salesforce_org
    org.inject_fault("token", count=1, drop=True)
    client = TokenClient(username=org.credentials.username, consumer_key=org.credentials.consumer_key,
                         key=load_private_key(private_key_file=org.credentials.private_key_file),
                         target=resolve_login(login_url=org.login_url), verify=org.ca_file, max_attempts=1)
    with pytest.raises(TokenEndpointUnavailable) as info:
        client.fetch()
    assert isinstance(info.value.last_cause, BaseException)  # requests' error, kept for the user
    _assert_clean(info.value, pem)


def test_odd_200_keeps_no_token_in_frames(salesforce_org: Any, pem: str) -> None:
    org = salesforce_org
    token = org.org_id[:15] + "!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdWXYZ"
    org.inject_fault("token", count=1, status=200, content_type="application/json",
                     body={"access_token": [token], "instance_url": org.instance_url})
    client = TokenClient(username=org.credentials.username, consumer_key=org.credentials.consumer_key,
                         key=load_private_key(private_key_file=org.credentials.private_key_file),
                         target=resolve_login(login_url=org.login_url), verify=org.ca_file)
    with pytest.raises(SfJwtError) as info:
        client.fetch()
    assert token not in _locals_text(info.value)


def test_connect_jwt_refused_keeps_no_jwt_in_frames(salesforce_org: Any, pem: str) -> None:
    """The whole connect_jwt path with a key file: no JWT in any frame."""
    org = salesforce_org
    org.add_user("unapproved@example.com", approved=False)
    kwargs = dict(org.credentials.connect_kwargs(), username="unapproved@example.com", cache=False)
    with pytest.raises(ConsumerNotApprovedError) as info:
        connect_jwt(**kwargs)
    assert org.token_requests == 1
    _assert_clean(info.value, pem)


def test_connect_jwt_with_pem_text_keeps_no_pem_or_jwt_in_frames(salesforce_org: Any, pem: str) -> None:
    """The PEM passed as ``private_key=``: no frame of ours keeps it after the key is
    loaded (connect_jwt's own arguments included)."""
    org = salesforce_org
    org.add_user("unapproved@example.com", approved=False)
    kwargs = dict(org.credentials.connect_kwargs(), username="unapproved@example.com", cache=False)
    del kwargs["private_key_file"]
    with pytest.raises(ConsumerNotApprovedError) as info:
        connect_jwt(private_key=pem, **kwargs)
    del kwargs
    _assert_clean(info.value, pem)
