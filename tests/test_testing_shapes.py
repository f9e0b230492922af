"""Shapes of the local org that clients found wrong (issue 10, "Shape details found wrong"),
and ``LocalOrg.with_app()`` for use outside pytest.

- ``GET /services/data/`` answers without a token;
- ``attributes.url`` (REST records, describe URLs, Bulk 1.0 JSON results) names the API
  version of the request;
- Metadata ``retrieve``: ``<retrieve><request>`` (jsforce, the Salesforce CLI) and
  ``<retrieveRequest>`` (the WSDL, simple-salesforce) are both read; without ``singlePackage``
  the zip holds ``unpackaged/``; ``ApexClass`` lists and retrieves the classes the Tooling API
  knows, with their bodies;
- ``/services/oauth2/userinfo`` answers OpenID Connect claims.
"""
from __future__ import annotations

import base64
import io
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict
from xml.etree import ElementTree as ET

import pytest
from _support import raw_login
import requests

from sfjwt_ext.testing import LocalOrg

MD = "http://soap.sforce.com/2006/04/metadata"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
CLASS_BODY = "public class Greeter {\n    public static String hello() { return 'hi'; }\n}"


def _login(org: Any) -> Dict[str, Any]:
    return raw_login(org)


@pytest.fixture
def token(salesforce_org: Any) -> str:
    return str(_login(salesforce_org)["access_token"])


def _get(org: Any, path: str, token: str = "", **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(org.instance_url + path, headers=headers, verify=org.ca_file, timeout=10, **kw)


# --------------------------------------------------------------------------- REST


def test_versions_listing_needs_no_token(salesforce_org: Any, token: str) -> None:
    anonymous = _get(salesforce_org, "/services/data/")
    assert anonymous.status_code == 200
    versions = anonymous.json()
    assert versions[-1] == {"label": versions[-1]["label"], "url": "/services/data/v68.0", "version": "68.0"}
    assert {"31.0", "59.0"} <= {v["version"] for v in versions}
    assert _get(salesforce_org, "/services/data", token).json() == versions
    assert _get(salesforce_org, "/services/data/v62.0/").status_code == 401   # the rest still needs one


def test_attributes_url_names_the_version_of_the_request(salesforce_org: Any, token: str) -> None:
    (account,) = salesforce_org.insert("Account", [{"Name": "Versioned"}])
    salesforce_org.insert("Contact", [{"LastName": "Child", "AccountId": account}])
    for version in ("58.0", "62.0"):
        body = _get(salesforce_org, f"/services/data/v{version}/query", token,
                    params={"q": "SELECT Id, LastName, Account.Name FROM Contact"}).json()
        record = body["records"][0]
        assert record["attributes"]["url"].startswith(f"/services/data/v{version}/sobjects/Contact/")
        assert record["Account"]["attributes"]["url"] == f"/services/data/v{version}/sobjects/Account/{account}"
        fetched = _get(salesforce_org, f"/services/data/v{version}/sobjects/Account/{account}", token).json()
        assert fetched["attributes"]["url"] == f"/services/data/v{version}/sobjects/Account/{account}"
        described = _get(salesforce_org, f"/services/data/v{version}/sobjects/Account/describe", token).json()
        assert described["urls"]["sobject"] == f"/services/data/v{version}/sobjects/Account"
        listed = _get(salesforce_org, f"/services/data/v{version}/sobjects", token).json()
        account_entry = next(o for o in listed["sobjects"] if o["name"] == "Account")
        assert account_entry["urls"]["describe"] == f"/services/data/v{version}/sobjects/Account/describe"


def test_sosl_extid_and_collections_urls_name_the_version_of_the_request(salesforce_org: Any, token: str) -> None:
    salesforce_org.add_field("Account", "Legacy_Id__c", type="string", external_id=True, unique=True)
    (account,) = salesforce_org.insert("Account", [{"Name": "Versioned Search", "Legacy_Id__c": "L-1"}])
    url = f"/services/data/v58.0/sobjects/Account/{account}"
    found = _get(salesforce_org, "/services/data/v58.0/search", token,
                 params={"q": "FIND {Versioned} RETURNING Account(Id)"}).json()
    assert [r["attributes"]["url"] for r in found["searchRecords"]] == [url]
    by_ext = _get(salesforce_org, "/services/data/v58.0/sobjects/Account/Legacy_Id__c/L-1", token).json()
    assert by_ext["attributes"]["url"] == url
    (retrieved,) = _get(salesforce_org, "/services/data/v58.0/composite/sobjects/Account", token,
                        params={"ids": account, "fields": "Name"}).json()
    assert retrieved["attributes"]["url"] == url


def test_bulk1_json_query_results_name_the_jobs_version(salesforce_org: Any, token: str) -> None:
    (account,) = salesforce_org.insert("Account", [{"Name": "Bulk versioned"}])
    base = f"{salesforce_org.instance_url}/services/async/55.0/job"
    headers = {"X-SFDC-Session": token, "Content-Type": "application/json"}
    http = requests.Session()
    http.headers.update(headers)
    job = http.post(base, json={"operation": "query", "object": "Account", "contentType": "JSON"},
                    verify=salesforce_org.ca_file).json()
    assert job["apiVersion"] == 55.0
    batch = http.post(f"{base}/{job['id']}/batch", data="SELECT Id FROM Account", verify=salesforce_org.ca_file).json()
    assert http.get(f"{base}/{job['id']}/batch/{batch['id']}", verify=salesforce_org.ca_file).json()["state"] == \
        "Completed"
    (result_id,) = http.get(f"{base}/{job['id']}/batch/{batch['id']}/result", verify=salesforce_org.ca_file).json()
    (record,) = http.get(f"{base}/{job['id']}/batch/{batch['id']}/result/{result_id}",
                         verify=salesforce_org.ca_file).json()
    assert record["attributes"]["url"] == f"/services/data/v55.0/sobjects/Account/{account}"


# --------------------------------------------------------------------------- Metadata API


def _soap(org: Any, token: str, operation: str) -> ET.Element:
    envelope = (f'<soapenv:Envelope xmlns:soapenv="{SOAP}" xmlns:met="{MD}"><soapenv:Header><met:SessionHeader>'
                f"<met:sessionId>{token}</met:sessionId></met:SessionHeader></soapenv:Header>"
                f"<soapenv:Body>{operation}</soapenv:Body></soapenv:Envelope>")
    resp = requests.post(f"{org.instance_url}/services/Soap/m/62.0", data=envelope, verify=org.ca_file, timeout=10,
                         headers={"Content-Type": "text/xml", "SOAPAction": '""'})
    assert resp.status_code == 200, resp.text
    body = ET.fromstring(resp.content).find(f"{{{SOAP}}}Body")
    assert body is not None
    return body[0]


def _retrieved_zip(org: Any, token: str, retrieve: str) -> zipfile.ZipFile:
    started = _soap(org, token, retrieve)
    retrieve_id = started.findtext(f"{{{MD}}}result/{{{MD}}}id")
    for _ in range(10):
        status = _soap(org, token, f"<met:checkRetrieveStatus><met:asyncProcessId>{retrieve_id}"
                                   "</met:asyncProcessId><met:includeZip>true</met:includeZip>"
                                   "</met:checkRetrieveStatus>")
        if status.findtext(f"{{{MD}}}result/{{{MD}}}done") == "true":
            data = base64.b64decode(status.findtext(f"{{{MD}}}result/{{{MD}}}zipFile") or "")
            return zipfile.ZipFile(io.BytesIO(data))
    raise AssertionError("retrieve not done after 10 polls")


RETRIEVE_JSFORCE = ("<met:retrieve><met:request><met:apiVersion>62.0</met:apiVersion><met:unpackaged>"
                    "<met:types><met:members>*</met:members><met:name>ApexClass</met:name></met:types>"
                    "</met:unpackaged></met:request></met:retrieve>")
RETRIEVE_WSDL = ("<met:retrieve><met:retrieveRequest><met:apiVersion>62.0</met:apiVersion>"
                 "<met:singlePackage>{single}</met:singlePackage><met:unpackaged>"
                 "<met:types><met:members>Greeter</met:members><met:name>ApexClass</met:name></met:types>"
                 "</met:unpackaged></met:retrieveRequest></met:retrieve>")


def test_retrieve_of_apex_classes_the_tooling_api_knows(salesforce_org: Any, token: str) -> None:
    salesforce_org.insert("ApexClass", [{"Name": "Greeter", "Body": CLASS_BODY, "ApiVersion": 61.0}])
    tooling = _get(salesforce_org, "/services/data/v62.0/tooling/query", token,
                   params={"q": "SELECT Name FROM ApexClass"}).json()
    assert [r["Name"] for r in tooling["records"]] == ["Greeter"]

    listed = _soap(salesforce_org, token, "<met:listMetadata><met:queries><met:type>ApexClass</met:type>"
                                          "</met:queries><met:asOfVersion>62.0</met:asOfVersion></met:listMetadata>")
    assert [(r.findtext(f"{{{MD}}}fullName"), r.findtext(f"{{{MD}}}fileName"))
            for r in listed.findall(f"{{{MD}}}result")] == [("Greeter", "classes/Greeter.cls")]

    with _retrieved_zip(salesforce_org, token, RETRIEVE_JSFORCE) as zf:       # jsforce / sf CLI shape
        assert sorted(zf.namelist()) == ["unpackaged/classes/Greeter.cls", "unpackaged/classes/Greeter.cls-meta.xml",
                                         "unpackaged/package.xml"]
        assert zf.read("unpackaged/classes/Greeter.cls").decode() == CLASS_BODY
        assert b"<apiVersion>61.0</apiVersion>" in zf.read("unpackaged/classes/Greeter.cls-meta.xml")
        assert b"<members>Greeter</members>" in zf.read("unpackaged/package.xml")
    with _retrieved_zip(salesforce_org, token, RETRIEVE_WSDL.format(single="false")) as zf:
        assert "unpackaged/classes/Greeter.cls" in zf.namelist()
    with _retrieved_zip(salesforce_org, token, RETRIEVE_WSDL.format(single="true")) as zf:
        assert sorted(zf.namelist()) == ["classes/Greeter.cls", "classes/Greeter.cls-meta.xml", "package.xml"]

    read = _soap(salesforce_org, token, "<met:readMetadata><met:type>ApexClass</met:type>"
                                        "<met:fullNames>Greeter</met:fullNames></met:readMetadata>")
    content = read.findtext(f"{{{MD}}}result/{{{MD}}}records/{{{MD}}}content")
    assert base64.b64decode(content or "").decode() == CLASS_BODY


# --------------------------------------------------------------------------- OAuth userinfo


def test_userinfo_answers_openid_connect_claims(salesforce_org: Any) -> None:
    login = _login(salesforce_org)
    resp = requests.get(f"{salesforce_org.login_url}/services/oauth2/userinfo", verify=salesforce_org.ca_file,
                        headers={"Authorization": f"Bearer {login['access_token']}"}, timeout=10)
    assert resp.status_code == 200
    claims = resp.json()
    user = salesforce_org.credentials
    assert claims["sub"] == login["id"]                  # the identity URL
    assert claims["user_id"] == user.user_id and claims["organization_id"] == salesforce_org.org_id
    assert claims["preferred_username"] == user.username
    assert claims["email"] == user.username and claims["email_verified"] is True
    for name in ("name", "nickname", "given_name", "family_name", "zoneinfo", "locale", "updated_at", "urls",
                 "picture", "profile", "address", "user_type", "language", "utcOffset", "photos"):
        assert name in claims, name
    assert claims["zoneinfo"] == "America/Los_Angeles"
    assert claims["updated_at"].endswith("Z")
    # the identity body's own names are not OpenID claims
    assert not {"id", "username", "display_name", "first_name", "last_name", "nick_name", "timezone",
                "asserted_user"} & set(claims)


# --------------------------------------------------------------------------- outside pytest


def test_with_app_is_a_started_org_with_credentials(tmp_path: Path) -> None:
    from sfjwt_ext import connect_jwt

    with LocalOrg.with_app() as org:
        assert org.running and org.credentials is not None
        key_file = org.credentials.private_key_file
        assert os.path.exists(key_file) and oct(os.stat(key_file).st_mode & 0o777) == "0o600"
        sf = connect_jwt(**org.credentials.connect_kwargs(), cache=False)
        sf.bulk.Account.insert([{"Name": "Scripted"}])
        assert sf.query("SELECT Name FROM Account")["records"][0]["Name"] == "Scripted"
    assert not org.running and not os.path.exists(key_file)     # the org's temp folder is gone

    org = LocalOrg.with_app(tmp_path / "keys", username="ada@example.com", api_version="61.0")
    try:
        assert org.credentials.username == "ada@example.com"
        assert Path(org.credentials.private_key_file).parent == tmp_path / "keys"
        assert org.api_version == "61.0"
    finally:
        org.stop()
    assert (tmp_path / "keys" / "salesforce.key").exists()            # a folder you gave stays yours


def test_with_app_failure_stops_the_org(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the key folder should go")
    threads = threading.active_count()
    with pytest.raises(OSError):
        LocalOrg.with_app(blocker)
    assert threading.active_count() == threads            # its listeners were stopped, not leaked
