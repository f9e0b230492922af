"""connect_jwt(): arguments and SF_* environment, the returned client, process-level reuse."""
from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import simple_salesforce
from simple_salesforce.api import DEFAULT_API_VERSION

from sfjwt_ext.client import SalesforceJWT, clear_cache, connect_jwt
from sfjwt_ext.auth.transport import RefreshingSession

SOQL = "SELECT Id, Name FROM Account"


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    salesforce_org.insert("Account", [{"Name": f"Acme {i}"} for i in range(4)])
    return salesforce_org


def test_connect_with_arguments(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs())
    assert isinstance(sf, simple_salesforce.Salesforce)
    assert isinstance(sf, SalesforceJWT)
    assert isinstance(sf.session, RefreshingSession)
    assert sf.sf_version == DEFAULT_API_VERSION
    assert f"https://{sf.sf_instance}" == org.instance_url
    assert sf.query(SOQL)["totalSize"] == 4
    assert org.token_requests == 1
    assert sf.login_target.token_url == org.token_url
    assert sf.token.org_id == org.org_id


def test_connect_from_environment(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in org.credentials.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SF_API_VERSION", "61.0")
    sf = connect_jwt(cache=False)
    assert sf.sf_version == "61.0"
    assert sf.session.verify == org.ca_file           # SF_CA_BUNDLE
    assert sf.query(SOQL)["totalSize"] == 4


def test_query_all_across_pages(org: Any) -> None:
    org.page_size = 3
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    first = sf.query(SOQL)
    assert first["done"] is False and len(first["records"]) == 3
    rows = sf.query_all(SOQL)["records"]
    assert sorted(r["Name"] for r in rows) == [f"Acme {i}" for i in range(4)]


def test_second_connect_reuses_the_token_and_the_refresher(org: Any) -> None:
    kwargs = org.credentials.connect_kwargs()
    first = connect_jwt(**kwargs)
    assert org.token_requests == 1
    # whatever session/verify/proxies it gets, the same login is reused
    second = connect_jwt(**kwargs, session=requests.Session(), proxies={})
    assert org.token_requests == 1
    assert second.refresher is first.refresher
    assert second.session_id == first.session_id
    assert second.session is not first.session
    # a refresh by one client serves the other
    org.expire_all_sessions()
    second.query(SOQL)
    assert org.token_requests == 2
    assert first.session_id == second.session_id
    assert first.headers["Authorization"] == "Bearer " + second.session_id
    first.query(SOQL)
    assert org.token_requests == 2

    # cache=False logs in again, and does not replace the cached login
    third = connect_jwt(**kwargs, cache=False)
    assert org.token_requests == 3
    assert third.refresher is not first.refresher
    assert connect_jwt(**kwargs).refresher is first.refresher
    clear_cache()
    assert connect_jwt(**kwargs).refresher is not first.refresher
    assert org.token_requests == 4


def test_reuse_with_the_same_transport_settings_shares_the_connection_pool(org: Any) -> None:
    kwargs = org.credentials.connect_kwargs()
    first = connect_jwt(**kwargs)
    first.query(SOQL)
    connections = len([r for r in org.requests if r.host == "instance"])
    again = connect_jwt(**kwargs)  # a notebook cell run again
    assert again.session is first.session and again.refresher is first.refresher
    assert connect_jwt(**kwargs, timeout=5).session is not first.session  # other settings: own session
    again.query(SOQL)
    assert len([r for r in org.requests if r.host == "instance"]) == connections + 1
    assert org.token_requests == 2  # timeout=5 changes the token requests: its own login


def test_cached_connect_sees_a_changed_environment(org: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    creds = org.credentials
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    first = connect_jwt()
    assert first.username == creds.username
    other = org.add_user("second@example.com")
    assert other
    monkeypatch.setenv("SF_USERNAME", "second@example.com")
    second = connect_jwt()  # settings are memoized, but keyed by the environment
    assert second.username == "second@example.com" and second.refresher is not first.refresher
    assert org.token_requests == 2
    # a profile file edited between two calls is read again
    config = tmp_path / "config.ini"
    monkeypatch.setenv("SFJWT_CONFIG", str(config))
    monkeypatch.delenv("SF_USERNAME")
    config.write_text(f"[default]\nusername = {creds.username}\n")
    config.chmod(0o600)
    assert connect_jwt().username == creds.username
    config.write_text("[default]\nusername = second@example.com\n")
    assert connect_jwt().username == "second@example.com"


def test_failed_login_is_not_cached(org: Any) -> None:
    from sfjwt_ext.errors import AuthenticationError

    org.inject_fault("token", count=1, status=400,
                     body={"error": "invalid_grant", "error_description": "invalid assertion"})
    kwargs = org.credentials.connect_kwargs()
    with pytest.raises(AuthenticationError):
        connect_jwt(**kwargs)
    sf = connect_jwt(**kwargs)
    assert sf.query(SOQL)["totalSize"] == 4


def test_refused_login_raises_salesforce_authentication_failed(org: Any) -> None:
    org.set_user(org.credentials.username, approved=False)
    with pytest.raises(simple_salesforce.exceptions.SalesforceAuthenticationFailed):
        connect_jwt(**org.credentials.connect_kwargs())


def test_repr_never_shows_the_token(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    text, html_text = repr(sf), sf._repr_html_()
    token = sf.session_id
    for shown in (text, html_text, repr(sf.session), repr(sf.refresher), repr(sf.token), repr(sf.settings)):
        assert token not in shown
        assert token[-20:] not in shown
    assert org.credentials.username in text and org.org_id in text
    assert "refreshes=0" in text
    assert "127.0.0.1" in html_text


def test_settings_on_the_client_hold_no_key_material(org: Any) -> None:
    with open(org.credentials.private_key_file) as fh:
        pem = fh.read()
    kwargs = org.credentials.connect_kwargs()
    kwargs.pop("private_key_file")
    sf = connect_jwt(**kwargs, private_key=pem, cache=False)
    assert sf.query(SOQL)["totalSize"] == 4
    assert sf.settings.private_key == "(hidden)"
    assert sf.settings.username == org.credentials.username
    assert "PRIVATE KEY" not in repr(sf.settings)
    assert not any(isinstance(v, str) and "PRIVATE KEY" in v for v in vars(sf).values())


def test_unknown_names_with_underscore_are_attribute_errors(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    # IPython probes these; simple-salesforce would answer with an SFType
    assert not hasattr(sf, "_ipython_canary_method_should_not_exist_")
    assert not hasattr(sf, "_repr_markdown_")
    assert sf.Account.name == "Account"


def test_verify_false_works_and_warns_once(org: Any, caplog: pytest.LogCaptureFixture) -> None:
    import warnings

    import sfjwt_ext.client as connect_module

    connect_module._warn_insecure.cache_clear()
    kwargs = org.credentials.connect_kwargs()
    kwargs["verify"] = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with caplog.at_level(logging.WARNING, logger="sfjwt_ext"):
                sf = connect_jwt(**kwargs, cache=False)
                connect_jwt(**kwargs, cache=False)
                assert sf.query(SOQL)["totalSize"] == 4
    finally:
        connect_module._warn_insecure.cache_clear()
    warned = [r for r in caplog.records if "verify=False" in r.getMessage()]
    assert len(warned) == 1
    assert sf.session.verify is False


def test_login_and_refresh_are_logged_without_secrets(org: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="sfjwt_ext"):
        sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
        first = sf.session_id
        org.expire_all_sessions()
        sf.query(SOQL)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("sfjwt_ext")]
    assert any("logged in" in m for m in messages)
    assert any("refreshed" in m for m in messages)
    for m in messages:
        assert first not in m and sf.session_id not in m


def test_query_df_delegates(org: Any) -> None:
    pytest.importorskip("pandas")
    try:
        import sfjwt_ext.data.dataframe  # noqa: F401
    except ImportError:
        pytest.skip("sfjwt_ext.data.dataframe is not there yet")
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    frame = sf.query_df(SOQL)
    assert len(frame) == 4


def test_reserved_salesforce_arguments_are_refused(org: Any) -> None:
    with pytest.raises(TypeError, match="session_id"):
        connect_jwt(**org.credentials.connect_kwargs(), session_id="x")


def test_cached_settings_notice_a_deleted_ca_bundle(org: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from sfjwt_ext.errors import ConfigurationError

    bundle = tmp_path / "org-ca.pem"
    bundle.write_bytes(open(org.ca_file, "rb").read())
    for name, value in org.credentials.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SF_CA_BUNDLE", str(bundle))
    assert connect_jwt().query("SELECT Id FROM Account")["done"]
    bundle.unlink()
    # the memoized settings must not hide that the CA bundle is gone
    with pytest.raises(ConfigurationError, match="SF_CA_BUNDLE"):
        connect_jwt()


def test_cached_settings_see_a_same_size_profile_edit(org: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import os

    creds = org.credentials
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SF_USERNAME")
    assert org.add_user("aaaa@example.com") and org.add_user("bbbb@example.com")
    config = tmp_path / "config.ini"
    monkeypatch.setenv("SFJWT_CONFIG", str(config))
    config.write_text("[default]\nusername = aaaa@example.com\n")
    config.chmod(0o600)
    stat = os.stat(config)
    assert connect_jwt().username == "aaaa@example.com"
    # same size, same inode, same mtime (an edit within the timestamp granularity)
    config.write_text("[default]\nusername = bbbb@example.com\n")
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert connect_jwt().username == "bbbb@example.com"
