"""The local org as Salesforce is in 2026 (issue 15, item 5): External Client Apps and legacy
Connected Apps, pre-authorization by permission set or profile, the token errors of ECAs, the
propagation delay, the Metadata API of the five ECA types (deploy, list, read, retrieve; a new
ConnectedApp refused), Connect REST ``apps/oauth``, the token endpoint on the instance host and
API versions up to 68.0. Everything over HTTPS with simple-salesforce, requests and PyJWT."""
from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfjwt_ext.testing import LocalOrg
from sfjwt_ext.testing.core.tls import new_app_key_pair

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
NS = "http://soap.sforce.com/2006/04/metadata"
ADMIN = "admin@example.com"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LocalOrg]:
    with LocalOrg.with_app(tmp_path / "admin", username=ADMIN) as started:
        yield started


@pytest.fixture(scope="module")
def keys() -> Dict[str, Any]:
    first, cert1 = new_app_key_pair("eca one")
    second, cert2 = new_app_key_pair("eca two")
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()   # noqa: E731
    return {"key1": first, "cert1": pem(cert1), "key2": second, "cert2": pem(cert2)}


def login(org: LocalOrg, consumer_key: str, username: str, key: Any, *, url: Optional[str] = None) -> requests.Response:
    claims = {"iss": consumer_key, "sub": username, "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    assertion = jwt.encode(claims, key, algorithm="RS256")
    return requests.post((url or org.login_url) + "/services/oauth2/token",
                         data={"grant_type": JWT_BEARER, "assertion": assertion}, verify=org.ca_file, timeout=10)


def refusal(response: requests.Response) -> Dict[str, str]:
    assert response.status_code == 400, response.text
    return dict(response.json())


def admin_key(org: LocalOrg) -> Any:
    assert org.credentials is not None
    return serialization.load_pem_private_key(Path(org.credentials.private_key_file).read_bytes(), None)


@pytest.fixture
def sf(org: LocalOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)   # zeep (mdapi) uses its own session
    assert org.credentials is not None
    token = login(org, org.credentials.consumer_key, ADMIN, admin_key(org)).json()["access_token"]
    http = requests.Session()
    http.verify = org.ca_file
    return Salesforce(session_id=token, instance_url=org.instance_url, session=http, version="66.0")


# --------------------------------------------------------------------------- apps and policies
def _session(org: LocalOrg) -> requests.Session:
    http = requests.Session()
    http.verify = org.ca_file
    return http


def test_new_apps_are_external_client_apps_and_connected_apps_still_work(org: LocalOrg, keys: Dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)   # zeep (mdapi) uses its own session
    eca = org.create_app(certificate=keys["cert1"])
    legacy = org.create_app(certificate=keys["cert1"], kind="connected_app", name="Old App")
    assert (org.apps[eca].kind, org.apps[legacy].kind) == ("eca", "connected_app")
    assert org.apps[eca].app_id.startswith("0xI") and org.apps[eca].consumer_id.startswith("888")
    assert eca.startswith("3MVG9") and len(eca) == 85
    for consumer_key in (eca, legacy):
        assert login(org, consumer_key, ADMIN, keys["key1"]).status_code == 200
    md = Salesforce(session_id=login(org, eca, ADMIN, keys["key1"]).json()["access_token"], session=_session(org),
                    instance_url=org.instance_url, version="66.0").mdapi
    listed = md.list_metadata([md.ListMetadataQuery(type="ConnectedApp")])
    assert [p.fullName for p in listed] == ["Old_App"]
    read = md.ConnectedApp.read(["Old_App"])
    assert read["oauthConfig"]["consumerKey"] == legacy and read["oauthConfig"]["isAdminApproved"] is False
    with pytest.raises(ValueError, match="kind"):
        org.create_app(certificate=keys["cert1"], kind="canvas")


def test_permission_set_pre_authorizes_over_rest(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    consumer_key = org.create_app(certificate=keys["cert1"], permission_sets=["sfjwt_users"])
    assert refusal(login(org, consumer_key, ADMIN, keys["key1"])) == {
        "error": "invalid_app_access", "error_description": "user is not admin approved to access this app"}

    ps = sf.PermissionSet.create({"Name": "sfjwt_users", "Label": "sfjwt users"})["id"]
    me = sf.query(f"SELECT Id, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Username = '{ADMIN}'")
    user = me["records"][0]
    assert (user["IsActive"], user["Profile"]["Name"]) == (True, "System Administrator")
    assignment = sf.PermissionSetAssignment.create({"AssigneeId": user["Id"], "PermissionSetId": ps})["id"]
    with pytest.raises(SalesforceMalformedRequest) as twice:      # a user holds a permission set once
        sf.PermissionSetAssignment.create({"AssigneeId": user["Id"], "PermissionSetId": ps})
    assert twice.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert login(org, consumer_key, ADMIN, keys["key1"]).status_code == 200
    rows = sf.query(f"SELECT Id, PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = '{user['Id']}'")
    assert [r["PermissionSet"]["Name"] for r in rows["records"]] == ["sfjwt_users"]

    sf.PermissionSetAssignment.delete(assignment)          # what `sf data delete record` sends
    assert sf.query(f"SELECT Id FROM PermissionSetAssignment WHERE Id = '{assignment}'")["totalSize"] == 0
    assert refusal(login(org, consumer_key, ADMIN, keys["key1"]))["error"] == "invalid_app_access"
    by_id = org.create_app(certificate=keys["cert1"], permission_sets=[ps[:15]])
    org.assign_permission_set(ADMIN, "sfjwt_users")
    assert login(org, by_id, ADMIN, keys["key1"]).status_code == 200


@pytest.mark.parametrize("profiles,allowed", [(["Standard User"], False), (["System Administrator"], True),
                                              (["Admin"], True), ([], False)])
def test_profiles_pre_authorize(org: LocalOrg, keys: Dict[str, Any], profiles: list, allowed: bool) -> None:
    consumer_key = org.create_app(certificate=keys["cert1"], profiles=profiles)
    response = login(org, consumer_key, ADMIN, keys["key1"])
    assert response.status_code == (200 if allowed else 400)
    if not allowed:
        assert response.json()["error"] == "invalid_app_access"


def test_profile_by_id_and_self_authorize(org: LocalOrg, keys: Dict[str, Any]) -> None:
    by_id = org.create_app(certificate=keys["cert1"], profiles=[org.store.admin_profile_id])
    assert login(org, by_id, ADMIN, keys["key1"]).status_code == 200
    open_app = org.create_app(certificate=keys["cert1"], permitted_users="AllSelfAuthorized")
    org.add_user("new@example.com", approved=False)
    assert refusal(login(org, open_app, "new@example.com", keys["key1"])) == {
        "error": "invalid_grant", "error_description": "user hasn't approved this consumer"}


def test_unknown_uninstalled_and_propagating_apps(org: LocalOrg, keys: Dict[str, Any]) -> None:
    assert refusal(login(org, "3MVG9nope", ADMIN, keys["key1"])) == {
        "error": "invalid_client_id", "error_description": "client identifier invalid"}
    consumer_key = org.create_app(certificate=keys["cert1"])
    org.set_app(consumer_key, installed=False)
    assert refusal(login(org, consumer_key, ADMIN, keys["key1"])) == {
        "error": "app_not_found", "error_description": "External client app is not installed in this org"}
    org.app_propagation_delay = 0.5
    org.set_app(consumer_key, installed=True)     # a changed app propagates again
    assert refusal(login(org, consumer_key, ADMIN, keys["key1"]))["error"] == "invalid_client_id"
    fresh = org.create_app(certificate=keys["cert1"])
    assert refusal(login(org, fresh, ADMIN, keys["key1"]))["error"] == "invalid_client_id"
    deadline = time.monotonic() + 10
    while login(org, fresh, ADMIN, keys["key1"]).status_code != 200:
        assert time.monotonic() < deadline, "the app never propagated"
    assert login(org, consumer_key, ADMIN, keys["key1"]).status_code == 200


def test_instance_host_takes_the_token_post_as_a_my_domain(org: LocalOrg) -> None:
    assert org.credentials is not None
    response = login(org, org.credentials.consumer_key, ADMIN, admin_key(org), url=org.instance_url)
    assert response.status_code == 200
    body = response.json()
    assert body["instance_url"] == org.instance_url
    limits = requests.get(org.instance_url + "/services/data/v68.0/limits", verify=org.ca_file, timeout=10,
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert limits.status_code == 200
    assert org.token_requests == 1


def test_api_versions_up_to_68(org: LocalOrg, sf: Salesforce) -> None:
    versions = requests.get(org.instance_url + "/services/data/", verify=org.ca_file, timeout=10).json()
    assert versions[-1] == {"label": "Winter '27", "url": "/services/data/v68.0", "version": "68.0"}
    headers = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    get = lambda path: requests.get(org.instance_url + path, headers=headers, verify=org.ca_file, timeout=10)  # noqa
    assert get("/services/data/v68.0/query?q=SELECT+Id+FROM+Account").status_code == 200
    assert get("/services/data/v69.0/query?q=SELECT+Id+FROM+Account").status_code == 404
    job = requests.post(org.instance_url + "/services/data/v68.0/jobs/query", headers=headers, verify=org.ca_file,
                        timeout=10, json={"operation": "query", "query": "SELECT Id FROM Account"})
    assert job.status_code == 200 and job.json()["apiVersion"] == 68.0
    sf68 = Salesforce(session_id=sf.session_id, instance_url=org.instance_url, session=sf.session, version="68.0")
    assert {p.fullName for p in sf68.mdapi.list_metadata([sf68.mdapi.ListMetadataQuery(type="PermissionSet")])} \
        == set()


# --------------------------------------------------------------------------- Metadata API
def _file(type_name: str, body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{type_name} xmlns="{NS}">{body}</{type_name}>\n'


def eca_package(app: str, certificate: str, *, consumer_key: Optional[str] = None, permission_set: str = "",
                profile: str = "", jwt_tokens: bool = False, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """An ECA in Metadata API format, as ``sf project deploy start --metadata-dir`` sends it."""
    key = f"<consumerKey>{consumer_key}</consumerKey>" if consumer_key else ""
    files = {
        "package.xml": _file("Package", "".join(
            f"<types><members>*</members><name>{t}</name></types>" for t in (
                "ExternalClientApplication", "ExtlClntAppGlobalOauthSettings", "ExtlClntAppOauthSettings",
                "ExtlClntAppOauthConfigurablePolicies", "ExtlClntAppConfigurablePolicies", "PermissionSet"))
            + "<version>66.0</version>"),
        f"externalClientApps/{app}.eca": _file("ExternalClientApplication",
                                               "<contactEmail>admin@example.com</contactEmail><distributionState>"
                                               f"Local</distributionState><isProtected>false</isProtected><label>{app}"
                                               "</label>"),
        f"extlClntAppGlobalOauthSets/{app}_glbloauth.ecaGlblOauth": _file(
            "ExtlClntAppGlobalOauthSettings",
            f"<callbackUrl>http://localhost:1717/OauthRedirect</callbackUrl><certificate>{certificate}</certificate>"
            f"{key}<externalClientApplication>{app}</externalClientApplication><isConsumerSecretOptional>false"
            f"</isConsumerSecretOptional><isNamedUserJwtEnabled>{str(jwt_tokens).lower()}</isNamedUserJwtEnabled>"
            f"<label>{app}</label>"),
        f"extlClntAppOauthSettings/{app}_oauth.ecaOauth": _file(
            "ExtlClntAppOauthSettings", "<commaSeparatedOauthScopes>Api, RefreshToken</commaSeparatedOauthScopes>"
            f"<externalClientApplication>{app}</externalClientApplication><label>{app}</label>"),
        f"extlClntAppOauthPolicies/{app}_oauthPlcy.ecaOauthPlcy": _file(
            "ExtlClntAppOauthConfigurablePolicies",
            f"<commaSeparatedPermissionSet>{permission_set}</commaSeparatedPermissionSet>"
            f"<commaSeparatedProfile>{profile}</commaSeparatedProfile>"
            f"<externalClientApplication>{app}</externalClientApplication>"
            "<ipRelaxationPolicyType>ENFORCE</ipRelaxationPolicyType>"
            f"<label>{app}</label><permittedUsersPolicyType>AdminApprovedPreAuthorized</permittedUsersPolicyType>"),
        f"extlClntAppPolicies/{app}_plcy.ecaPlcy": _file(
            "ExtlClntAppConfigurablePolicies", f"<externalClientApplication>{app}</externalClientApplication>"
            f"<isEnabled>true</isEnabled><isOauthPluginEnabled>true</isOauthPluginEnabled><label>{app}</label>"),
    }
    files.update(extra or {})
    return files


def deploy(sf: Salesforce, files: Dict[str, str]) -> Any:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    buf.seek(0)
    async_id = sf.deploy(buf, sandbox=False)["asyncId"]
    deadline = time.monotonic() + 30
    while True:
        status = sf.checkDeployStatus(async_id)
        if status["state"] in ("Succeeded", "Failed"):
            return status
        assert time.monotonic() < deadline, "the deploy never finished"


PERMSET = _file("PermissionSet", "<hasActivationRequired>false</hasActivationRequired><label>JWT users</label>")


def test_deployed_eca_takes_jwt_logins_for_its_permission_set(org: LocalOrg, sf: Salesforce,
                                                              keys: Dict[str, Any]) -> None:
    wanted = "3MVG9" + "A" * 80
    files = eca_package("jwt_app", keys["cert1"], consumer_key=wanted, permission_set="jwt_users",
                        extra={"permissionsets/jwt_users.permissionset": PERMSET})
    status = deploy(sf, files)
    assert status["state"] == "Succeeded", status
    assert refusal(login(org, wanted, ADMIN, keys["key1"]))["error"] == "invalid_app_access"
    org.assign_permission_set(ADMIN, "jwt_users")
    assert login(org, wanted, ADMIN, keys["key1"]).status_code == 200
    assert sf.query("SELECT Label FROM PermissionSet WHERE Name = 'jwt_users'")["records"][0]["Label"] == "JWT users"

    md = sf.mdapi
    listed = {(p.type, p.fullName) for p in md.list_metadata([md.ListMetadataQuery(type=t) for t in (
        "ExternalClientApplication", "ExtlClntAppGlobalOauthSettings", "ExtlClntAppOauthConfigurablePolicies")])}
    assert {("ExternalClientApplication", "jwt_app"), ("ExtlClntAppGlobalOauthSettings", "jwt_app_glbloauth"),
            ("ExtlClntAppOauthConfigurablePolicies", "jwt_app_oauthPlcy")} <= listed
    oauth = md.ExtlClntAppGlobalOauthSettings.read(["jwt_app_glbloauth"])
    assert oauth["consumerKey"] == wanted and oauth["externalClientApplication"] == "jwt_app"
    policy = md.ExtlClntAppOauthConfigurablePolicies.read(["jwt_app_oauthPlcy"])
    assert (policy["commaSeparatedPermissionSet"], policy["permittedUsersPolicyType"]) == \
        ("jwt_users", "AdminApprovedPreAuthorized")


def test_redeploy_rotates_the_certificate_and_keeps_one_app(org: LocalOrg, sf: Salesforce,
                                                            keys: Dict[str, Any]) -> None:
    assert deploy(sf, eca_package("rotating", keys["cert1"], profile="System Administrator"))["state"] == "Succeeded"
    app = org.app_registry.named("rotating")
    assert app is not None and app.consumer_key.startswith("3MVG9") and len(app.consumer_key) == 85
    in_effect = sf.mdapi.ExtlClntAppGlobalOauthSettings.read(["rotating_glbloauth"])["consumerKey"]
    assert in_effect == app.consumer_key
    assert login(org, in_effect, ADMIN, keys["key1"]).status_code == 200

    again = eca_package("rotating", keys["cert2"], consumer_key="3MVG9" + "B" * 80, profile="System Administrator")
    assert deploy(sf, again)["state"] == "Succeeded"
    assert [a.developer_name for a in org.app_registry.all("eca")].count("rotating") == 1
    assert sf.mdapi.ExtlClntAppGlobalOauthSettings.read(["rotating_glbloauth"])["consumerKey"] == in_effect
    assert refusal(login(org, in_effect, ADMIN, keys["key1"])) == {"error": "invalid_grant",
                                                                    "error_description": "invalid assertion"}
    assert login(org, in_effect, ADMIN, keys["key2"]).status_code == 200


def test_new_connected_app_fails_the_deploy(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    files = {"package.xml": _file("Package", "<types><members>Legacy</members><name>ConnectedApp</name></types>"
                                             "<version>66.0</version>"),
             "connectedApps/Legacy.connectedApp": _file("ConnectedApp", "<contactEmail>a@example.com</contactEmail>"
                                                                        "<label>Legacy</label>")}
    status = deploy(sf, files)
    assert status["state"] == "Failed"
    (error,) = status["deployment_detail"]["errors"]
    assert error["type"] == "ConnectedApp" and error["file"] == "connectedApps/Legacy.connectedApp"
    assert "005228017" in error["message"] and "external client app" in error["message"]
    assert org.app_registry.named("Legacy") is None
    org.create_app(certificate=keys["cert1"], kind="connected_app", developer_name="Legacy")
    assert deploy(sf, files)["state"] == "Succeeded"          # editing an existing one is not blocked


def test_a_bad_component_fails_the_whole_deploy(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    files = eca_package("broken", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
    status = deploy(sf, files)
    assert status["state"] == "Failed"
    assert [e["file"] for e in status["deployment_detail"]["errors"]] == [
        "extlClntAppGlobalOauthSets/broken_glbloauth.ecaGlblOauth"]
    assert org.app_registry.named("broken") is None
    taken = eca_package("thief", keys["cert1"], consumer_key=org.credentials.consumer_key)  # type: ignore[union-attr]
    assert deploy(sf, taken)["deployment_detail"]["errors"][0]["message"] == "The consumer key is already taken."


def test_retrieve_writes_the_consumer_key_in_effect(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    assert deploy(sf, eca_package("kept", keys["cert1"], profile="Admin"))["state"] == "Succeeded"
    app = org.app_registry.named("kept")
    assert app is not None
    async_id, _state = sf.mdapi.retrieve("eca", unpackaged={"ExtlClntAppGlobalOauthSettings": ["*"]})
    deadline = time.monotonic() + 30
    while True:
        state, _detail, _messages, zipped = sf.mdapi.retrieve_zip(async_id)
        if state == "Succeeded":
            break
        assert time.monotonic() < deadline, "the retrieve never finished"
    names = zipfile.ZipFile(io.BytesIO(zipped)).read("extlClntAppGlobalOauthSets/kept_glbloauth.ecaGlblOauth")
    assert app.consumer_key.encode() in names and b"consumerSecret" not in names


# --------------------------------------------------------------------------- Connect REST apps/oauth
def test_connect_rest_usage_and_credentials(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    assert deploy(sf, eca_package("connect_me", keys["cert1"], profile="Admin"))["state"] == "Succeeded"
    app = org.app_registry.named("connect_me")
    assert app is not None
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    get = lambda path, **kw: requests.get(org.instance_url + path, headers=headers, verify=org.ca_file,  # noqa
                                          timeout=10, **kw)
    usage = get("/services/data/v66.0/apps/oauth/usage").json()
    mine = [a for a in usage["apps"] if a["developerName"] == "connect_me"]
    assert [a["identifier"] for a in mine] == [app.app_id]
    assert usage["nextPageUrl"].startswith("/services/data/v66.0/apps/oauth/usage?page=1")
    consumers = get(f"/services/data/v66.0/apps/oauth/credentials/{app.app_id}").json()["consumers"]
    assert [(c["id"], c["key"]) for c in consumers] == [(app.consumer_id, app.consumer_key)]
    for identifier in (app.app_id, "connect_me"):
        one = get(f"/services/data/v66.0/apps/oauth/credentials/{identifier}/{app.consumer_id}",
                  params={"part": "key"}).json()
        assert one["key"] == app.consumer_key and "secret" not in one
    both = get(f"/services/data/v66.0/apps/oauth/credentials/connect_me/{app.consumer_id}?part=keyandsecret").json()
    assert len(both["secret"]) == 64
    assert get(f"/services/data/v59.0/apps/oauth/credentials/connect_me/{app.consumer_id}").status_code == 404
    assert get("/services/data/v58.0/apps/oauth/usage").status_code == 404
    assert get(f"/services/data/v66.0/apps/oauth/credentials/nope/{app.consumer_id}").status_code == 404
    assert login(org, app.consumer_key, ADMIN, keys["key1"]).status_code == 200
    users = get(mine[0]["usersUrl"]).json()["users"]
    assert [u["username"] for u in users] == [ADMIN]
    assert requests.get(org.instance_url + "/services/data/v66.0/apps/oauth/usage", verify=org.ca_file,
                        timeout=10).status_code == 401


def test_an_org_without_ecas_or_an_admin_without_metadata_rights(org: LocalOrg, sf: Salesforce,
                                                                  keys: Dict[str, Any]) -> None:
    org.external_client_apps_enabled = False
    status = deploy(sf, eca_package("off", keys["cert1"]))
    assert status["state"] == "Failed"
    assert {e["message"] for e in status["deployment_detail"]["errors"]} == {
        "Not available for deploy for this organization"}
    org.external_client_apps_enabled = True
    org.set_user(ADMIN, modify_metadata=False)
    fault = requests.post(f"{org.instance_url}/services/Soap/m/66.0", verify=org.ca_file, timeout=10,
                          headers={"Content-Type": "text/xml", "SOAPAction": "listMetadata"},
                          data=('<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" '
                                f'xmlns:m="{NS}"><e:Header><m:SessionHeader><m:sessionId>{sf.session_id}</m:sessionId>'
                                "</m:SessionHeader></e:Header><e:Body><m:listMetadata><m:queries><m:type>ApexClass"
                                "</m:type></m:queries></m:listMetadata></e:Body></e:Envelope>").encode())
    assert fault.status_code == 500
    assert b"<faultcode>sf:INSUFFICIENT_ACCESS</faultcode>" in fault.content
    assert b"ModifyAllData or ModifyMetadata" in fault.content


def test_named_user_jwt_enabled_deploys_jwt_based_tokens(org: LocalOrg, sf: Salesforce, keys: Dict[str, Any]) -> None:
    assert deploy(sf, eca_package("jwt_tokens", keys["cert1"], profile="Admin", jwt_tokens=True))["state"] == \
        "Succeeded"
    app = org.app_registry.named("jwt_tokens")
    assert app is not None
    body = login(org, app.consumer_key, ADMIN, keys["key1"]).json()
    assert body["token_format"] == "jwt" and body["access_token"].startswith("eyJ")
    assert sf.mdapi.ExtlClntAppGlobalOauthSettings.read(["jwt_tokens_glbloauth"])["isNamedUserJwtEnabled"] is True
