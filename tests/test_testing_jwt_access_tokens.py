"""JWT-based access tokens in the local org (issue 15, item 5): an app with
``jwt_access_tokens=True`` (or ``isNamedUserJwtEnabled`` deployed) answers a signed RS256 JWT of
Salesforce's shape with ``token_format: "jwt"``; REST and Bulk 2.0 take it, expiry and
revocation work on it, the SOAP (Metadata) API refuses it below API 68.0."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import jwt
import pytest
import requests
from _support import raw_login

from sfjwt_ext.testing import LocalOrg

SOAP = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
        'envelope/" xmlns:met="http://soap.sforce.com/2006/04/metadata"><soapenv:Header><met:SessionHeader>'
        "<met:sessionId>{token}</met:sessionId></met:SessionHeader></soapenv:Header><soapenv:Body>"
        "<met:listMetadata><met:queries><met:type>ApexClass</met:type></met:queries></met:listMetadata>"
        "</soapenv:Body></soapenv:Envelope>")


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LocalOrg]:
    with LocalOrg() as started:
        started.credentials = started.new_app_with_key(tmp_path, jwt_access_tokens=True)
        yield started


def _rest(org: LocalOrg, token: str, path: str) -> requests.Response:
    return requests.get(org.instance_url + path, headers={"Authorization": f"Bearer {token}"}, verify=org.ca_file,
                        timeout=10)


def _soap(org: LocalOrg, token: str, version: str) -> requests.Response:
    return requests.post(f"{org.instance_url}/services/Soap/m/{version}", data=SOAP.format(token=token).encode(),
                         headers={"Content-Type": "text/xml", "SOAPAction": "listMetadata"}, verify=org.ca_file,
                         timeout=10)


def test_the_token_is_a_signed_jwt_of_salesforce_shape(org: LocalOrg) -> None:
    body: Dict[str, Any] = raw_login(org)
    token = body["access_token"]
    assert body["token_format"] == "jwt"
    assert token.startswith("eyJ") and token.count(".") == 2 and 1000 <= len(token) <= 1500
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"], header["tty"]) == ("RS256", "JWT", "sfdc-core-token")
    assert header["kid"].startswith(f"CORE_ATJWT.{org.org_id[:15]}.")
    claims = jwt.decode(token, org.token_signer.public_key(), algorithms=["RS256"], audience=org.instance_url)
    assert org.credentials is not None
    assert claims["sub"] == f"uid:{org.credentials.user_id}"
    assert claims["client_id"] == org.credentials.consumer_key
    assert (claims["iss"], claims["mty"], claims["hsc"]) == (org.instance_url, "oauth", False)
    assert claims["scp"] == "api refresh_token"          # the app's Api, RefreshToken
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    # org and user come from the identity URL, not from a token prefix
    assert body["id"].endswith(f"/id/{org.org_id}/{org.credentials.user_id}")


def test_an_opaque_app_answers_no_token_format(tmp_path: Path) -> None:
    with LocalOrg.with_app(tmp_path) as org:
        body = raw_login(org)
        assert "token_format" not in body and body["access_token"].startswith(org.org_id[:15] + "!")


def test_rest_and_bulk2_take_it(org: LocalOrg) -> None:
    token = raw_login(org)["access_token"]
    assert _rest(org, token, "/services/data/v62.0/query?q=SELECT+Id+FROM+Account").status_code == 200
    job = requests.post(org.instance_url + "/services/data/v62.0/jobs/query", verify=org.ca_file, timeout=10,
                        headers={"Authorization": f"Bearer {token}"},
                        json={"operation": "query", "query": "SELECT Id FROM Account"})
    assert job.status_code == 200, job.text
    assert _rest(org, token, f"/services/data/v62.0/jobs/query/{job.json()['id']}").status_code == 200


def test_soap_below_68_refuses_it(org: LocalOrg) -> None:
    token = raw_login(org)["access_token"]
    refused = _soap(org, token, "62.0")
    assert refused.status_code == 500
    assert b"<faultcode>sf:INVALID_SESSION_ID</faultcode>" in refused.content
    assert b"This session is not valid for use with the API" in refused.content
    assert _soap(org, token, "67.0").status_code == 500
    assert _soap(org, token, "68.0").status_code == 200


def test_expiry_and_revocation_work_on_it(org: LocalOrg) -> None:
    token = raw_login(org)["access_token"]
    assert _rest(org, token, "/services/data/v62.0/limits").status_code == 200
    org.revoke(token)
    gone = _rest(org, token, "/services/data/v62.0/limits")
    assert gone.status_code == 401 and gone.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    fresh = raw_login(org)["access_token"]
    assert fresh != token and _rest(org, fresh, "/services/data/v62.0/limits").status_code == 200
    org.expire_all_sessions()
    assert _rest(org, fresh, "/services/data/v62.0/limits").status_code == 401


def test_a_deployed_app_issues_them_when_named_user_jwt_is_enabled(org: LocalOrg) -> None:
    assert org.credentials is not None
    org.set_app(org.credentials.consumer_key, jwt_access_tokens=False)
    org.expire_all_sessions()
    assert raw_login(org)["access_token"].startswith(org.org_id[:15])
