"""TLS: the token request and every API call verify certificates by default.

``REQUESTS_CA_BUNDLE`` is set to the system bundle for the whole suite (conftest.py), as on
the developers' machines; the local org's private CA is not in it. requests lets that
variable override ``Session.verify``: our ``verify=`` / ``SF_CA_BUNDLE`` must win anyway.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict

import pytest
import requests

from sfjwt_ext import connect_jwt
from sfjwt_ext.errors import TokenEndpointUnavailable

SOQL = "SELECT Id, Name FROM Account"


pytestmark = pytest.mark.usefixtures("no_sf_settings")  # no SF_* variable, no profile file


@pytest.fixture
def org(salesforce_org: Any) -> Any:
    assert os.environ.get("REQUESTS_CA_BUNDLE")
    assert os.environ["REQUESTS_CA_BUNDLE"] != salesforce_org.ca_file
    salesforce_org.insert("Account", [{"Name": "TLS 1"}, {"Name": "TLS 2"}])
    return salesforce_org


def _without_ca(org: Any) -> Dict[str, Any]:
    kwargs = org.credentials.connect_kwargs()
    kwargs.pop("verify")
    return kwargs


def test_without_the_org_ca_the_login_fails_clearly_and_is_not_retried(org: Any) -> None:
    with pytest.raises(TokenEndpointUnavailable) as info:
        connect_jwt(**_without_ca(org), cache=False)
    exc = info.value
    assert exc.attempts == 1                      # a certificate problem is not retried
    assert isinstance(exc.last_cause, requests.exceptions.SSLError)
    text = str(exc)
    assert "verify=" in text and "SF_CA_BUNDLE" in text
    assert org.login_url in text
    assert org.token_requests == 0                # the handshake failed: nothing was posted


def test_api_calls_verify_certificates_too(org: Any) -> None:
    sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
    assert sf.query(SOQL)["totalSize"] == 2
    sf.session.verify = True                      # as if the org's CA had not been given
    with pytest.raises(requests.exceptions.SSLError):
        sf.query(SOQL)
    sf.session.verify = org.ca_file
    assert sf.query(SOQL)["totalSize"] == 2


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_works_only_when_asked_and_warns(org: Any, caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sfjwt_ext.client as connect_module

    connect_module._warn_insecure.cache_clear()  # warned once per process
    caplog.set_level(logging.WARNING, logger="sfjwt_ext")
    with pytest.raises(TokenEndpointUnavailable):
        connect_jwt(**_without_ca(org), cache=False)
    assert not [r for r in caplog.records if "verify=False" in r.getMessage()]
    sf = connect_jwt(**_without_ca(org), verify=False, cache=False)
    assert sf.query(SOQL)["totalSize"] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "verify=False" in r.getMessage()]
    assert len(warnings) == 1
    assert "SF_CA_BUNDLE" in warnings[0].getMessage()


def test_verify_argument_wins_over_requests_ca_bundle(org: Any) -> None:
    sf = connect_jwt(**_without_ca(org), verify=org.ca_file, cache=False)
    assert sf.query(SOQL)["totalSize"] == 2
    org.expire_all_sessions()                     # the refresh goes through the same CA
    assert sf.query(SOQL)["totalSize"] == 2
    assert sf.refresher.refresh_count == 1


def test_sf_ca_bundle_wins_over_requests_ca_bundle(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_CA_BUNDLE", org.ca_file)
    sf = connect_jwt(**_without_ca(org), cache=False)
    assert sf.query(SOQL)["totalSize"] == 2
    org.expire_all_sessions()
    assert sf.query(SOQL)["totalSize"] == 2


def test_sf_ca_bundle_is_not_overridden_the_other_way_round(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE trusting the org does not rescue a SF_CA_BUNDLE that does not:
    the CA bundle the user named is the one used."""
    other_bundle = os.environ["REQUESTS_CA_BUNDLE"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)
    monkeypatch.setenv("SF_CA_BUNDLE", other_bundle)
    with pytest.raises(TokenEndpointUnavailable) as info:
        connect_jwt(**_without_ca(org), cache=False)
    assert other_bundle in str(info.value)
    assert org.token_requests == 0
